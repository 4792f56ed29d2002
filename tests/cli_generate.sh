#!/bin/sh
# cli_generate.sh -- `llmserve generate` from the command line: help, usage
# errors (exit 2 with a message naming the option), and parity on
# ../shared/models/stories260K.bin: tests/ref_llama.py (float64 numpy, written
# independently) first reproduces llama2.c's position-0 logits, then its 64
# greedy ids from BOS must equal llmserve's, f32 through the engine, and
# the same weights written as GGUF by the gguf package must give them too.  Then
# sampling with a seed is repeatable, --quantize q8 runs, and text mode works
# with tokenizer.bin on a synthetic model of its vocabulary.  Run by `make
# check`; the parts needing ../shared (LLMSCALE_SHARED) or Python ($PYTHON3)
# say so and are skipped; exits 77 when llmserve was not built.
. "$(dirname "$0")/lib.sh"
llmserve=$top_builddir/llmserve
[ -x "$llmserve" ] || skip "$llmserve not built"
LLMSCALE_LOG=warn
export LLMSCALE_LOG

small=synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=300,seq=128

# --- help and usage ----------------------------------------------------------------
check "generate --help" sh -c "'$llmserve' generate --help | grep -q 'usage: llmserve generate'"
check "llmserve --help lists generate" sh -c "'$llmserve' --help | grep -q 'generate'"
expect_fail "no --model exits 2" 2 "--model is required" "$llmserve" generate
expect_fail "unknown option exits 2" 2 "unknown or incomplete option" "$llmserve" generate --bogus
expect_fail "bad -n exits 2" 2 "\-n: 'x'" "$llmserve" generate --model "$small" -n x
expect_fail "negative temperature exits 2" 2 "temperature" "$llmserve" generate --model "$small" -t -1
expect_fail "bad --top-p exits 2" 2 "top-p" "$llmserve" generate --model "$small" --top-p 1.5
expect_fail "bad --seed exits 2" 2 "seed" "$llmserve" generate --model "$small" --seed -3
expect_fail "bad --quantize exits 2" 2 "unknown type 'q4'" "$llmserve" generate --model "$small" --quantize q4
expect_fail "bad --prompt-ids exits 2" 2 "is not a token id" "$llmserve" generate --model "$small" --prompt-ids "1 2x 3" --print-ids
expect_fail "empty --prompt-ids exits 2" 2 "no token ids" "$llmserve" generate --model "$small" --prompt-ids " " --print-ids
expect_fail "a negative id exits 2" 2 "is not a token id" "$llmserve" generate --model "$small" --prompt-ids "1 -5" --print-ids
expect_fail "an id past INT_MAX exits 2" 2 "is not a token id" "$llmserve" generate --model "$small" --prompt-ids "1 99999999999999999999" --print-ids
expect_fail "-n 0 exits 2" 2 "\-n: '0'" "$llmserve" generate --model "$small" -n 0 --print-ids
expect_fail "a prompt longer than the context exits 2" 2 "context" "$llmserve" generate --model "$small" --print-ids --prompt-ids "$(seq -s ' ' 1 130)"
expect_fail "id outside the vocabulary exits 2" 2 "outside the vocabulary" "$llmserve" generate --model "$small" --prompt-ids "1 300" --print-ids
expect_fail "--prompt without a tokenizer exits 2" 2 "needs a tokenizer" "$llmserve" generate --model "$small" --prompt hi
expect_fail "text without a tokenizer exits 2" 2 "no tokenizer" "$llmserve" generate --model "$small"
expect_fail "both prompts exit 2" 2 "exclude each other" "$llmserve" generate --model "$small" --prompt a --prompt-ids 1
expect_fail "missing model file exits 2" 2 "nonexistent" "$llmserve" generate --model "$tmp/nonexistent.bin" --print-ids
head -c 100 /dev/urandom >"$tmp/garbage.bin"
expect_fail "garbage model file fails" 2 "garbage.bin" "$llmserve" generate --model "$tmp/garbage.bin" --print-ids

# --- ids without a tokenizer ------------------------------------------------------------
"$llmserve" generate --model "$small" --prompt-ids "1 5 9" -n 12 -t 0 --ignore-eos --print-ids >"$tmp/ids" 2>"$tmp/err"
check "--print-ids prints 12 ids" sh -c "test \$(wc -w <'$tmp/ids') -eq 12"
check "the summary names the finish" grep -q "finish length" "$tmp/err"
"$llmserve" generate --model "$small" --prompt-ids "1 5 9" -n 20 -t 0.9 --seed 7 --ignore-eos --print-ids >"$tmp/s1" 2>/dev/null
"$llmserve" generate --model "$small" --prompt-ids "1 5 9" -n 20 -t 0.9 --seed 7 --ignore-eos --print-ids >"$tmp/s2" 2>/dev/null
"$llmserve" generate --model "$small" --prompt-ids "1 5 9" -n 20 -t 0.9 --seed 8 --ignore-eos --print-ids >"$tmp/s3" 2>/dev/null
check "the same seed draws the same tokens" cmp -s "$tmp/s1" "$tmp/s2"
check "another seed draws others" sh -c "! cmp -s '$tmp/s1' '$tmp/s3'"
"$llmserve" generate --model "$small" --prompt-ids "1 5 9" -n 12 -t 0 --ignore-eos --print-ids --quantize q8 --threads 1 >"$tmp/q8" 2>/dev/null
check "--quantize q8 --threads 1 prints 12 ids" sh -c "test \$(wc -w <'$tmp/q8') -eq 12"

