#!/bin/sh
# cli_validate.sh -- `llmsim validate`: a simulation compared with a measured
# summary.  A run compared with itself shows no error; a measurement with a
# TTFT 25% higher shows -20% and fails --tolerance 0.15 on the figures
# checked; bad measured files (malformed, truncated, missing keys, hostile
# values, oversized) and bad flags exit 2 naming the file, line or key.
# Run by `make check`; exits 77 (skipped) when llmsim is not built.
. "$(dirname "$0")/lib.sh"
llmsim=$top_builddir/llmsim
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || py=python3
sc=$top_srcdir/workloads/examples/replay.yaml
lim="--set workload.limit=400"
[ -x "$llmsim" ] || skip "$llmsim not built"

"$llmsim" run "$sc" $lim -o "$tmp/run" --no-report -q || not_ok "llmsim run for the measured side"
m=$tmp/run/summary.json

check "validate --help" sh -c "'$llmsim' validate --help | grep -q -- '--measured'"
"$llmsim" validate --scenario "$sc" $lim --measured "$m" --tolerance 1e-6 --json "$tmp/self.json" >"$tmp/self.out" 2>&1
check "a run against itself: within 1e-6 (summary.json keeps 10 digits; exit 0)" test $? -eq 0
check "a run against itself: every figure printed with 0.0%" \
    test "$(grep -c -E '^  (ttft|tpot|e2e)\.p(50|90|99) .* [+-]0\.0%' "$tmp/self.out")" -eq 9
check "a run against itself: throughput compared" grep -q -E '^  requests_per_s .*[+-]0.0%' "$tmp/self.out"
check "--json: the figures with their errors" "$py" -c "
import json, sys
d = json.load(open(sys.argv[1]))
f = d['figures']
assert len(f) == 11 and all(abs(v['error']) < 1e-6 for v in f.values()), f
assert f['ttft.p50']['checked'] and not f['ttft.p99']['checked']
" "$tmp/self.json"

# The measured TTFT 25% higher at every percentile: the simulation is 20% low.
"$py" -c "
import json, sys
d = json.load(open(sys.argv[1]))
for q in ('p50', 'p90', 'p99'):
    d['latency_s']['ttft'][q] *= 1.25
json.dump(d, open(sys.argv[2], 'w'))
" "$m" "$tmp/slow.json"
"$llmsim" validate --scenario "$sc" $lim --measured "$tmp/slow.json" --tolerance 0.15 --json "$tmp/slow-cmp.json" \
    >"$tmp/slow.out" 2>"$tmp/slow.err"
check "TTFT 25% off: exit 1 beyond 15%" test $? -eq 1
check "TTFT 25% off: ttft.p50 at -20.0% BEYOND" grep -q '^  ttft.p50 .* -20.0%  BEYOND' "$tmp/slow.out"
check "TTFT 25% off: e2e.p50 ok" grep -q -E '^  e2e.p50 .* [+-]0.0%  ok' "$tmp/slow.out"
check "TTFT 25% off: the error says how many" grep -q '2 checked figure(s) off by more than 15%' "$tmp/slow.err"
"$llmsim" validate --scenario "$sc" $lim --measured "$tmp/slow.json" --tolerance 0.15 --check e2e.p50,e2e.p90,tpot.p50 -q
check "--check without TTFT: exit 0" test $? -eq 0
"$llmsim" validate --scenario "$sc" $lim --measured "$tmp/slow.json" --tolerance 0.25 -q
check "--tolerance 0.25: exit 0" test $? -eq 0

# --- bad input -------------------------------------------------------------------------
expect_fail "no --measured: usage, exit 2" 2 "usage" "$llmsim" validate --scenario "$sc"
expect_fail "--tolerance -1 exits 2" 2 "--tolerance" "$llmsim" validate --scenario "$sc" --measured "$m" --tolerance -1
expect_fail "--tolerance nan exits 2" 2 "--tolerance" "$llmsim" validate --scenario "$sc" --measured "$m" --tolerance nan
expect_fail "--check with an unknown figure exits 2" 2 "unknown figure 'ttft.p42'" \
    "$llmsim" validate --scenario "$sc" --measured "$m" --check ttft.p50,ttft.p42
expect_fail "a missing measured file exits 2 naming it" 2 "nonexistent.json" \
    "$llmsim" validate --scenario "$sc" --measured "$tmp/nonexistent.json"
printf '{\n  "latency_s": {\n    "ttft": {"p50": 1,,}\n' >"$tmp/malformed.json"
expect_fail "malformed JSON: FILE:LINE" 2 "malformed.json:3:" "$llmsim" validate --scenario "$sc" --measured "$tmp/malformed.json"
head -c 300 "$m" >"$tmp/truncated.json"
expect_fail "a truncated summary exits 2 naming it" 2 "truncated.json" "$llmsim" validate --scenario "$sc" --measured "$tmp/truncated.json"
echo '[1, 2, 3]' >"$tmp/array.json"
expect_fail "a JSON array is not a summary" 2 "expected a summary" "$llmsim" validate --scenario "$sc" --measured "$tmp/array.json"
"$py" -c "
import json, sys
d = json.load(open(sys.argv[1])); del d['latency_s']['e2e']['p90']; json.dump(d, open(sys.argv[2], 'w'))
d = json.load(open(sys.argv[1])); d['throughput']['requests_per_s'] = 'fast'; json.dump(d, open(sys.argv[3], 'w'))
d = json.load(open(sys.argv[1])); d['latency_s']['tpot']['p99'] = -1e308; json.dump(d, open(sys.argv[4], 'w'))
" "$m" "$tmp/nokey.json" "$tmp/string.json" "$tmp/negative.json"
expect_fail "a missing figure is named" 2 "latency_s.e2e.p90: missing" $llmsim validate --scenario "$sc" $lim --measured "$tmp/nokey.json"
expect_fail "a string figure is named" 2 "throughput.requests_per_s: not a non-negative number" \
    "$llmsim" validate --scenario "$sc" $lim --measured "$tmp/string.json"
expect_fail "a negative figure is named" 2 "latency_s.tpot.p99: not a non-negative number" \
    "$llmsim" validate --scenario "$sc" $lim --measured "$tmp/negative.json"
"$py" -c "import sys; open(sys.argv[1], 'w').write('[' * 200000)" "$tmp/deep.json"
expect_fail "a deeply nested file exits 2, no crash" 2 "deep.json" "$llmsim" validate --scenario "$sc" --measured "$tmp/deep.json"
"$py" -c "import sys; open(sys.argv[1], 'w').write('{\"pad\": \"' + 'x' * (20 << 20) + '\"}')" "$tmp/big.json"
expect_fail "a 20 MB summary without figures exits 2" 2 "latency_s.ttft.p50: missing" \
    "$llmsim" validate --scenario "$sc" $lim --measured "$tmp/big.json"
expect_fail "a bad scenario key exits 2 naming it" 2 "cluster.replicas" \
    "$llmsim" validate --scenario "$sc" --set cluster.replicas=-3 --measured "$m"

finish
