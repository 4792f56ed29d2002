#!/bin/sh
# cli_llmbench.sh -- llmbench from the command line: help, exit status 2 with
# a message on bad arguments, tiny roofline/matmul/attention runs that print a
# table and write valid JSON, and `llmbench report` on their directory.
# Kept small (tiny sizes, a 16 MiB roofline) so it runs in seconds, also
# under the sanitizers.  Run by `make check` (top_srcdir and top_builddir
# exported); exits 77 (skipped) when llmbench was not built.
. "$(dirname "$0")/lib.sh"
llmbench=$top_builddir/llmbench
[ -x "$llmbench" ] || skip "$llmbench not built"
LLMSCALE_LOG=warn
export LLMSCALE_LOG

# valid_json FILE: python3 parses it when there is one, else it is not empty.
valid_json() {
    py=${PYTHON3:-$(command -v python3 || true)}
    if [ -n "$py" ]; then
        "$py" -m json.tool "$1" >/dev/null 2>&1
    else
        test -s "$1"
    fi
}

# --- help and usage ---------------------------------------------------------------
check "llmbench --help lists the commands" sh -c "'$llmbench' --help | grep -q 'matmul' && '$llmbench' --help | grep -q 'attention'"
for c in roofline matmul attention report model profile calibrate cuda; do
    check "llmbench $c --help" sh -c "'$llmbench' $c --help | grep -q 'usage: llmbench $c'"
done
# without a GPU (or without CUDA built in) `llmbench cuda` says why and fails
"$llmbench" cuda --quick >"$tmp/out" 2>"$tmp/err"
st=$?
if [ "$st" -eq 0 ]; then
    ok "llmbench cuda ran (a GPU is present)"
else
    check "llmbench cuda without a GPU: exit 1 or 2, saying why ($st)" sh -c "[ $st -eq 1 -o $st -eq 2 ] &&
        grep -qi 'cuda' '$tmp/err'"
fi
expect_fail "no command exits 2" 2 "usage" "$llmbench"
expect_fail "unknown command exits 2" 2 "unknown command" "$llmbench" frobnicate
expect_fail "unknown option exits 2" 2 "unknown or incomplete option" "$llmbench" matmul --bogus
expect_fail "unknown dtype exits 2" 2 "unknown dtype 'f16'" "$llmbench" matmul --dtype f16
expect_fail "unknown backend exits 2" 2 "unknown backend 'gpu'" "$llmbench" matmul --backend gpu
expect_fail "malformed --sizes 12x exits 2" 2 "'12x' is not N or MxNxK" "$llmbench" matmul --sizes 12x
expect_fail "malformed --sizes 1x2 exits 2" 2 "is not N or MxNxK" "$llmbench" matmul --sizes 1x2
expect_fail "empty item in --sizes exits 2" 2 "empty" "$llmbench" matmul --sizes 64,,128
expect_fail "zero size exits 2" 2 "sizes must be in" "$llmbench" matmul --sizes 0
expect_fail "negative size exits 2" 2 "sizes must be in" "$llmbench" matmul --sizes 1x-5x64
expect_fail "absurd size is refused (memory), exit 2" 2 "GiB limit" "$llmbench" matmul --sizes 100000
expect_fail "q8 with k not a multiple of the group exits 2" 2 "multiple of the group" \
    "$llmbench" matmul --dtype q8 --sizes 1x64x40
expect_fail "bad --threads exits 2" 2 "--threads" "$llmbench" matmul --threads 0
expect_fail "bad --repeat exits 2" 2 "--repeat: 'x' is not an integer" "$llmbench" matmul --repeat x
expect_fail "openblas backend with q8 exits 2" 2 "only --dtype f32" \
    "$llmbench" matmul --backend openblas --dtype q8
expect_fail "unknown attention mode exits 2" 2 "unknown mode" "$llmbench" attention --mode sideways
expect_fail "kv-heads must divide heads, exit 2" 2 "must divide" "$llmbench" attention --heads 6 --kv-heads 4
expect_fail "absurd context is refused, exit 2" 2 "GiB limit" "$llmbench" attention --context 1000000
expect_fail "bad context exits 2" 2 "--context" "$llmbench" attention --context -3
expect_fail "bad --rounds exits 2" 2 "--rounds" "$llmbench" attention --rounds 0
expect_fail "bad matmul --rounds exits 2" 2 "--rounds" "$llmbench" matmul --rounds 101
expect_fail "report without DIR exits 2" 2 "needs one DIR" "$llmbench" report
expect_fail "report on a missing DIR exits 2" 2 "nowhere" "$llmbench" report "$tmp/nowhere"
mkdir "$tmp/empty"
expect_fail "report on a DIR without results exits 2" 2 "no llmbench JSON files" "$llmbench" report "$tmp/empty"
echo '{"tool": "llmbench",' >"$tmp/empty/broken.json"
expect_fail "report on a broken JSON file names it, exit 2" 2 "broken.json:" "$llmbench" report "$tmp/empty"
expect_fail "--roofline file that is not there: exit 2 naming it" 2 "missing.json" \
    "$llmbench" matmul --sizes 64 --roofline "$tmp/missing.json"

