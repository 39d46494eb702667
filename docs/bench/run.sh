#!/usr/bin/env bash
# run.sh runs the benchmarks that docs/performance.md reports, saves their raw
# output with the date, machine, Go version and commit in docs/bench/results.txt,
# and regenerates the Goals table and the tables of docs/performance.md and the
# headline of README.md from it (go run ./docs/bench/gen). Figures in the docs
# are never typed by hand: run this instead.
#
#   docs/bench/run.sh                        # defaults below (1s, 3 rounds, -cpu 1,2)
#   BENCHTIME=2s COUNT=6 docs/bench/run.sh   # longer, steadier
#   NOTE="idle machine" docs/bench/run.sh    # a remark for the header
#
# Each package's test binary is built once, then run COUNT times in rounds:
# every round runs every benchmark once at each -cpu value, so that the runs
# of benchmarks compared with each other (say Observe and StartEvent+EndEvent,
# or -cpu 1 and -cpu 2) alternate instead of following each other, and a
# change of load spreads over both sides. The generator takes medians over
# the rounds and computes every ratio from two medians of this one run.
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
	"./telemetry" 'EventStartEnd|NetworkStartEnd|Queries|MetricsJSON10k|RetainedBytesPerEvent'
	"./telemetry/prometheus" 'VsObserve|Retention|PublishEvent|PublishNetwork'
	"./telemetry/grafanacloud" 'LifeCycle|PublishEvent|Push'
	"./telemetry/elasticsearch" 'PublishBatchThroughput|RecordingPathCost'
	"./telemetry/nettrace" 'Transport'
	"./pipeline" 'PipelineEvent'
	"./telemetry/oteltrace" 'EventSpan'
	"./contrib/asynq" 'Middleware'
	"./contrib/river" 'Middleware'
)

model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
tmp=$(mktemp)
bin=$(mktemp -d)
trap 'rm -rf "$tmp" "$bin"' EXIT

# Build first, so that every round runs the same code and no round pays
# for compiling.
for ((i = 0; i < ${#benchmarks[@]}; i += 2)); do
	# In the package's directory, so that the modules under contrib/ build
	# in their own module.
	(cd "${benchmarks[i]}" && go test -c -o "$bin/$i.test" .)
done

{
	echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# machine: $(nproc) cores, ${model:-unknown CPU}, $(uname -sm)"
	echo "# go: $(go version | cut -d' ' -f3-)"
	echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' ':!README.md' || echo ' (with uncommitted changes)')"
	echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# command: PACKAGE.test -test.run '^\$' -test.bench PATTERN -test.benchmem -test.benchtime $BENCHTIME -test.count 1 -test.cpu $CPU, in $COUNT interleaved rounds"
	if [ -n "${NOTE:-}" ]; then echo "# note: $NOTE"; fi
} >"$tmp"
failed=0
for ((round = 1; round <= COUNT; round++)); do
	for ((i = 0; i < ${#benchmarks[@]}; i += 2)); do
		pkg=${benchmarks[i]} pattern=${benchmarks[i + 1]}
		echo "== round $round of $COUNT, $pkg: $pattern" >&2
		# A test binary runs in its package's directory, as under go test.
		# A failure is noted in the header and the other runs go on; the
		# Goals table then shows what was not measured.
		if ! (cd "$pkg" && "$bin/$i.test" -test.run '^$' -test.bench "$pattern" -test.benchmem \
			-test.benchtime "$BENCHTIME" -test.count 1 -test.cpu "$CPU") | tee -a "$tmp" >&2; then
			echo "# failed in round $round: $pkg (see the output above)" | tee -a "$tmp" >&2
			failed=1
		fi
	done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$tmp"
# The header lines must come first for the generator; move the last one up.
{ grep '^# ' "$tmp"; grep -v '^# ' "$tmp"; } >"$out"
go run ./docs/bench/gen -raw "$out" -doc docs/performance.md -readme README.md
echo "wrote $out, docs/performance.md and README.md" >&2
if [ "$failed" = 1 ]; then
	echo "some benchmarks failed: see the '# failed' lines of $out" >&2
	exit 1
fi
