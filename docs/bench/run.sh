#!/usr/bin/env bash
# run.sh runs the benchmarks that docs/performance.md reports, saves their raw
# output with the date, machine, Go version and commit in docs/bench/results.txt,
# and regenerates the tables of docs/performance.md and the headline of
# README.md from it (go run ./docs/bench/gen). Figures in the docs are never
# typed by hand: run this instead.
#
#   docs/bench/run.sh                        # defaults below (1s, 3 runs, -cpu 1,2)
#   BENCHTIME=2s COUNT=6 docs/bench/run.sh   # longer, steadier
#   NOTE="idle machine" docs/bench/run.sh    # a remark for the header
#
# Run it on a quiet machine if you can: other load inflates and spreads the
# times (the header records the load average before and after).
set -euo pipefail
cd "$(dirname "$0")/../.."

BENCHTIME=${BENCHTIME:-1s}
COUNT=${COUNT:-3}
CPU=${CPU:-1,2}
out=docs/bench/results.txt

# package and -bench pattern of each benchmark reported.
benchmarks=(
	"./telemetry" 'EventStartEnd|NetworkStartEnd|MetricsJSON10k|RetainedBytesPerEvent'
	"./telemetry/prometheus" 'LifeCycle|BareObserve|PublishEvent|PublishNetwork'
	"./telemetry/grafanacloud" 'LifeCycle|PublishEvent|Push'
	"./telemetry/elasticsearch" 'PublishBatchThroughput|RecordingPathCost'
	"./telemetry/nettrace" 'Transport'
	"./pipeline" 'PipelineEvent'
)

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
	echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# machine: $(nproc) cores, ${model:-unknown CPU}, $(uname -sm)"
	echo "# go: $(go version | cut -d' ' -f3-)"
	echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' ':!README.md' || echo ' (with uncommitted changes)')"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# command: go test -run '^\$' -bench PATTERN -benchmem -benchtime $BENCHTIME -count $COUNT -cpu $CPU PACKAGE"
	if [ -n "${NOTE:-}" ]; then echo "# note: $NOTE"; fi
} >"$tmp"
for ((i = 0; i < ${#benchmarks[@]}; i += 2)); do
	pkg=${benchmarks[i]} pattern=${benchmarks[i + 1]}
	echo "== $pkg: $pattern" >&2
	go test -run '^$' -bench "$pattern" -benchmem -benchtime "$BENCHTIME" -count "$COUNT" -cpu "$CPU" "$pkg" | tee -a "$tmp" >&2
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$tmp"
# The header lines must come first for the generator; move the last one up.
{ grep '^# ' "$tmp"; grep -v '^# ' "$tmp"; } >"$out"
go run ./docs/bench/gen -raw "$out" -doc docs/performance.md -readme README.md
echo "wrote $out, docs/performance.md and README.md" >&2
