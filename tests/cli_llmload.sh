#!/bin/sh
# cli_llmload.sh -- llmload from the command line:
#  - usage and input errors (exit 2 naming the flag or FILE:LINE), an
#    unreachable server (exit 1);
#  - a hostile peer (a small Python server started here) that answers with
#    malformed SSE, streams that never finish, oversized lines, non-JSON
#    bodies, 429/503 and a stall: each is counted under the right outcome,
#    nothing crashes or hangs;
#  - against a real `llmserve serve` with a synthetic model on a free port
#    (skipped, saying so, when llmserve serve is not built): an open-loop
#    replay streams every request to completion with the trace's prompt and
#    output lengths, honours the arrival times, and writes summary.json keys
#    and the per-request CSV.
# Run by `make check`; exits 77 (skipped) when llmload is not built (no libcurl).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
llmload=$top_builddir/llmload
llmserve=$top_builddir/llmserve
llmsim=$top_builddir/llmsim
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || py=python3
tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
expect_fail() { # DESCRIPTION STATUS PATTERN COMMAND...
    d=$1 want=$2 pat=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ] && grep -q -- "$pat" "$tmp/err"; then ok "$d"; else
        not_ok "$d (status $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
    fi
}
# json FILE EXPR: evaluate a Python expression over the JSON document d.
json() { "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_http URL: up to 20 s for URL to answer 200.
wait_http() {
    i=0
    while [ $i -lt 200 ]; do
        "$py" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

if [ ! -x "$llmload" ]; then
    echo "skip: $llmload not built (configure found no libcurl)"
    exit 77
fi

hdr=arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant
printf '%s\n0.00,12,5,,\n0.05,20,8,,\n0.10,30,3,,\n' "$hdr" >"$tmp/small.csv"

# --- usage and input errors ---------------------------------------------------------
check "llmload --help" sh -c "'$llmload' --help | grep -q -- '--time-scale'"
expect_fail "no arguments: usage, exit 2" 2 "usage" "$llmload"
expect_fail "unknown option exits 2" 2 "unknown or incomplete option" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --bogus
expect_fail "a non-HTTP URL exits 2" 2 "--url" "$llmload" --url ftp://x --trace "$tmp/small.csv"
expect_fail "a URL without a host exits 2" 2 "no host" "$llmload" --url http:///v1 --trace "$tmp/small.csv"
expect_fail "--time-scale 0 exits 2" 2 "--time-scale" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --time-scale 0
expect_fail "--rate-scale abc exits 2" 2 "--rate-scale" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --rate-scale abc
expect_fail "--max-requests -1 exits 2" 2 "--max-requests" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --max-requests -1
expect_fail "--timeout garbage exits 2" 2 "--timeout" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --timeout 5parsecs
expect_fail "--prompt-mode other exits 2" 2 "--prompt-mode" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --prompt-mode words
expect_fail "an unknown --format exits 2" 2 "unknown format" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" --format nope
expect_fail "a missing trace fails naming it" 1 "nonexistent.csv" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/nonexistent.csv"
expect_fail "an unreachable server fails saying so" 1 "127.0.0.1:1" "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" -o "$tmp/x.json"

# --- a hostile peer ----------------------------------------------------------------------
# Each request's max_tokens picks the misbehaviour (the trace's output length).
cat >"$tmp/peer.py" <<'PY'
import json, sys, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class Peer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.send(200, b'{"object":"list","data":[{"id":"peer","object":"model"}]}')
    def sse(self, *chunks, done=True):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for c in chunks:
            self.wfile.write(c)
            self.wfile.flush()
        if done:
            self.wfile.write(b"data: [DONE]\n\n")
        self.close_connection = True
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        p = req["prompt"]
        pt = len(p) if isinstance(p, list) else 1 + p.count(" the")
        n = req["max_tokens"]
        tok = b'data: {"choices":[{"text":"a","index":0,"finish_reason":null}]}\n\n'
        usage = ('data: {"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}\n\n' % (pt, n)).encode()
        if n == 1 and not req.get("stream"):           # calibration: a well-formed answer
            return self.send(200, json.dumps({"choices": [{"text": "a"}], "usage": {"prompt_tokens": pt, "completion_tokens": 1}}).encode())
        if n == 2:                                       # a good stream
            return self.sse(tok, tok, usage)
        if n == 3:                                       # a chunk that is not JSON
            return self.sse(tok, b"data: {not json\n\n", usage)
        if n == 4:                                       # the stream stops without [DONE]
            return self.sse(tok, done=False)
        if n == 5:                                       # one line of 2 MiB
            return self.sse(tok, b"data: " + b"x" * (2 << 20) + b"\n\n")
        if n == 6:
            return self.send(429, b'{"error":{"message":"slow down"}}', extra=[("Retry-After", "1")])
        if n == 7:
            return self.send(503, b'{"error":{"message":"draining"}}')
        if n == 8:                                       # stalls past llmload's timeout
            time.sleep(3)
            return self.sse(tok, usage)
        if n == 9:                                       # an error event inside the stream
            return self.sse(tok, b'data: {"error":{"message":"engine failed"}}\n\n')
        if n == 10:                                      # no token at all
            return self.sse(usage)
        if n == 11:                                      # usage with the wrong types, CRLF lines
            return self.sse(tok.replace(b"\n", b"\r\n"), b'data: {"choices":[],"usage":{"prompt_tokens":"many"}}\r\n\r\n')
        return self.send(500, b"<html>boom</html>", ctype="text/html")
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Peer).serve_forever()
PY
pport=$(free_port)
"$py" "$tmp/peer.py" "$pport" 2>"$tmp/peer.err" &
pids="$pids $!"
if wait_http "http://127.0.0.1:$pport/v1/models"; then
    {
        echo "$hdr"
        for n in 2 3 4 5 6 7 8 9 10 11 12; do echo "0.0$n,4,$n,,"; done
    } >"$tmp/hostile-trace.csv"
    "$llmload" --url "http://127.0.0.1:$pport" --trace "$tmp/hostile-trace.csv" --stream --timeout 1s \
        -o "$tmp/hostile.json" -q 2>"$tmp/hostile.err"
    st=$?
    check "hostile peer: llmload finishes with status 0" test "$st" -eq 0
    # The outcome of each misbehaviour (keyed by its output length), from the CSV.
    outcomes=$(awk -F, 'NR > 1 {print $4 ":" $5}' "$tmp/hostile.csv" | sort -n | tr '\n' ' ')
    want="2:completed 3:failed 4:failed 5:failed 6:rejected 7:rejected 8:timed_out 9:failed 10:failed 11:completed 12:failed "
    check "hostile peer: each answer classified (got: $outcomes)" test "$outcomes" = "$want"
    check "hostile peer: summary counts" test "$(json "$tmp/hostile.json" \
        "[d['requests'][k] for k in ('arrived','completed','rejected','timed_out','failed')]")" = "[11, 2, 2, 1, 6]"
    check "hostile peer: HTTP statuses counted" test "$(json "$tmp/hostile.json" \
        "sorted(d['load']['http_status'].items())")" = "[('200', 7), ('429', 1), ('500', 1), ('503', 1), ('none', 1)]"
    check "hostile peer: the 500 body is quoted in the CSV" grep -q '^[0-9]*,[0-9.]*,4,12,failed,500,.*"<html>boom</html>"$' "$tmp/hostile.csv"
    check "hostile peer: the malformed chunk is named" grep -q ',3,failed,200,.*not JSON' "$tmp/hostile.csv"
    # Non-streamed answers that are not JSON.
    printf '%s\n0.0,4,12,,\n' "$hdr" >"$tmp/h2.csv"
    "$llmload" --url "http://127.0.0.1:$pport/v1/completions" --trace "$tmp/h2.csv" -o "$tmp/h2.json" -q 2>/dev/null
    check "hostile peer: a non-JSON error body, not streamed, is a failure" test "$(json "$tmp/h2.json" "d['requests']['failed']")" = 1
else
    not_ok "the hostile peer did not start: $(head -c 300 "$tmp/peer.err")"
fi

echo "cli_llmload: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
