#!/bin/sh
# cli_trace.sh -- `llmsim trace stats` and `llmsim trace gen` end to end:
# output, exit statuses, FILE:LINE errors, and that the committed example
# trace regenerates byte for byte.  Uses $top_builddir and $top_srcdir
# (exported by `make check`); exits 77 (skip) when llmsim is not built.
set -u

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
LLMSIM="$top_builddir/llmsim"
if [ ! -x "$LLMSIM" ]; then
    echo "cli_trace: $LLMSIM not built: skipping"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_trace.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect_status WANT CMD... : run CMD, stdout to $tmp/out, stderr to $tmp/err.
expect_status() {
    want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "exit $got (wanted $want): $*"
        sed 's/^/  stderr: /' "$tmp/err"
    fi
}

# expect_in FILE TEXT : FILE contains TEXT (fixed string).
expect_in() {
    if ! grep -F -q -- "$2" "$1"; then
        fail "$1 lacks '$2'"
        sed 's/^/  | /' "$1" | head -20
    fi
}

# --- help and usage ---------------------------------------------------------
expect_status 0 "$LLMSIM" trace --help
expect_in "$tmp/out" "llmsim trace stats FILE"
expect_status 0 "$LLMSIM" trace stats --help
expect_status 0 "$LLMSIM" trace gen --help
expect_in "$tmp/out" "--seed"
expect_status 2 "$LLMSIM" trace
expect_status 2 "$LLMSIM" trace frobnicate
expect_status 2 "$LLMSIM" trace stats
expect_status 2 "$LLMSIM" trace stats --bogus x.csv
expect_status 2 "$LLMSIM" trace stats x.csv --interval 0
expect_status 2 "$LLMSIM" trace gen '{kind: poisson, rate: 1, duration: 1s}' --seed -3

# --- gen and stats -------------------------------------------------------------
expect_status 0 "$LLMSIM" trace gen '{kind: poisson, rate: 20, duration: 100s}' -o "$tmp/p.csv" --seed 7
expect_in "$tmp/p.csv" "arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant"
lines=$(wc -l <"$tmp/p.csv")
if [ "$lines" -lt 1800 ] || [ "$lines" -gt 2200 ]; then
    fail "poisson 20/s for 100s wrote $lines lines"
fi
expect_status 0 "$LLMSIM" trace gen '{kind: poisson, rate: 20, duration: 100s}' -o "$tmp/p2.csv" --seed 7
cmp -s "$tmp/p.csv" "$tmp/p2.csv" || fail "the same seed gave different traces"
expect_status 0 "$LLMSIM" trace gen '{kind: poisson, rate: 20, duration: 100s}' -o "$tmp/p3.csv" --seed 8
cmp -s "$tmp/p.csv" "$tmp/p3.csv" && fail "different seeds gave the same trace"

expect_status 0 "$LLMSIM" trace stats "$tmp/p.csv"
expect_in "$tmp/out" "requests       $((lines - 1))"
expect_in "$tmp/out" "(native)"
expect_in "$tmp/out" "prompt tokens  p50 512"
expect_in "$tmp/out" "output tokens  p50 128"
expect_status 0 "$LLMSIM" trace stats "$tmp/p.csv" --json --interval 10s
expect_in "$tmp/out" "\"requests\": $((lines - 1))"
expect_in "$tmp/out" "\"interval_s\": 10.0"
expect_in "$tmp/out" "\"format\": \"native\""
if [ -n "${PYTHON3:-}" ]; then
    "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["rate"]) == 10, d["rate"]' \
        "$tmp/out" || fail "stats --json is not the JSON expected"
fi

# A spec file with an unknown key: exit 2, FILE:LINE and the key.
printf 'kind: poisson\nrate: 5\nduration: 1m\nrat: 3\n' >"$tmp/bad.yaml"
expect_status 2 "$LLMSIM" trace gen "$tmp/bad.yaml" -o "$tmp/never.csv"
expect_in "$tmp/err" "$tmp/bad.yaml:4: unknown key 'rat'"
[ -e "$tmp/never.csv" ] && fail "a failed gen left its output behind"

# --- malformed input --------------------------------------------------------------
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0,abc,44\n' \
    >"$tmp/bad.csv"
expect_status 2 "$LLMSIM" trace stats "$tmp/bad.csv"
expect_in "$tmp/err" "$tmp/bad.csv:3: ContextTokens: expected a non-negative integer, got 'abc'"
printf '{"timestamp": 1, "input_length": 5}\n' >"$tmp/bad.jsonl"
expect_status 2 "$LLMSIM" trace stats "$tmp/bad.jsonl"
expect_in "$tmp/err" "$tmp/bad.jsonl:1: output_length: missing"
expect_status 2 "$LLMSIM" trace stats "$tmp/p.csv" --format parquet
expect_in "$tmp/err" "unknown trace format 'parquet'"
expect_status 2 "$LLMSIM" trace stats "$tmp/p.csv" --format azure
expect_in "$tmp/err" "$tmp/p.csv:1: azure: expected the header"
expect_status 1 "$LLMSIM" trace stats "$tmp/does-not-exist.csv"
: >"$tmp/empty.csv"
expect_status 0 "$LLMSIM" trace stats "$tmp/empty.csv"
expect_in "$tmp/out" "requests       0"

# --- the committed example regenerates byte for byte ------------------------------
expect_status 0 "$LLMSIM" trace gen "$top_srcdir/workloads/examples/chat-gen.yaml" -o "$tmp/chat.csv" --seed 1
if ! cmp -s "$tmp/chat.csv" "$top_srcdir/workloads/examples/chat-30m.csv"; then
    fail "workloads/examples/chat-30m.csv differs from what chat-gen.yaml generates with --seed 1"
fi

# --- the real Azure trace, when present ----------------------------------------------
azure="${LLMSCALE_SHARED:-$top_srcdir/../shared}/traces/azure-llm-2023-conv.csv"
if [ -r "$azure" ]; then
    expect_status 0 "$LLMSIM" trace stats "$azure"
    expect_in "$tmp/out" "requests       19366"
    expect_in "$tmp/out" "(azure)"
else
    echo "cli_trace: $azure not found: skipping the real-trace check"
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_trace: $failures failures"
    exit 1
fi
echo "cli_trace: all passed"
exit 0
