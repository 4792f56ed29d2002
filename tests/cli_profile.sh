#!/bin/sh
# cli_profile.sh -- `llmbench profile` and `llmbench model` from the command
# line: help, usage errors (exit 2 naming the option), a tiny profile of a
# small synthetic model whose JSON has the shape llmsim reads (checked by
# Python when there is one) and that `llmsim run` accepts in a scenario, and
# a tiny `llmbench model` run printing its four figures, and `llmbench
# calibrate` on a step log with known factors and on broken ones.  Kept small so it
# runs in seconds, also under the sanitizers.  Run by `make check`; exits 77
# when llmbench or llmsim was not built.
. "$(dirname "$0")/lib.sh"
llmbench=$top_builddir/llmbench
llmsim=$top_builddir/llmsim
for p in "$llmbench" "$llmsim"; do
    [ -x "$p" ] || skip "$p not built"
done
LLMSCALE_LOG=warn
export LLMSCALE_LOG

small=synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=300,seq=128

check "profile --help" sh -c "'$llmbench' profile --help | grep -q 'usage: llmbench profile'"
check "model --help" sh -c "'$llmbench' model --help | grep -q 'usage: llmbench model'"
expect_fail "profile without --model exits 2" 2 "--model is required" "$llmbench" profile
expect_fail "profile --max-batch 0 exits 2" 2 "max-batch" "$llmbench" profile --model "$small" --max-batch 0
expect_fail "profile --quantize q4 exits 2" 2 "unknown type 'q4'" "$llmbench" profile --model "$small" --quantize q4
expect_fail "profile with a bad model exits 2" 2 "synthetic" "$llmbench" profile --model synthetic:dim=-3
# a small, quick roofline for `llmbench model` to read instead of measuring one
"$llmbench" roofline --mib 16 --repeat 1 --json "$tmp/roof.json" >/dev/null 2>&1
expect_fail "model --prefill beyond the context exits 2" 2 "beyond the model's context" "$llmbench" model --model "$small" --prefill 4096 --roofline "$tmp/roof.json"
expect_fail "unknown option exits 2" 2 "unknown or incomplete option" "$llmbench" profile --bogus
expect_fail "profile --backend bogus exits 2 naming it" 2 "bogus" "$llmbench" profile --model "$small" --backend bogus
# --backend cuda: measured on a GPU; without one (or without CUDA built in) it says why
"$llmbench" profile --model "$small" --max-batch 2 --max-prefill 16 --repeat 1 --backend cuda -o "$tmp/pc.json" \
    >"$tmp/out" 2>"$tmp/err"
st=$?
if [ "$st" -eq 0 ]; then
    check "profile --backend cuda on this GPU writes a cuda profile" grep -q '"backend": "cuda"' "$tmp/pc.json"
else
    check "profile --backend cuda without a GPU: exit 1 or 2, saying why ($st)" sh -c "[ $st -eq 1 -o $st -eq 2 ] &&
        grep -q 'backend cuda' '$tmp/err'"
fi

"$llmbench" profile --model "$small" --max-batch 4 --repeat 1 --max-prefill 64 -o "$tmp/profile.json" >"$tmp/p.out" 2>"$tmp/p.err"
check "profile runs" test $? -eq 0
check "profile prints prefill, decode and mixed rows" sh -c "grep -q '^prefill' '$tmp/p.out' && grep -q '^decode' '$tmp/p.out' && grep -q '^mixed' '$tmp/p.out'"
py=${PYTHON3:-$(command -v python3 || true)}
if [ -n "$py" ]; then
    check "the profile has llmsim's shape" "$py" -c "
import json, sys
d = json.load(open('$tmp/profile.json'))
assert d['format'] == 'llmscale-profile-v1'
assert d['kv_capacity_tokens'] == 4 * 128
assert d['measured']['backend'] == 'cpu', d['measured']
p, q = d['prefill'], d['decode']
assert p['tokens'] == [1, 8, 16, 32, 64] and len(p['time_s']) == 5, p['tokens']
assert q['batch'] == [1, 2, 3, 4] and len(q['context_tokens']) == 3, q['batch']
assert len(q['time_s']) == 4 and all(len(r) == 3 for r in q['time_s'])
assert all(t > 0 for t in p['time_s']) and all(t > 0 for r in q['time_s'] for t in r)
# the fixed cost of a step, paid once by a mixed one: never more than the cheapest step
assert 0 <= d['step_overhead_s'] <= min(p['time_s'] + [t for r in q['time_s'] for t in r])
"
fi
cat >"$tmp/scenario.yaml" <<YAML
name: measured
seed: 1
workload:
  generator: {kind: poisson, rate: 50, duration: 1m, prompt_tokens: {kind: fixed, value: 20}, output_tokens: {kind: fixed, value: 10}}
