#!/bin/sh
# server_drain.sh -- SIGTERM while a stream and a plain request are in
# flight: /readyz turns 503 and new requests get 503 at once, both requests
# finish whole, and the process exits 0.  Past --drain-timeout a stream is
# cut with an error event and [DONE], never silently.
. "$(dirname "$0")/server_lib.sh"

start_server d --model "$model_slow" --threads 1 --drain-timeout 60s --cache off || { not_ok "server starts"; finish; }
D=$d_port
url=http://127.0.0.1:$D

# 600 and 400 tokens: long enough (a second or more) that both are still
# running while the drain is checked below; 150 and 100 finished first once
# decoding got faster, and the server had exited before /metrics was read.
curl -sN -d '{"messages":[{"role":"user","content":"a long story"}],"max_tokens":600,"ignore_eos":true,"stream":true,
    "stream_options":{"include_usage":true}}' "$url/v1/chat/completions" >"$tmp/stream" 2>&1 &
s_curl=$!
curl -s -w '\n%{http_code}\n' -d '{"prompt":"plain","max_tokens":400,"ignore_eos":true}' "$url/v1/completions" \
    >"$tmp/plain" 2>&1 &
p_curl=$!
i=0
while [ $i -lt 200 ] && [ "$(grep -c '"content":"[^"]' "$tmp/stream" 2>/dev/null)" -lt 1 ]; do
    sleep 0.05
    i=$((i + 1))
done
check "the stream has started" grep -q '"content":"[^"]' "$tmp/stream"
# and the plain request is in the engine too
i=0
while [ $i -lt 200 ] && [ $(($(metric $D llmserve_requests_running) + $(metric $D llmserve_requests_waiting))) -lt 2 ]; do
    sleep 0.05
    i=$((i + 1))
done

kill -TERM "$d_pid"
sleep 0.2
st=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz")
check "draining: /readyz 503" [ "$st" = 503 ]
st=$(post $D /v1/completions '{"prompt":"late","max_tokens":2}')
check "draining: a new request gets 503 with Retry-After" sh -c "[ $st = 503 ] && grep -q draining $tmp/body &&
    grep -qi '^Retry-After:' $tmp/headers"
check "draining: /healthz still 200" curl -sf -o /dev/null "$url/healthz"
check "draining: llmserve_draining 1" [ "$(metric $D llmserve_draining)" = 1 ]

wait "$s_curl"
wait "$p_curl"
check "the stream finished whole: finish_reason length" grep -q '"finish_reason":"length"' "$tmp/stream"
check "the stream finished whole: 600 tokens in its usage" grep -q '"completion_tokens":600' "$tmp/stream"
check "the stream finished whole: [DONE]" sh -c "grep -v '^\$' $tmp/stream | tail -1 | grep -qx 'data: \[DONE\]'"
check "the plain request finished: 200 with 400 tokens" sh -c "tail -1 $tmp/plain | grep -qx 200 &&
    grep -q '\"completion_tokens\":400' $tmp/plain"
wait "$d_pid"
rc=$?
check "the server exits 0 after the drain (status $rc)" [ "$rc" -eq 0 ]
check "the drain is logged" grep -q "drained" "$tmp/d.err"

# past the drain timeout: cut, with an error event and [DONE]
start_server t --model "$model_slow" --threads 1 --drain-timeout 500ms --cache off || { not_ok "server t starts"; finish; }
curl -sN -d '{"prompt":"endless","max_tokens":4000,"ignore_eos":true,"stream":true}' \
    "http://127.0.0.1:$t_port/v1/completions" >"$tmp/cut" 2>&1 &
c_curl=$!
i=0
while [ $i -lt 200 ] && ! grep -q '"text":"[^"]' "$tmp/cut" 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
t0=$(date +%s%N)
kill -TERM "$t_pid"
wait "$t_pid"
rc=$?
t1=$(date +%s%N)
wait "$c_curl"
check "drain timeout: exits within 3 s ($(((t1 - t0) / 1000000)) ms), status 1 (cut)" sh -c "[ $(((t1 - t0) / 1000000)) -lt 3000 ] && [ $rc -eq 1 ]"
check "drain timeout: the stream ends with an error event" grep -q '"error":{"message":"the request was cancelled' "$tmp/cut"
check "drain timeout: then [DONE]" sh -c "grep -v '^\$' $tmp/cut | tail -1 | grep -qx 'data: \[DONE\]'"
finish
