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
. "$(dirname "$0")/lib.sh"
llmload=$top_builddir/llmload
llmserve=$top_builddir/llmserve
llmsim=$top_builddir/llmsim
py=${PYTHON3:-python3}
command -v "$py" >/dev/null 2>&1 || py=python3
pids=""
at_exit() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
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

[ -x "$llmload" ] || skip "$llmload not built (configure found no libcurl)"

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
: >"$tmp/afile"
expect_fail "an output directory that cannot be made is named, before any request" 1 "afile/sub" \
    "$llmload" --url http://127.0.0.1:1 --trace "$tmp/small.csv" -o "$tmp/afile/sub/x.json"

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
    outcomes=$(awk -F, 'NR > 1 {print $4 ":" $5}' "$tmp/hostile-requests.csv" | sort -n | tr '\n' ' ')
    want="2:completed 3:failed 4:failed 5:failed 6:rejected 7:rejected 8:timed_out 9:failed 10:failed 11:completed 12:failed "
    check "hostile peer: each answer classified (got: $outcomes)" test "$outcomes" = "$want"
    check "hostile peer: summary counts" test "$(json "$tmp/hostile.json" \
        "[d['requests'][k] for k in ('arrived','completed','rejected','timed_out','failed')]")" = "[11, 2, 2, 1, 6]"
    check "hostile peer: HTTP statuses counted" test "$(json "$tmp/hostile.json" \
        "sorted(d['load']['http_status'].items())")" = "[('200', 7), ('429', 1), ('500', 1), ('503', 1), ('none', 1)]"
    check "hostile peer: the 500 body is quoted in the CSV" grep -q '^[0-9]*,[0-9.]*,4,12,failed,500,.*"<html>boom</html>"$' "$tmp/hostile-requests.csv"
    check "hostile peer: the malformed chunk is named" grep -q ',3,failed,200,.*not JSON' "$tmp/hostile-requests.csv"
    printf '%s\n0.0,4,2,,\n0.01,50000000,2,,\n' "$hdr" >"$tmp/huge-trace.csv"
    expect_fail "hostile peer: a 5e7-token prompt in the trace exits 2 naming the request" 2 "request 1 of the trace" \
        "$llmload" --url "http://127.0.0.1:$pport" --trace "$tmp/huge-trace.csv" -o "$tmp/huge.json"
    # Non-streamed answers that are not JSON.
    printf '%s\n0.0,4,12,,\n' "$hdr" >"$tmp/h2.csv"
    "$llmload" --url "http://127.0.0.1:$pport/v1/completions" --trace "$tmp/h2.csv" -o "$tmp/h2.json" -q 2>/dev/null
    check "hostile peer: a non-JSON error body, not streamed, is a failure" test "$(json "$tmp/h2.json" "d['requests']['failed']")" = 1
else
    not_ok "the hostile peer did not start: $(head -c 300 "$tmp/peer.err")"
fi

# --- a real llmserve ----------------------------------------------------------------------
tokenizer=$shared/models/tokenizer.bin
if [ ! -x "$llmserve" ] || ! "$llmserve" serve --help >/dev/null 2>&1; then
    echo "# llmserve serve not built: the replay against a real server is skipped"
elif [ ! -r "$tokenizer" ]; then
    echo "# $tokenizer absent (set LLMSCALE_SHARED): the replay against a real server is skipped"
else
    # A synthetic model on a free port: a small queue so that a burst overflows it.
    "$llmserve" serve --model synthetic:stories260K --tokenizer "$tokenizer" --chat-template raw --port 0 \
        --threads 1 --max-batch 4 --max-queue 8 --no-request-log >"$tmp/serve.out" 2>"$tmp/serve.err" &
    spid=$!
    pids="$pids $spid"
    sport=""
    i=0
    while [ $i -lt 300 ] && [ -z "$sport" ]; do
        sport=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
        [ -n "$sport" ] || sleep 0.1
        i=$((i + 1))
    done
    if [ -z "$sport" ] || ! wait_http "http://127.0.0.1:$sport/readyz"; then
        not_ok "llmserve did not start: $(tail -n 5 "$tmp/serve.err")"
    else
        url=http://127.0.0.1:$sport
        # 12 requests over 1.1 s, each a different prompt and output length.
        "$py" -c "
print('$hdr')
for i in range(12): print('%.3f,%d,%d,,' % (0.1 * i, 6 + 3 * i, 3 + (i * 5) % 13))" >"$tmp/real-trace.csv"
        "$llmload" --url "$url" --trace "$tmp/real-trace.csv" --stream -o "$tmp/real.json" -q 2>"$tmp/real.err"
        check "real server: llmload exits 0" test $? -eq 0
        check "real server: every request completed" test "$(json "$tmp/real.json" \
            "(d['requests']['arrived'], d['requests']['completed'])")" = "(12, 12)"
        check "real server: prompts of the trace's lengths (server's count)" \
            test "$(json "$tmp/real.json" "d['load']['prompt_tokens_mismatch']")" = 0
        want_out=$(awk -F, 'NR > 1 {s += $3} END {print s}' "$tmp/real-trace.csv")
        check "real server: ignore_eos: exactly the trace's output tokens ($want_out)" \
            test "$(json "$tmp/real.json" "d['tokens']['output']")" = "$want_out"
        check "real server: summary.json's keys" "$py" -c "
