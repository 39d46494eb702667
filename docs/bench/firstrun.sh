#!/usr/bin/env bash
# firstrun.sh measures the README's first command, `go run ./cmd/eventpipeline
# demo`, from an empty build cache (modules already downloaded), and writes the
# result into README.md between <!-- firstrun:start --> and <!-- firstrun:end -->.
#
#   docs/bench/firstrun.sh            # measure and update README.md
#   DRY_RUN=1 docs/bench/firstrun.sh  # measure and print, change nothing
set -euo pipefail
cd "$(dirname "$0")/../.."

go mod download # the measure is of compiling, not of downloading
cache=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$cache" "$out"' EXIT

load_before=$(cut -d' ' -f1 /proc/loadavg)
TIMEFORMAT='%R %U %S'
times=$( { time GOCACHE="$cache" go run ./cmd/eventpipeline demo --quiet --out-dir "$out" >/dev/null; } 2>&1 | tail -1)
load_after=$(cut -d' ' -f1 /proc/loadavg)
read -r real user sys <<<"$times"
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
real=$(awk -v r="$real" 'BEGIN { printf "%.0f", r }')
cores=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
commit=$(git rev-parse --short HEAD)
date=$(date -u +%Y-%m-%d)

text="The first \`go run\` compiles the command and its dependencies: from an empty build cache (modules already
downloaded) it took **${real} s** (${cpu} s of CPU time) on a ${cores}-core ${model}, load average ${load_before}
before and ${load_after} after (measured ${date}, commit ${commit}, by \`docs/bench/firstrun.sh\`). Later runs
start in a few seconds."

if [ -n "${DRY_RUN:-}" ]; then
	echo "$text"
	exit 0
fi
go run ./docs/bench/gen -replace firstrun -file README.md -text "$text"
echo "$text"
