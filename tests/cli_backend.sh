#!/bin/sh
# cli_backend.sh -- llmserve's --backend from the command line: auto (the
# default: cuda when the build has CUDA and a device is present, else cpu),
# cpu, ref and cuda, for `generate` (also from LLMSERVE_BACKEND) and
# `serve`.  An unknown name exits 2 naming it.  Without a usable device
# (or without CUDA in the build), cuda fails at once with a message naming
# the backend, and auto picks cpu and says so in the log; with one, cuda
# and auto generate the greedy ids the cpu backend does.  Run by `make
# check`; exits 77 when llmserve was not built.
. "$(dirname "$0")/lib.sh"
llmserve=$top_builddir/llmserve
[ -x "$llmserve" ] || skip "$llmserve not built"
LLMSCALE_LOG=warn
export LLMSCALE_LOG
unset LLMSERVE_BACKEND

small=synthetic:dim=64,layers=2,heads=4,kv_heads=2,hidden=96,vocab=300,seq=128
gen() { # gen BACKEND OUT: 12 greedy ids of the small model, stderr in OUT.err
    "$llmserve" generate --model "$small" --prompt-ids "1 5 9 33 7" -n 12 -t 0 --ignore-eos --print-ids \
        --backend "$1" >"$2" 2>"$2.err"
}

# --- help and bad names -------------------------------------------------------------
check "generate --help lists --backend" sh -c "'$llmserve' generate --help | grep -q -- '--backend NAME'"
check "serve --help lists --backend and LLMSERVE_BACKEND" \
    sh -c "'$llmserve' serve --help | grep -q -- '--backend NAME' && '$llmserve' serve --help | grep -q LLMSERVE_BACKEND"
expect_fail "generate --backend bogus exits 2" 2 "unknown backend 'bogus'" \
    "$llmserve" generate --model "$small" --print-ids --backend bogus
expect_fail "LLMSERVE_BACKEND=bogus generate exits 2" 2 "unknown backend 'bogus'" \
    env LLMSERVE_BACKEND=bogus "$llmserve" generate --model "$small" --print-ids
expect_fail "serve --backend bogus exits 2" 2 "\-\-backend: 'bogus'" \
    "$llmserve" serve --model "$small" --port 0 --backend bogus
expect_fail "LLMSERVE_BACKEND=bogus serve exits 2" 2 "LLMSERVE_BACKEND: --backend: 'bogus'" \
    env LLMSERVE_BACKEND=bogus "$llmserve" serve --model "$small" --port 0

# --- cpu and ref ------------------------------------------------------------------------
gen cpu "$tmp/cpu"
check "cpu generates 12 ids" sh -c "test \$(wc -w <'$tmp/cpu') -eq 12"
gen ref "$tmp/ref"
check "ref generates the ids cpu does" cmp -s "$tmp/cpu" "$tmp/ref"
LLMSERVE_BACKEND=ref "$llmserve" generate --model "$small" --prompt-ids "1 5 9 33 7" -n 12 -t 0 --ignore-eos \
    --print-ids >"$tmp/env" 2>/dev/null
check "LLMSERVE_BACKEND=ref generates them too" cmp -s "$tmp/cpu" "$tmp/env"

# --- cuda and auto: with a device or without ----------------------------------------------
gen cuda "$tmp/cuda"
status=$?
if [ "$status" -eq 0 ]; then
    echo "# a CUDA device is present: cuda and auto must match cpu"
    check "cuda generates the ids cpu does" cmp -s "$tmp/cpu" "$tmp/cuda"
    LLMSCALE_LOG=info gen auto "$tmp/auto"
    check "auto picks cuda and says so" grep -q "backend auto: cuda" "$tmp/auto.err"
    check "auto generates the ids cpu does" cmp -s "$tmp/cpu" "$tmp/auto"
else
    echo "# no usable CUDA device (or no CUDA in this build)"
    check "generate --backend cuda fails with 1 or 2" test "$status" -eq 1 -o "$status" -eq 2
    check "the message names the backend" grep -q "backend cuda: " "$tmp/cuda.err"
    check "and prints no ids" test ! -s "$tmp/cuda"
    expect_fail "serve --backend cuda fails before listening" "1 2" "backend cuda: " \
        "$llmserve" serve --model "$small" --port 0 --backend cuda
    check "serve printed no listening line" sh -c "! grep -q listening '$tmp/out'"
    LLMSCALE_LOG=info gen auto "$tmp/auto"
    check "auto runs" test $? -eq 0
    check "auto picks cpu and says so" grep -q "backend auto: cpu (" "$tmp/auto.err"
    check "auto generates the ids cpu does" cmp -s "$tmp/cpu" "$tmp/auto"
    "$llmserve" generate --model "$small" --prompt-ids "1 5 9 33 7" -n 12 -t 0 --ignore-eos --print-ids \
        >"$tmp/default" 2>/dev/null
    check "the default is auto (cpu here)" cmp -s "$tmp/cpu" "$tmp/default"
fi

finish
