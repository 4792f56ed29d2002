#!/bin/sh
# cli_llmsim.sh -- llmsim from the command line: the run command's outputs,
# determinism, overrides, and exit status 2 with FILE:LINE on bad input.
# Run by `make check` (top_srcdir, top_builddir and LLMSCALE_SHARED exported).
. "$(dirname "$0")/lib.sh"
llmsim=$top_builddir/llmsim
examples=$top_srcdir/workloads/examples

# --- help and usage ---------------------------------------------------------------
check "llmsim --help" sh -c "'$llmsim' --help | grep -q 'run '"
check "llmsim run --help" sh -c "'$llmsim' run --help | grep -q -- '--set KEY=VALUE'"
expect_fail "unknown command exits 2" 2 "unknown command" "$llmsim" frobnicate
expect_fail "run without a scenario exits 2" 2 "usage" "$llmsim" run
expect_fail "unknown option exits 2" 2 "unknown or incomplete option" "$llmsim" run "$examples/replay.yaml" --bogus

# --- the main job ----------------------------------------------------------------------
"$llmsim" run "$examples/replay.yaml" -o "$tmp/a" --reproducible >"$tmp/a.out" 2>&1
check "replay.yaml runs" test $? -eq 0
for f in summary.json timeline.csv latency_cdf.csv report.html; do
    check "replay writes $f" test -s "$tmp/a/$f"
done
check "summary printed with the report's path" grep -q "report:  $tmp/a/report.html" "$tmp/a.out"
check "summary.json has the required keys" sh -c "grep -q '\"arrived\"' '$tmp/a/summary.json' &&
    grep -q '\"timed_out\"' '$tmp/a/summary.json' && grep -q '\"attainment\"' '$tmp/a/summary.json' &&
    grep -q '\"gpu_hours\"' '$tmp/a/summary.json' && grep -q '\"events\"' '$tmp/a/summary.json'"
if [ -n "$(command -v gnuplot)" ]; then
    check "report has charts" sh -c "ls '$tmp/a'/*.png >/dev/null 2>&1 && grep -q '<img' '$tmp/a/report.html'"
fi

# --- determinism --------------------------------------------------------------------------
"$llmsim" run "$examples/replay.yaml" -o "$tmp/b" --reproducible -q
check "same seed, same scenario: byte-identical summary.json" cmp -s "$tmp/a/summary.json" "$tmp/b/summary.json"
check "same seed, same scenario: identical timeline.csv" cmp -s "$tmp/a/timeline.csv" "$tmp/b/timeline.csv"
"$llmsim" run "$examples/mmc.yaml" -q --no-report --reproducible -o "$tmp/m1" --set workload.generator.duration=1h
"$llmsim" run "$examples/mmc.yaml" -q --no-report --reproducible -o "$tmp/m2" --set workload.generator.duration=1h --seed 2
check "another seed gives another result" sh -c "! cmp -s '$tmp/m1/summary.json' '$tmp/m2/summary.json'"
check "--seed is recorded" grep -q '"seed": 2' "$tmp/m2/summary.json"

# --- overrides -------------------------------------------------------------------------------
"$llmsim" run "$examples/replay.yaml" -q --no-report -o "$tmp/c" --set cluster.replicas=1 --requests
check "--set cluster.replicas=1 takes effect" sh -c "tr -d ' \n' < '$tmp/c/summary.json' | grep -q '\"replicas\":{\"min\":1,\"mean\":1.0,\"max\":1}'"
arrived=$(sed -n 's/.*"arrived": \([0-9]*\).*/\1/p' "$tmp/c/summary.json")
rows=$(($(wc -l <"$tmp/c/requests.csv") - 1))
check "--requests writes one row per request ($rows for $arrived)" test "$rows" -eq "$arrived"
cp "$examples/chat-30m.csv" "$tmp/mytrace.csv"
(cd "$tmp" && "$llmsim" run "$examples/replay.yaml" -q --no-report -o "$tmp/rel" --set workload.trace=mytrace.csv)
check "a relative --set path is relative to the current directory" test -s "$tmp/rel/summary.json"
azure=${LLMSCALE_SHARED:-$top_srcdir/../shared}/traces/azure-llm-2023-conv.csv
if [ -f "$azure" ]; then
    "$llmsim" run "$examples/replay.yaml" -q --no-report -o "$tmp/azure" --set "workload.trace=$azure"
    check "replays the Azure conversation trace (19366 requests)" grep -q '"arrived": 19366' "$tmp/azure/summary.json"
