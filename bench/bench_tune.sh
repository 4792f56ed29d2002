#!/bin/sh
# bench_tune.sh -- llmsim tune's speed: 500 simulations of the one-hour Azure
# conversation trace with -j 2 (target: under 60 s on the project's 2-core
# machine).
#
#   bench/bench_tune.sh [JOBS]        (default 2; LLMSIM=path/to/llmsim, default build/llmsim)
#
# Runs bench/bench_tune.yaml (a 250-candidate grid x 2 seeds, plus the
# baseline: 502 simulations).  The baseline measured in the same run is one
# `llmsim run` of the same scenario (a whole process: YAML, trace, simulation;
# median of three); the tune's ideal is 502 of them spread over JOBS cores.
# Prints the wall time, its ratio to the 60 s target, the CPU time, and the
# ratio of tune's wall time to the ideal (1.0: no overhead beyond the runs).
# The load average is printed too: on a shared machine the wall time follows it.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
llmsim=${LLMSIM:-$here/build/llmsim}
jobs=${1:-2}
shared=${LLMSCALE_SHARED:-$here/../shared}
trace=$shared/traces/azure-llm-2023-conv.csv
scenario=$here/bench/bench_tune.yaml
target_s=60
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -r "$trace" ]; then
    echo "bench_tune: $trace not found (set LLMSCALE_SHARED)" >&2
    exit 77
fi
[ -x "$llmsim" ] || { echo "bench_tune: $llmsim not built (LLMSIM=...)" >&2; exit 1; }

now() { date +%s.%N; }

# One simulation, three times: the median.
for i in 1 2 3; do
    t0=$(now)
    "$llmsim" run "$scenario" --set "workload.trace=$trace" -o "$tmp/run" --no-report -q
    t1=$(now)
    echo "$t0 $t1" | awk '{ printf "%.4f\n", $2 - $1 }'
done | sort -n | sed -n 2p >"$tmp/one"
one=$(cat "$tmp/one")

load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
/usr/bin/time -f "%e %U %S" -o "$tmp/time" \
    "$llmsim" tune "$scenario" --set "workload.trace=$trace" -j "$jobs" -o "$tmp/tune" --no-report -q
read -r wall user sys <"$tmp/time"
sims=$(($(wc -l <"$tmp/tune/trials.csv") - 1))
sims=$((sims * 2)) # rows are candidates (and the baseline), each over 2 seeds

awk -v wall="$wall" -v user="$user" -v sys="$sys" -v sims="$sims" -v one="$one" -v jobs="$jobs" \
    -v target="$target_s" -v load="$load" 'BEGIN {
    ideal = sims * one / jobs
    printf "llmsim tune: %d simulations of the 1 h Azure conversation trace, -j %d (load average %s)\n", sims, jobs, load
    printf "  one llmsim run (median of 3):  %.3f s\n", one
    printf "  tune wall time:                %.1f s  (%.0f simulations/s)\n", wall, sims / wall
    printf "  tune CPU time:                 %.1f s  (%.1f ms per simulation)\n", user + sys, 1000 * (user + sys) / sims
    printf "  ratio to the %d s target:      %.2f  (%s)\n", target, wall / target, wall < target ? "met" : "MISSED"
    printf "  ratio to %d runs / %d cores:   %.2f  (ideal %.1f s)\n", sims, jobs, wall / ideal, ideal
}'