service:
  profile: profile.json
cluster:
  replicas: 1
  gpu_hourly_usd: 1.0
  replica: {max_num_seqs: 4}
output:
  interval: 1m
YAML
"$llmsim" run "$tmp/scenario.yaml" -o "$tmp/sim" --no-report -q 2>"$tmp/sim.err"
check "llmsim runs a scenario on the measured profile" test $? -eq 0
check "llmsim completed requests on it" grep -q '"completed"' "$tmp/sim/summary.json"
echo '{"format": "llmscale-profile-v1", "kv_capacity_tokens": 10}' >"$tmp/profile.json"
expect_fail "llmsim refuses a profile without tables (the check is real)" 2 "prefill" "$llmsim" run "$tmp/scenario.yaml" -o "$tmp/sim2" --no-report -q

"$llmbench" model --model "$small" --rounds 2 --repeat 1 --context 16 --prefill 32 --batch 4 --roofline "$tmp/roof.json" >"$tmp/m.out" 2>"$tmp/m.err"
status=$?
check "model runs" test "$status" -eq 0
check "model prints its four figures" sh -c "grep -q 'decode f32' '$tmp/m.out' && grep -q 'decode q8' '$tmp/m.out' &&
    grep -q 'batch 4' '$tmp/m.out' && grep -q 'prefill 32' '$tmp/m.out'"

# ---- llmbench calibrate: a profile against a step log -----------------------------
# A profile with round numbers, and a log of steps each a known factor slower
# than it predicts: decode at batch 1 x1.5, at batch 16 x2, prefill x1.2.
cat >"$tmp/cal.json" <<'JSON'
{"format": "llmscale-profile-v1", "name": "cal", "kv_capacity_tokens": 1000, "step_overhead_s": 0.002,
 "prefill": {"tokens": [1, 1001], "time_s": [0.001, 1.001]},
 "decode": {"batch": [1, 16], "context_tokens": [0, 100000], "time_s": [[0.01, 0.01], [0.02, 0.02]]}}
JSON
header=t_start,t_forward,t_sample,t_end,seqs,prefill_seqs,prefill_tokens,prefill_ctx,decode_seqs,decode_ctx,generated
# cal_log PROMPT_STEP: 25 rounds of a decode step at batch 1, one at batch 16
# and one that prefills 501 tokens, PROMPT_STEP its fields from t_end's
# fraction on (its t_end is round.PROMPT_STEP).
cal_log() {
    echo "$header"
    i=0
    while [ $i -lt 25 ]; do
        echo "$i.0,$i.0,$i.01,$i.015,1,0,0,0,1,100,1"
        echo "$i.5,$i.5,$i.53,$i.54,16,0,0,0,16,1600,16"
        echo "$i.1,$i.1,$i.7,$i.$1"
        i=$((i + 1))
    done
}
cal_log 7012,1,1,501,125751,0,0,1 >"$tmp/steps.csv"
"$llmbench" calibrate --profile "$tmp/cal.json" --steps "$tmp/steps.csv" -o "$tmp/cal-out.json" >"$tmp/cal.out" 2>"$tmp/cal.err"
check "calibrate runs" test $? -eq 0
check "calibrate prints the factors" grep -q '^factors: prefill 1.200; decode 1:1.500 16:2.000' "$tmp/cal.out"
if [ -n "$py" ]; then
    check "calibrate scales the profile by them" "$py" -c "
