#!/bin/sh
# cli_tokenize.sh -- `llmserve tokenize` / `llmserve detokenize`: the Llama 2
# ids of Meta's example prompts through tokenizer.bin and through a GGUF file
# that embeds it (written by tests/gguf_write.py with the gguf package),
# round trips, and exit status 2 with a message on bad input.
# Run by `make check` (top_srcdir, top_builddir, LLMSCALE_SHARED and PYTHON3
# exported); skips (77) without ../shared/models/tokenizer.bin.
. "$(dirname "$0")/lib.sh"
llmserve=$top_builddir/llmserve
tok=$shared/models/tokenizer.bin
# expect_out DESCRIPTION WANT COMMAND...: standard output is exactly WANT.
expect_out() {
    d=$1 want=$2
    shift 2
    got=$("$@" 2>"$tmp/err")
    if [ "$got" = "$want" ]; then ok "$d"; else not_ok "$d (got '$got', want '$want'; $(head -c 300 "$tmp/err"))"; fi
}

# --- usage (no data needed) ---------------------------------------------------------
if "$llmserve" tokenize --help | grep -q -- '--text TEXT' && "$llmserve" detokenize --help | grep -q -- '--ids'; then
    ok "help texts name their options"
else
    not_ok "help texts name their options"
fi
expect_fail "tokenize without a tokenizer exits 2" 2 "give --model M or --tokenizer T" "$llmserve" tokenize --text hi
expect_fail "tokenize without text exits 2" 2 "give --text" "$llmserve" tokenize --tokenizer x
expect_fail "a missing tokenizer file exits 2" 2 "/nonexistent.bin: cannot open" \
    "$llmserve" tokenize --tokenizer /nonexistent.bin --text hi
printf 'garbage' >"$tmp/bad.bin"
expect_fail "a corrupt tokenizer exits 2" 2 "bad.bin: header: max_token_length" \
    "$llmserve" tokenize --tokenizer "$tmp/bad.bin" --text hi
expect_fail "a synthetic model has no tokenizer" 2 "has no tokenizer" \
    "$llmserve" tokenize --model synthetic:stories260K --text hi

[ -r "$tok" ] || skip "the parity checks: $tok not found"

# --- parity with Meta's SentencePiece (ids from Llama 2's example_text_completion.py) ---
expect_out "empty text is just BOS" "1" "$llmserve" tokenize --tokenizer "$tok" --text ""
expect_out "meaning of life" "1 306 4658 278 6593 310 2834 338" \
    "$llmserve" tokenize --tokenizer "$tok" --text "I believe the meaning of life is"
expect_out "theory of relativity" "1 3439 17632 1925 29892 278 6368 310 14215 537 5922 393 29871" \
    "$llmserve" tokenize --tokenizer "$tok" --text "Simply put, the theory of relativity states that "
expect_out "detokenize" "I believe the meaning of life is" \
    "$llmserve" detokenize --tokenizer "$tok" --ids "1 306 4658 278 6593 310 2834 338"
expect_out "detokenize takes commas" "I believe" "$llmserve" detokenize --tokenizer "$tok" --ids "1,306,4658"
for text in "Hello, world!" "caf$(printf '\303\251') $(printf '\346\227\245\346\234\254\350\252\236') $(printf '\360\237\230\200')"; do
    ids=$("$llmserve" tokenize --tokenizer "$tok" --text "$text")
    expect_out "round trip: $text" "$text" "$llmserve" detokenize --tokenizer "$tok" --ids "$ids"
done
expect_out "a character split over byte tokens prints whole" "$(printf '\360\237\230\200')" \
    "$llmserve" detokenize --tokenizer "$tok" --ids "1 243 162 155 131"
expect_out "a broken character prints U+FFFD" "a$(printf '\357\277\275')" \
    "$llmserve" detokenize --tokenizer "$tok" --ids "1 29874 243 162"
expect_fail "an id beyond the vocabulary exits 2" 2 "'32000' is not a token id (0..31999)" \
    "$llmserve" detokenize --tokenizer "$tok" --ids "1 32000"
expect_fail "a word in --ids exits 2" 2 "'abc' is not a token id" \
    "$llmserve" detokenize --tokenizer "$tok" --ids "1 abc"
expect_fail "a negative id exits 2" 2 "'-4' is not a token id" \
    "$llmserve" detokenize --tokenizer "$tok" --ids "-4"

# --- the same tokenizer embedded in a GGUF file -----------------------------------------
if [ -n "${PYTHON3:-}" ] && "$PYTHON3" "$top_srcdir/tests/gguf_write.py" "$tmp/tok.gguf" \
    --random 16,1,2,2,32,0,64 --tokenizer "$tok" 2>"$tmp/py.err"; then
    expect_out "GGUF tokenizer: meaning of life" "1 306 4658 278 6593 310 2834 338" \
        "$llmserve" tokenize --model "$tmp/tok.gguf" --text "I believe the meaning of life is"
    expect_out "GGUF tokenizer: detokenize" "Simply put, the theory" \
        "$llmserve" detokenize --model "$tmp/tok.gguf" --ids "1 3439 17632 1925 29892 278 6368"
else
    echo "cli_tokenize.sh: SKIP the GGUF checks: $(cat "$tmp/py.err" 2>/dev/null | tail -1)"
fi

finish