# --- tiny runs ----------------------------------------------------------------------------
out=$tmp/res
mkdir "$out"
"$llmbench" roofline --threads 2 --mib 16 --repeat 1 --json "$out/roofline.json" >"$tmp/roof.out" 2>"$tmp/roof.err"
check "roofline runs" test $? -eq 0
check "roofline prints a table" grep -q 'GB/s' "$tmp/roof.out"
check "roofline.json is valid JSON" valid_json "$out/roofline.json"

"$llmbench" matmul --sizes 64,1x64x96 --repeat 2 --threads 2 --roofline "$out/roofline.json" \
    --json "$out/matmul-f32.json" >"$tmp/mm.out" 2>"$tmp/mm.err"
check "matmul --sizes 64 runs" test $? -eq 0
check "matmul prints a table row per case" sh -c "grep -q '64x64x64' '$tmp/mm.out' && grep -q '1x64x96' '$tmp/mm.out'"
check "matmul-f32.json is valid JSON" valid_json "$out/matmul-f32.json"
check "matmul JSON has the figures" sh -c "grep -q '\"gflops\"' '$out/matmul-f32.json' &&
    grep -q '\"roofline_fraction\"' '$out/matmul-f32.json' && grep -q '\"max_rel_err\"' '$out/matmul-f32.json'"

"$llmbench" matmul --sizes 2x64x64 --dtype q8 --repeat 2 --threads 2 --roofline "$out/roofline.json" \
    --json "$out/matmul-q8.json" >"$tmp/q8.out" 2>"$tmp/q8.err"
check "matmul --dtype q8 runs" test $? -eq 0
check "matmul-q8.json is valid JSON" valid_json "$out/matmul-q8.json"

LLMSCALE_LOG=info "$llmbench" matmul --sizes 2x64x64 --dtype q8 --repeat 2 --rounds 2 --threads 2 \
    --roofline "$out/roofline.json" --json "$tmp/mm-rounds.json" >"$tmp/mmr.out" 2>"$tmp/mmr.err"
check "matmul --rounds 2 runs" test $? -eq 0
check "matmul --rounds 2 logs each round" test "$(grep -c 'round [12]: ' "$tmp/mmr.err")" -eq 2
check "matmul --rounds 2 is in the JSON" grep -q '"rounds": 2' "$tmp/mm-rounds.json"
check "matmul --rounds keeps q8's error against the f32 weights (not OpenBLAS's output)" \
    sh -c "grep -q '^ *2x64x64 .* [0-9.]*e-0[34] *\$' '$tmp/mmr.out'"

"$llmbench" attention --context 64 --repeat 2 --threads 2 --roofline "$out/roofline.json" \
    --json "$out/attention.json" >"$tmp/att.out" 2>"$tmp/att.err"
check "attention --context 64 runs" test $? -eq 0
check "attention prints decode and prefill rows" sh -c "grep -q '^decode' '$tmp/att.out' && grep -q '^prefill' '$tmp/att.out'"
check "attention.json is valid JSON" valid_json "$out/attention.json"

# --rounds: the roofline measured again before each round (no --roofline file)
LLMSCALE_LOG=info "$llmbench" attention --mode decode --context 64 --repeat 1 --rounds 3 --threads 2 \
    --json "$tmp/att-rounds.json" >"$tmp/attr.out" 2>"$tmp/attr.err"
check "attention --rounds 3 runs" test $? -eq 0
check "attention --rounds 3 logs each round's roofline" test "$(grep -c 'round [123]: .* GB/s measured' "$tmp/attr.err")" -eq 3
check "attention --rounds 3 writes three rounds" test "$(grep -o '"roofline_fraction"' "$tmp/att-rounds.json" | wc -l)" -eq 4

"$llmbench" report "$out" >"$tmp/rep.out" 2>"$tmp/rep.err"
check "report runs" test $? -eq 0
check "report writes report.html" test -s "$out/report.html"
check "report.html has every file's table" sh -c "grep -q 'matmul-f32.json' '$out/report.html' &&
    grep -q 'attention.json' '$out/report.html' && grep -q 'roofline.json' '$out/report.html'"
sed 's/"backend": "cpu"/"backend": "<b>\&cpu"/' "$out/matmul-f32.json" >"$out/zz-escaped.json"
"$llmbench" report "$out" >/dev/null 2>&1
check "report escapes strings from the JSON files" sh -c "grep -q '&lt;b&gt;&amp;cpu' '$out/report.html' &&
    ! grep -q '<b>&cpu' '$out/report.html'"
if [ -n "$(command -v gnuplot)" ]; then
    check "report draws the charts" sh -c "test -s '$out/bench_matmul.png' && test -s '$out/bench_fraction.png' &&
        test -s '$out/bench_roofline.png' && grep -q '<img' '$out/report.html'"
fi

finish