import json, sys
d = json.load(open(sys.argv[1]))
for k in ('ttft', 'tpot', 'e2e'):
    assert set(d['latency_s'][k]) == {'mean', 'p50', 'p90', 'p99', 'max'}, k
assert d['latency_s']['ttft']['p50'] > 0 and d['latency_s']['tpot']['p50'] > 0
assert d['latency_s']['ttft']['p50'] <= d['latency_s']['e2e']['p50']
assert d['throughput']['requests_per_s'] > 0 and d['load']['stream'] is True
" "$tmp/real.json"
        check "real server: one CSV row per request, first byte <= TTFT <= E2E" "$py" -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 12, len(rows)
for r in rows:
    assert r['outcome'] == 'completed' and r['status'] == '200', r
    assert float(r['first_byte_s']) <= float(r['ttft_s']) + 1e-6 <= float(r['e2e_s']) + 2e-6, r
    assert int(r['server_output_tokens']) == int(r['output_tokens']), r
" "$tmp/real-requests.csv"
        # Open loop: each request leaves at its own time, busy server or not.
        check "real server: sent on schedule (lateness under 250 ms)" "$py" -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert max(float(r['lateness_s']) for r in rows) < 0.25, [r['lateness_s'] for r in rows]
assert abs(float(rows[-1]['arrival_s']) - 1.1) < 1e-6
" "$tmp/real-requests.csv"
        # --time-scale 2: the same trace over twice the time.
        "$llmload" --url "$url" --trace "$tmp/real-trace.csv" --stream --time-scale 2 --max-requests 6 \
            -o "$tmp/slow.json" -q 2>/dev/null
        check "--time-scale 2 --max-requests 6: 6 requests, the last at 1.0 s" "$py" -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 6 and abs(max(float(r['arrival_s']) for r in rows) - 1.0) < 1e-6, rows
" "$tmp/slow-requests.csv"
        # Not streamed: the answer comes whole, so TTFT = E2E and no TPOT.
        # (-o in directories that do not exist yet: llmload makes them.)
        "$llmload" --url "$url/v1/completions" --trace "$tmp/real-trace.csv" --max-requests 4 \
            -o "$tmp/new/dir/whole.json" -q 2>/dev/null
        check "-o makes its directories (summary and CSV)" test -s "$tmp/new/dir/whole.json" -a -s "$tmp/new/dir/whole-requests.csv"
        cp "$tmp/new/dir/whole.json" "$tmp/whole.json"
        check "not streamed: TTFT is the whole answer, no TPOT" test "$(json "$tmp/whole.json" \
            "(d['requests']['completed'], d['latency_s']['ttft']['p50'] == d['latency_s']['e2e']['p50'], d['latency_s']['tpot']['p50'])")" = "(4, True, 0.0)"
        # Chat endpoint.
        "$llmload" --url "$url/v1/chat/completions" --trace "$tmp/real-trace.csv" --stream --max-requests 3 \
            -o "$tmp/chat.json" -q 2>/dev/null
        check "chat endpoint: streamed to completion" test "$(json "$tmp/chat.json" \
            "(d['requests']['completed'], d['load']['prompt_tokens_mismatch'])")" = "(3, 0)"
        # A burst of 600 at once: far beyond the queue.  Every one is
        # answered (completed or rejected with 429), all in flight together.
        "$py" -c "
print('$hdr')
for i in range(600): print('0.0,8,2,,')" >"$tmp/burst-trace.csv"
        "$llmload" --url "$url" --trace "$tmp/burst-trace.csv" --stream -o "$tmp/burst.json" -q 2>/dev/null
        check "burst of 600: all answered, the overflow rejected (429), 600 in flight" "$py" -c "
import json, sys
d = json.load(open(sys.argv[1])); r = d['requests']
assert r['completed'] + r['rejected'] == 600 and r['completed'] >= 4 and r['rejected'] > 0, r
assert d['load']['http_status'].get('429') == r['rejected'], d['load']['http_status']
assert d['load']['max_in_flight'] == 600, d['load']['max_in_flight']
" "$tmp/burst.json"
        # --max-concurrency 2: arrivals wait for a free slot, and llmload says
        # the client was the bottleneck.
        "$llmload" --url "$url" --trace "$tmp/burst-trace.csv" --max-requests 20 --stream --max-concurrency 2 \
            -o "$tmp/capped.json" -q 2>"$tmp/capped.err"
        check "--max-concurrency 2: at most 2 in flight, flagged as client-bound" test "$(json "$tmp/capped.json" \
            "(d['requests']['completed'], d['load']['max_in_flight'], d['load']['client_bottleneck'])")" = "(20, 2, True)"
        check "--max-concurrency 2: the warning says why" grep -q "client was the bottleneck.*--max-concurrency 2" "$tmp/capped.err"
    fi
fi

finish