# --- parity with llama2.c and the float64 reference -------------------------------------------
model=$shared/models/stories260K.bin
logits=$shared/models/stories260K.logits-pos0-bos.txt
py=${PYTHON3:-}
if [ ! -f "$model" ] || [ ! -f "$logits" ]; then
    echo "skip: $model or its logits are absent (set LLMSCALE_SHARED): no parity checks"
elif [ -z "$py" ] || ! "$py" -c 'import numpy' 2>/dev/null; then
    echo "skip: no Python with numpy (\$PYTHON3, from scripts/setup.sh): no parity checks"
else
    "$py" "$top_srcdir/tests/ref_llama.py" "$model" logits >"$tmp/ref_logits" 2>"$tmp/err"
    check "ref_llama.py computes the logits" test -s "$tmp/ref_logits"
    check "ref_llama.py reproduces llama2.c's position-0 logits (1e-4 normwise)" "$py" -c "
import sys
a = [float(x) for x in open('$tmp/ref_logits')]
b = [float(x) for x in open('$logits')]
assert len(a) == len(b) == 512, (len(a), len(b))
err = max(abs(x - y) for x, y in zip(a, b)) / max(abs(y) for y in b)
print('  reference vs llama2.c logits: normwise error %.2g' % err)
sys.exit(0 if err < 1e-4 else 1)"
    "$py" "$top_srcdir/tests/ref_llama.py" "$model" greedy -n 64 >"$tmp/ref_ids"
    "$llmserve" generate --model "$model" -n 64 -t 0 --print-ids >"$tmp/ids" 2>"$tmp/err"
    check "64 greedy ids from BOS equal the float64 reference's" cmp -s "$tmp/ids" "$tmp/ref_ids"
    "$py" "$top_srcdir/tests/ref_llama.py" "$model" greedy -n 30 --prompt-ids "1 300 41 7" >"$tmp/ref_ids2"
    "$llmserve" generate --model "$model" --prompt-ids "1 300 41 7" -n 30 -t 0 --ignore-eos --print-ids >"$tmp/ids2" 2>"$tmp/err"
    check "greedy ids after a 4-token prompt equal the reference's" cmp -s "$tmp/ids2" "$tmp/ref_ids2"
    # the same weights in a GGUF file (written by the gguf package, llama.cpp's own)
    "$py" "$top_srcdir/tests/gguf_write.py" "$tmp/s.gguf" --from "$model" >/dev/null 2>&1
    st=$?
    if [ "$st" -eq 77 ]; then
        echo "skip: no gguf Python module: no GGUF parity"
    else
        "$llmserve" generate --model "$tmp/s.gguf" -n 64 -t 0 --print-ids >"$tmp/gguf_ids" 2>"$tmp/err"
        check "the same model as GGUF gives the same 64 greedy ids" cmp -s "$tmp/gguf_ids" "$tmp/ref_ids"
        "$py" "$top_srcdir/tests/gguf_write.py" "$tmp/q.gguf" --from "$model" --type q8_0 >/dev/null 2>&1
        "$llmserve" generate --model "$tmp/q.gguf" -n 64 -t 0 --ignore-eos --print-ids >"$tmp/q8_ids" 2>"$tmp/err"
        check "a Q8_0 GGUF generates 64 ids" sh -c "test \$(wc -w <'$tmp/q8_ids') -eq 64"
    fi
fi

# --- text, with tokenizer.bin ------------------------------------------------------------------
tok=$shared/models/tokenizer.bin
if [ -f "$tok" ]; then
    text=synthetic:dim=64,layers=1,heads=2,hidden=64,vocab=32000,seq=256
    "$llmserve" generate --model "$text" --tokenizer "$tok" --prompt "Once upon a time" -n 16 -t 0 --ignore-eos >"$tmp/text" 2>"$tmp/err"
    check "text mode prints the prompt, then the text" sh -c "head -c 16 '$tmp/text' | grep -q '^Once upon a time'"
    check "text mode generates 16 tokens" grep -q "5 prompt + 16 generated" "$tmp/err"
else
    echo "skip: $tok is absent: no text checks"
fi

finish