else
    echo "skip - Azure trace not found at $azure"
fi

# --- the HPA example -----------------------------------------------------------------------
"$llmsim" run "$examples/chat-day-hpa.yaml" -q --no-report -o "$tmp/hpa" --set workload.generator.duration=3h \
    --set workload.generator.phase=3h
check "chat-day-hpa.yaml scales up and down" sh -c "tr -d ' \n' < '$tmp/hpa/summary.json' | grep -q '\"scale_ups\":[1-9]' &&
    tr -d ' \n' < '$tmp/hpa/summary.json' | grep -q '\"scale_downs\":[1-9]'"

# --- bad input: FILE:LINE and exit status 2 -------------------------------------------------------
cp "$examples/chat-30m.csv" "$tmp/"
cat >"$tmp/base.yaml" <<YAML
workload:
  trace: chat-30m.csv
service:
  roofline: {gpu: A100-80GB, model: llama-2-7b}
cluster:
  replicas: 2
YAML
run_bad() { # run_bad NAME EXTRA-YAML: write a scenario and run it
    { cat "$tmp/base.yaml"; printf '%s\n' "$2"; } >"$tmp/$1.yaml"
}
run_bad unknown_key "  replicaz: 3"
expect_fail "unknown key: FILE:LINE, exit 2" 2 "unknown_key.yaml:7: unknown key 'replicaz'" \
    "$llmsim" run "$tmp/unknown_key.yaml" -o "$tmp/x" -q
run_bad wrong_type "gateway: {queue_capacity: lots}"
expect_fail "wrong type: FILE:LINE, exit 2" 2 "wrong_type.yaml:7: queue_capacity: expected an integer" \
    "$llmsim" run "$tmp/wrong_type.yaml" -o "$tmp/x" -q
run_bad negative "gateway: {queue_timeout: -30s}"
expect_fail "negative duration: FILE:LINE, exit 2" 2 "negative.yaml:7: queue_timeout: negative duration" \
    "$llmsim" run "$tmp/negative.yaml" -o "$tmp/x" -q
printf 'workload:\n  trace: t.csv\n  bogus: [\n' >"$tmp/syntax.yaml"
expect_fail "YAML syntax error: FILE:LINE, exit 2" 2 "syntax.yaml:[0-9]*: YAML syntax error" \
    "$llmsim" run "$tmp/syntax.yaml" -o "$tmp/x" -q
{ head -n 4 "$examples/chat-30m.csv"; echo "12.5,abc,10,,"; } >"$tmp/bad-trace.csv"
run_bad bad_trace_scn ""
sed -i 's/chat-30m.csv/bad-trace.csv/' "$tmp/bad_trace_scn.yaml"
expect_fail "malformed trace line: FILE:LINE, exit 2" 2 "bad-trace.csv:5:" \
    "$llmsim" run "$tmp/bad_trace_scn.yaml" -o "$tmp/x" -q
expect_fail "bad --set value names the override, exit 2" 2 "--set cluster.replicas=two" \
    "$llmsim" run "$tmp/base.yaml" -o "$tmp/x" -q --set cluster.replicas=two
expect_fail "missing scenario file: exit 1 naming it" 1 "nonexistent.yaml" \
    "$llmsim" run "$tmp/nonexistent.yaml" -o "$tmp/x" -q
expect_fail "missing trace file names it" 1 "nowhere.csv" \
    "$llmsim" run "$tmp/base.yaml" -o "$tmp/x" -q --set workload.trace=nowhere.csv
expect_fail "bad --seed exits 2" 2 "seed" "$llmsim" run "$tmp/base.yaml" -o "$tmp/x" -q --seed -4

finish
