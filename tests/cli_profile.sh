#!/bin/sh
# cli_profile.sh -- `llmbench profile` and `llmbench model` from the command
# line: help, usage errors (exit 2 naming the option), a tiny profile of a
# small synthetic model whose JSON has the shape llmsim reads (checked by
# Python when there is one) and that `llmsim run` accepts in a scenario, and
# a tiny `llmbench model` run printing its four figures.  Kept small so it
# runs in seconds, also under the sanitizers.  Run by `make check`; exits 77
# when llmbench or llmsim was not built.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
llmbench=$top_builddir/llmbench
llmsim=$top_builddir/llmsim
for p in "$llmbench" "$llmsim"; do
    if [ ! -x "$p" ]; then
        echo "skip: $p not built"
        exit 77
    fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
LLMSCALE_LOG=warn
export LLMSCALE_LOG

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { # check DESCRIPTION COMMAND...
    d=$1
    shift
    if "$@"; then ok "$d"; else not_ok "$d"; fi
}
expect_fail() { # expect_fail DESCRIPTION STATUS PATTERN COMMAND...
    d=$1 want=$2 pat=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ] && grep -q -- "$pat" "$tmp/err"; then
        ok "$d"
    else
        not_ok "$d (status $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
    fi
}

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

"$llmbench" profile --model "$small" --max-batch 4 --repeat 1 --max-prefill 64 -o "$tmp/profile.json" >"$tmp/p.out" 2>"$tmp/p.err"
check "profile runs" test $? -eq 0
check "profile prints prefill and decode rows" sh -c "grep -q '^prefill' '$tmp/p.out' && grep -q '^decode' '$tmp/p.out'"
py=${PYTHON3:-$(command -v python3 || true)}
if [ -n "$py" ]; then
    check "the profile has llmsim's shape" "$py" -c "
import json, sys
d = json.load(open('$tmp/profile.json'))
assert d['format'] == 'llmscale-profile-v1'
assert d['kv_capacity_tokens'] == 4 * 128
p, q = d['prefill'], d['decode']
assert p['tokens'] == [1, 16, 64] and len(p['time_s']) == 3
assert q['batch'] == [1, 2, 4] and len(q['context_tokens']) == 3
assert len(q['time_s']) == 3 and all(len(r) == 3 for r in q['time_s'])
assert all(t > 0 for t in p['time_s']) and all(t > 0 for r in q['time_s'] for t in r)
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

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