import json
d = json.load(open('$tmp/cal-out.json'))
close = lambda a, b: abs(a - b) < 1e-9 * max(1, abs(b))
assert all(map(close, d['prefill']['time_s'], [0.0012, 1.2012])), d['prefill']
assert all(map(close, sum(d['decode']['time_s'], []), [0.015, 0.015, 0.04, 0.04])), d['decode']
assert close(d['step_overhead_s'], 0.003), d['step_overhead_s']
assert d['measured']['calibrated']['decode_factors'] == [1.5, 2.0] or all(map(close, d['measured']['calibrated']['decode_factors'], [1.5, 2.0]))
"
fi
# Prompts that only ever share a step with a decoding sequence (chunked
# prefill): the prefill factor comes from the mixed steps, once their decode
# side is priced by the calibrated decode rows (prefill of 501 tokens 0.501 s
# x 1.2, decode at batch 1 0.01 s x 1.5, the step's fixed cost 0.002 s x 1.5
# paid once: 0.6132 s), not from the decode factor.
cal_log 7132,2,1,501,125751,1,100,2 >"$tmp/steps-mixed.csv"
"$llmbench" calibrate --profile "$tmp/cal.json" --steps "$tmp/steps-mixed.csv" >"$tmp/cal-mixed.out" 2>&1
check "calibrate takes the prefill factor from mixed steps" \
    grep -q '^factors: prefill 1.200; decode 1:1.500 16:2.000' "$tmp/cal-mixed.out"
check "the calibrated profile runs in llmsim" sh -c "sed 's|profile: profile.json|profile: $tmp/cal-out.json|' '$tmp/scenario.yaml' >'$tmp/cal.yaml' &&
    '$llmsim' run '$tmp/cal.yaml' -o '$tmp/sim3' --no-report -q 2>/dev/null"
# hostile and broken logs: each refused with the file and line
cal_fail() { # DESCRIPTION PATTERN FILE-CONTENT
    printf '%s' "$3" >"$tmp/bad.csv"
    expect_fail "calibrate: $1" 2 "$2" "$llmbench" calibrate --profile "$tmp/cal.json" --steps "$tmp/bad.csv"
}
cal_fail "an empty log" "bad.csv:1: not an llmserve step log" ""
cal_fail "a wrong header" "bad.csv:1: not an llmserve step log" "a,b,c
1,2,3
"
cal_fail "no steps" "no steps logged" "$header
"
cal_fail "a word for a number" "bad.csv:3: field 4 (t_end)" "$header
1,1,1,1.1,1,0,0,0,1,10,1
1,1,1,x,1,0,0,0,1,10,1
"
cal_fail "a negative count" "bad.csv:2: field 9 (decode_seqs)" "$header
1,1,1,1.1,1,0,0,0,-1,10,1
"
cal_fail "a truncated line" "bad.csv:2: field 5 (seqs)" "$header
1,1,1,1.1,1"
cal_fail "an extra field" "bad.csv:2: field 11 (generated)" "$header
1,1,1,1.1,1,0,0,0,1,10,1,7
"
cal_fail "an infinite time" "bad.csv:2: field 1 (t_start)" "$header
inf,1,1,1.1,1,0,0,0,1,10,1
"
cal_fail "t_end before t_forward" "bad.csv:2: t_end before t_forward" "$header
1,2,2,1,1,0,0,0,1,10,1
"
"$py" -c "import sys; sys.stdout.write('$header\n' + '1,' * 600000 + '\n')" >"$tmp/bad.csv" 2>/dev/null &&
    expect_fail "calibrate: an over-long line" 2 "bad.csv:2" "$llmbench" calibrate --profile "$tmp/cal.json" --steps "$tmp/bad.csv"
printf '%s\n1,1,1,1.1,1,0\0000,0,1,10,1\n' "$header" >"$tmp/bad.csv"
expect_fail "calibrate: a NUL byte" 2 "bad.csv:2" "$llmbench" calibrate --profile "$tmp/cal.json" --steps "$tmp/bad.csv"
expect_fail "calibrate: a missing log" 1 "nope.csv" "$llmbench" calibrate --profile "$tmp/cal.json" --steps "$tmp/nope.csv"
expect_fail "calibrate: a broken profile" 2 "bad.csv" "$llmbench" calibrate --profile "$tmp/bad.csv" --steps "$tmp/steps.csv"
expect_fail "calibrate without --steps" 2 "are required" "$llmbench" calibrate --profile "$tmp/cal.json"

finish
