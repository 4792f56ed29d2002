#!/bin/sh
# server_api.sh -- llmserve over HTTP with curl: the endpoints, raw SSE,
# OpenAI-shaped errors and their status codes for malformed and hostile
# bodies (invalid JSON, wrong types, huge numbers, invalid UTF-8, 10 MB
# bodies, slow clients), the memory cache (streaming hits included), API
# keys (never logged), rate limits and the bounded queue (429 +
# Retry-After), the JSON request log, and `promtool check metrics`.
. "$(dirname "$0")/server_lib.sh"

# --- the command line and the environment ------------------------------------------------------
check "serve --help lists every option with its variable" sh -c "'$llmserve' serve --help | grep -q 'LLMSERVE_CACHE_TTL' &&
    '$llmserve' serve --help | grep -q -- '--drain-timeout'"
"$llmserve" serve --tokenizer "$tokenizer" >/dev/null 2>"$tmp/err"
check "no model: exit 2, saying so" sh -c "[ $? -eq 2 ] && grep -q -- '--model is required' $tmp/err"
LLMSERVE_PORT=http "$llmserve" --model "$model_fast" >/dev/null 2>"$tmp/err"
check "a bad LLMSERVE_PORT: exit 2 naming the variable" sh -c "[ $? -eq 2 ] && grep -q 'LLMSERVE_PORT' $tmp/err"
"$llmserve" --model "$model_fast" --cache-ttl soon >/dev/null 2>"$tmp/err"
check "a bad duration: exit 2 naming the option" sh -c "[ $? -eq 2 ] && grep -q -- '--cache-ttl' $tmp/err"
"$llmserve" --model "$model_fast" --cache memcached://x >/dev/null 2>"$tmp/err"
check "a bad cache URL: exit 2" sh -c "[ $? -eq 2 ] && grep -q 'expected memory or redis' $tmp/err"
printf 'k1 a\nk1 b\n' >"$tmp/dupkeys"
"$llmserve" --model "$model_fast" --api-keys "$tmp/dupkeys" >/dev/null 2>"$tmp/err"
check "a bad key file: exit 2 with FILE:LINE" sh -c "[ $? -eq 2 ] && grep -q 'dupkeys:2: duplicate key' $tmp/err"
"$llmserve" --model "$model_fast" --frobnicate >/dev/null 2>"$tmp/err"
check "an unknown option: exit 2" sh -c "[ $? -eq 2 ] && grep -q 'unknown or incomplete option' $tmp/err"

# (the limit from the environment: LLMSERVE_MAX_TOKENS_LIMIT)
LLMSERVE_MAX_TOKENS_LIMIT=512 start_server a --model "$model_fast" || { not_ok "server starts"; finish; }
ok "server starts"
A=$a_port
url=http://127.0.0.1:$A

# --- health, models, page ----------------------------------------------------------
check "/healthz 200" sh -c "curl -sf $url/healthz | grep -q ok"
check "/readyz 200" sh -c "curl -sf $url/readyz | grep -q ready"
check "/v1/models lists the model" sh -c "curl -sf $url/v1/models | grep -q '\"id\":\"$model_fast\"'"
check "/ serves the chat page" sh -c "curl -sf $url/ | grep -q '/v1/chat/completions'"

# --- completions ----------------------------------------------------------------------
st=$(post $A /v1/completions '{"prompt":"Once upon a time","max_tokens":12,"temperature":0}')
check "completions 200" [ "$st" = 200 ]
check "completions: text_completion with usage" sh -c "grep -q '\"object\":\"text_completion\"' $tmp/body &&
    grep -q '\"completion_tokens\":' $tmp/body && grep -q '\"finish_reason\":\"\(stop\|length\)\"' $tmp/body"
st=$(post $A /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"ignore_eos":true}')
check "chat 200, finish length at max_tokens" sh -c "[ $st = 200 ] && grep -q '\"finish_reason\":\"length\"' $tmp/body &&
    grep -q '\"completion_tokens\":5' $tmp/body && grep -q '\"role\":\"assistant\"' $tmp/body"

# --- raw SSE --------------------------------------------------------------------------
curl -sN -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"Tell me"}],"max_tokens":20,
    "ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}' $url/v1/chat/completions >"$tmp/sse"
check "SSE: every event is a data: line" sh -c "! grep -v -e '^data: ' -e '^\$' $tmp/sse"
check "SSE: the first chunk carries the role" sh -c "head -1 $tmp/sse | grep -q '\"delta\":{\"role\":\"assistant\"'"
check "SSE: chunks are chat.completion.chunk" sh -c "head -1 $tmp/sse | grep -q '\"object\":\"chat.completion.chunk\"'"
check "SSE: a closing empty delta with finish_reason" grep -q '"delta":{},"logprobs":null,"finish_reason":"length"' "$tmp/sse"
check "SSE: a usage chunk (include_usage)" grep -q '"usage":{"prompt_tokens":[0-9]*,"completion_tokens":20' "$tmp/sse"
check "SSE: ends with data: [DONE]" sh -c "grep -v '^\$' $tmp/sse | tail -1 | grep -qx 'data: \[DONE\]'"
curl -sN -d '{"prompt":"x","max_tokens":3,"stream":true}' $url/v1/completions >"$tmp/sse2"
check "SSE completions: text_completion chunks and [DONE]" sh -c "grep -q '\"object\":\"text_completion\"' $tmp/sse2 &&
    grep -q 'data: \[DONE\]' $tmp/sse2 && ! grep -q usage $tmp/sse2"

# --- tokenize / detokenize ------------------------------------------------------------------
st=$(post $A /tokenize '{"text":"Once upon a time"}')
check "/tokenize 200 with ids" sh -c "[ $st = 200 ] && grep -q '\"tokens\":\[1,' $tmp/body"
ids=$(sed 's/.*"tokens":\[\([0-9,]*\)\].*/\1/' "$tmp/body")
st=$(post $A /detokenize "{\"tokens\":[$ids]}")
check "/detokenize round-trips" sh -c "[ $st = 200 ] && grep -q '\"text\":\" \\?Once upon a time\"' $tmp/body"
st=$(post $A /detokenize '{"tokens":[1,99999]}')
check "/detokenize: an id outside the vocabulary is 400" sh -c "[ $st = 400 ] && grep -q 'tokens\[1\]' $tmp/body"

# --- errors: status, OpenAI's shape, the field named -----------------------------------------
err_case() { # err_case DESCRIPTION STATUS PATTERN PATH BODY [CURL-ARGS]
    d=$1 want=$2 pat=$3 path=$4 body=$5
    shift 5
    st=$(post $A "$path" "$body" "$@")
    if [ "$st" = "$want" ] && { [ "$want" = 200 ] || grep -q '"error":{"message":' "$tmp/body"; } &&
        grep -q -- "$pat" "$tmp/body"; then
        ok "$d"
    else
        not_ok "$d (status $st, want $want: $(head -c 300 "$tmp/body"))"
    fi
}
err_case "invalid JSON: 400" 400 'invalid JSON' /v1/chat/completions '{"messages": ['
err_case "not an object: 400" 400 'must be a JSON object' /v1/chat/completions '[]'
err_case "empty body: 400" 400 'empty' /v1/chat/completions ''
err_case "wrong type names the field" 400 '"param":"max_tokens"' /v1/chat/completions \
    '{"messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}'
err_case "temperature out of range" 400 'temperature: must be between' /v1/chat/completions \
    '{"messages":[{"role":"user","content":"x"}],"temperature":9}'
err_case "huge integer: 400" 400 'invalid JSON' /v1/completions '{"prompt":"x","max_tokens":123456789012345678901234567890}'
err_case "huge real: 400" 400 'invalid JSON' /v1/completions '{"prompt":"x","temperature":1e999}'
err_case "max_tokens beyond the limit: 400" 400 'between 1 and 512' /v1/completions '{"prompt":"x","max_tokens":100000}'
err_case "n=2: 400" 400 'only n=1' /v1/completions '{"prompt":"x","n":2}'
err_case "unknown role: 400" 400 'messages\[0\].role' /v1/chat/completions '{"messages":[{"role":"god","content":"x"}]}'
printf '{"prompt":"\377\376 bad utf-8"}' >"$tmp/badutf8"
err_case "invalid UTF-8: 400" 400 'invalid JSON' /v1/completions "@$tmp/badutf8"
err_case "another model: 404" 404 'model_not_found' /v1/completions '{"prompt":"x","model":"gpt-4"}'
err_case "unknown fields are ignored" 200 'text_completion' /v1/completions '{"prompt":"x","max_tokens":2,"frob":{"a":[1]}}'
err_case "long prompt beyond the context: 400" 400 'context_length_exceeded' /v1/completions \
    "{\"prompt\":\"$(head -c 6000 /dev/zero | tr '\0' 'z' | sed 's/z/zq /g')\"}"
st=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/v1/nothing")
check "unknown path: 404 in OpenAI's shape" sh -c "[ $st = 404 ] && grep -q not_found $tmp/body"
st=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/v1/chat/completions")
check "GET on a POST endpoint: 405" [ "$st" = 405 ]
st=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/%FF%FE%00x")
check "a path that is not UTF-8: 404, still valid JSON" sh -c "[ $st = 404 ] && python3 -m json.tool $tmp/body >/dev/null"
st=$(post $A /v1/completions "{\"prompt\":\"x\",\"model\":\"$(head -c 199 /dev/zero | tr '\0' 'a')éé\"}")
check "a long model name cut in its error message: valid JSON" sh -c "[ $st = 404 ] && python3 -m json.tool $tmp/body >/dev/null"

# 10 MB bodies: with a Content-Length (refused before reading) and chunked
head -c 10485760 /dev/zero | tr '\0' ' ' >"$tmp/big"
st=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$tmp/big" \
    "$url/v1/chat/completions")
check "10 MB body: 413" sh -c "[ $st = 413 ] && grep -q request_too_large $tmp/body"
st=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' \
    --data-binary "@$tmp/big" "$url/v1/chat/completions")
check "10 MB chunked body: 413" [ "$st" = 413 ]

# a slow client: headers dribbled in and never finished; the server stays responsive
python3 - "$A" <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
for _ in range(30):
    try:
        s.send(b"X-Slow: 1\r\n")
    except OSError:
        break
    time.sleep(0.1)
EOF
slow=$!
t0=$(date +%s%N)
curl -sf "$url/healthz" >/dev/null
t1=$(date +%s%N)
check "/healthz answers while a slow client dribbles ($(((t1 - t0) / 1000000)) ms)" [ $(((t1 - t0) / 1000000)) -lt 1000 ]
wait $slow

# --- the memory cache: a second identical request is a hit, streaming too ------------------
body='{"messages":[{"role":"user","content":"cache me"}],"max_tokens":16,"temperature":0}'
h0=$(metric $A llmserve_cache_hits_total)
post $A /v1/chat/completions "$body" >/dev/null
cp "$tmp/body" "$tmp/first"
post $A /v1/chat/completions "$body" >/dev/null
h1=$(metric $A llmserve_cache_hits_total)
check "cache: the repeat is a hit ($h0 -> $h1)" [ "$h1" -eq $((h0 + 1)) ]
c1=$(sed 's/.*"content":"\([^"]*\)".*/\1/' "$tmp/first")
c2=$(sed 's/.*"content":"\([^"]*\)".*/\1/' "$tmp/body")
check "cache: the hit has the same text" [ "$c1" = "$c2" ]
curl -sN -d '{"messages":[{"role":"user","content":"cache me"}],"max_tokens":16,"temperature":0,"stream":true}' \
    "$url/v1/chat/completions" >"$tmp/sse_hit"
h2=$(metric $A llmserve_cache_hits_total)
check "cache: a streaming request hits too, replayed as SSE" sh -c "[ $h2 -eq $((h1 + 1)) ] &&
    grep -q 'data: \[DONE\]' $tmp/sse_hit && grep -q '\"role\":\"assistant\"' $tmp/sse_hit"
m0=$(metric $A llmserve_cache_misses_total)
post $A /v1/chat/completions '{"messages":[{"role":"user","content":"cache me"}],"max_tokens":16}' >/dev/null
check "cache: a sampled request without a seed is not looked up" [ "$(metric $A llmserve_cache_misses_total)" = "$m0" ]

# --- metrics ------------------------------------------------------------------------------------
curl -s "$url/metrics" >"$tmp/metrics"
for n in llmserve_requests_waiting llmserve_requests_running llmserve_kv_cache_usage_ratio \
    llmserve_gpu_utilization_ratio llmserve_ttft_p90_seconds llmserve_prompt_tokens_total \
    llmserve_generation_tokens_total llmserve_cache_hits_total llmserve_rate_limited_total llmserve_ready \
    llmserve_draining 'llmserve_build_info{' 'llmserve_requests_total{endpoint="/v1/chat/completions",status="200"}' \
    'llmserve_requests_total{endpoint="/v1/completions",status="400"}' llmserve_time_to_first_token_seconds_bucket \
    llmserve_time_per_output_token_seconds_count llmserve_request_duration_seconds_sum \
    llmserve_queue_time_seconds_count llmserve_batch_size_bucket 'llmserve_rejected_total{reason="too_large"}'; do
    check "metrics has $n" grep -q "^$n" "$tmp/metrics"
done
if command -v promtool >/dev/null 2>&1; then
    check "promtool check metrics passes" sh -c "promtool check metrics <$tmp/metrics"
else
    echo "# SKIP promtool check: promtool not installed (Debian: prometheus)"
fi

# --- API keys, rate limits, the queue bound, JSON logs -----------------------------------------------
printf '# test keys\nsk-test-alpha-0001 alice\nsk-test-beta-0002 bob\n' >"$tmp/keys"
start_server k --model "$model_slow" --api-keys "$tmp/keys" --rate-limit-rpm 3 --max-batch 1 --max-queue 1 \
    --log-format json --threads 1 || not_ok "keyed server starts"
K=$k_port
st=$(post $K /v1/completions '{"prompt":"x","max_tokens":2}')
check "no key: 401" sh -c "[ $st = 401 ] && grep -q invalid_api_key $tmp/body"
st=$(post $K /v1/completions '{"prompt":"x","max_tokens":2}' -H 'Authorization: Bearer sk-test-alpha-0003')
check "wrong key: 401" [ "$st" = 401 ]
st=$(post $K /v1/completions '{"prompt":"x","max_tokens":2}' -H 'Authorization: Bearer sk-test-alpha-0001')
check "right key: 200" [ "$st" = 200 ]
check "/healthz, /readyz, /metrics need no key" sh -c "curl -sf http://127.0.0.1:$K/healthz >/dev/null &&
    curl -sf http://127.0.0.1:$K/readyz >/dev/null && curl -sf http://127.0.0.1:$K/metrics >/dev/null"
post $K /v1/completions '{"prompt":"x","max_tokens":2}' -H 'Authorization: Bearer sk-test-alpha-0001' >/dev/null
post $K /v1/completions '{"prompt":"x","max_tokens":2}' -H 'Authorization: Bearer sk-test-alpha-0001' >/dev/null
st=$(post $K /v1/completions '{"prompt":"x","max_tokens":2}' -H 'Authorization: Bearer sk-test-alpha-0001')
check "4th request in a minute at 3 rpm: 429 with Retry-After" sh -c "[ $st = 429 ] &&
    grep -qi '^Retry-After: [0-9]' $tmp/headers && grep -q rate_limit_exceeded $tmp/body"
st=$(post $K /v1/completions '{"prompt":"x","max_tokens":2}' -H 'Authorization: Bearer sk-test-beta-0002')
check "another key has its own budget" [ "$st" = 200 ]
check "llmserve_rate_limited_total counts it" [ "$(metric $K llmserve_rate_limited_total)" = 1 ]
check "the keys never reach the log" sh -c "! grep -q sk-test $tmp/k.err"
check "the key's name does" grep -q '"key":"alice"' "$tmp/k.err"
check "log lines are JSON (--log-format json)" sh -c "grep '\"path\"' $tmp/k.err | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    o = json.loads(line); n += 1
    assert {\"method\", \"path\", \"status\", \"key\", \"prompt_tokens\", \"completion_tokens\", \"ttft_ms\", \"total_ms\"} <= set(o)
assert n >= 5, n
'"

# the queue: one running, one waiting; the rest are refused at once
start_server q --model "$model_slow" --max-batch 1 --max-queue 1 --threads 1 --cache off || not_ok "queue server starts"
Q=$q_port
for i in 1 2 3 4 5 6 7 8; do
    curl -s -o /dev/null -D "$tmp/q$i.h" -w '%{http_code} %{time_total}\n' \
        -d '{"prompt":"x","max_tokens":400,"ignore_eos":true}' "http://127.0.0.1:$Q/v1/completions" >"$tmp/q$i" &
    sleep 0.02
done
wait_n=0
while [ $wait_n -lt 900 ] && [ "$(cat "$tmp"/q? 2>/dev/null | wc -l)" -lt 8 ]; do sleep 0.1; wait_n=$((wait_n + 1)); done
n429=$(cat "$tmp"/q? | grep -c '^429')
n200=$(cat "$tmp"/q? | grep -c '^200')
check "queue full: 2 admitted ($n200), the other 6 get 429 ($n429)" sh -c "[ $n200 -eq 2 ] && [ $n429 -eq 6 ]"
check "429s carry Retry-After" sh -c "for f in $tmp/q?.h; do grep -q '^HTTP/1.1 429' \$f || continue; grep -qi '^Retry-After: 1' \$f || exit 1; done"
fast429=$(cat "$tmp"/q? | awk '$1 == 429 && $2 < 0.1' | wc -l)
check "every 429 answered within 100 ms ($fast429 of $n429)" [ "$fast429" -eq "$n429" ]
check "llmserve_rejected_total{reason=\"queue_full\"} counts them" \
    [ "$(metric $Q 'llmserve_rejected_total{reason="queue_full"}')" = 6 ]

# --- the real checkpoint: the API's greedy text is llmserve generate's --------------------------------
if [ -r "$shared/models/stories260K.bin" ]; then
    "$llmserve" generate --model "$shared/models/stories260K.bin" --tokenizer "$tokenizer" --prompt "Once upon a time" \
        -n 40 -t 0 --threads 1 >"$tmp/gen" 2>/dev/null
    start_server s --model "$shared/models/stories260K.bin" --cache off || not_ok "stories260K.bin server starts"
    st=$(post $s_port /v1/completions '{"prompt":"Once upon a time","max_tokens":40,"temperature":0}')
    python3 -c 'import json, sys; print("Once upon a time" + json.load(open(sys.argv[1]))["choices"][0]["text"])' \
        "$tmp/body" >"$tmp/api" 2>&1
    check "stories260K.bin: the API's greedy completion is llmserve generate's" sh -c "[ $st = 200 ] &&
        [ \"\$(cat $tmp/api)\" = \"\$(cat $tmp/gen)\" ] && [ -s $tmp/gen ]"
    kill "$s_pid"
else
    echo "# SKIP the stories260K.bin check: $shared/models/stories260K.bin absent"
fi

# --- the engine's options pass through: int8 weights, a small KV cache ----------------------------
LLMSERVE_QUANTIZE=q8 start_server z --model "$model_fast" --kv-cache-mb 1 --max-batch 2 --step-log "$tmp/steps.csv" ||
    not_ok "q8 server starts"
st=$(post $z_port /v1/completions '{"prompt":"Once upon a time","max_tokens":8,"ignore_eos":true}')
check "--quantize q8 (from LLMSERVE_QUANTIZE), --kv-cache-mb 1: 8 tokens" sh -c "[ $st = 200 ] &&
    grep -q '\"completion_tokens\":8' $tmp/body"
# --step-log: every step as it ends (line-buffered), the prompt's prefill
# then 7 decode steps of one sequence, times increasing
check "--step-log: a header, one prefill step and 7 decode steps, 8 tokens in all" python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert list(rows[0].keys())[:4] == ["t_start", "t_forward", "t_sample", "t_end"], rows[0].keys()
assert sum(int(r["generated"]) for r in rows) == 8, rows
assert int(rows[0]["prefill_tokens"]) >= 2 and int(rows[0]["decode_seqs"]) == 0, rows[0]
assert all(int(r["decode_seqs"]) == 1 and int(r["prefill_tokens"]) == 0 for r in rows[1:]) and len(rows) == 8
assert all(float(r["t_start"]) <= float(r["t_forward"]) <= float(r["t_sample"]) <= float(r["t_end"]) for r in rows)
assert all(float(a["t_end"]) <= float(b["t_start"]) for a, b in zip(rows, rows[1:]))
' "$tmp/steps.csv"
kill "$z_pid"

# --- loading, the request timeout, the connection limit -------------------------------------------
# a model that takes a while to build: the server listens first, 503 until ready
"$llmserve" serve --port 0 --tokenizer "$tokenizer" --threads 1 \
    --model "synthetic:dim=768,layers=12,heads=12,kv_heads=12,hidden=2048,vocab=512,seq=256" \
    >"$tmp/l.out" 2>"$tmp/l.err" &
l_pid=$!
pids="$pids $l_pid"
i=0
while [ $i -lt 100 ] && ! grep -q listening "$tmp/l.out"; do sleep 0.02; i=$((i + 1)); done
L=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$tmp/l.out")
st_h=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$L/healthz")
st_r=$(curl -s -o "$tmp/body" -w '%{http_code}' "http://127.0.0.1:$L/readyz")
st_a=$(post "$L" /v1/completions '{"prompt":"x"}')
check "while loading: /healthz 200, /readyz 503, the API 503 ($st_h $st_r $st_a)" \
    sh -c "[ $st_h = 200 ] && [ $st_r = 503 ] && [ $st_a = 503 ] && grep -q loading $tmp/body"
kill "$l_pid"

start_server o --model "$model_slow" --request-timeout 1s --max-connections 3 --http-threads 1 --idle-timeout 2s \
    --body-timeout 1s \
    --cache off ||
    not_ok "server o starts"
O=$o_port
st=$(post $O /v1/completions '{"prompt":"x","max_tokens":1000,"ignore_eos":true}')
check "past --request-timeout: 504" sh -c "[ $st = 504 ] && grep -q request_timeout $tmp/body"
curl -sN -d '{"prompt":"x","max_tokens":1000,"ignore_eos":true,"stream":true}' "http://127.0.0.1:$O/v1/completions" >"$tmp/to"
check "past --request-timeout, streaming: an error event and [DONE]" sh -c "grep -q request_timeout $tmp/to &&
    grep -v '^\$' $tmp/to | tail -1 | grep -qx 'data: \[DONE\]'"
python3 - "$O" <<'EOF' >"$tmp/conns"
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.2)
extra = socket.create_connection(("127.0.0.1", port))
extra.settimeout(0.8)  # below --idle-timeout, which would free the held ones
try:
    extra.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = extra.recv(100)
except OSError:
    data = b""
print("refused" if not data.startswith(b"HTTP/1.1 200") else "served")
for s in held:
    s.close()
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", port))
s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
print("served" if s.recv(100).startswith(b"HTTP/1.1 200") else "refused")
EOF
check "--max-connections 3: a 4th connection is refused, then served once others close ($(cat "$tmp/conns" | tr "\n" " "))" \
    sh -c "[ \"\$(cat $tmp/conns | tr '\n' ' ')\" = 'refused served ' ]"
python3 - "$O" <<'EOF' >"$tmp/idle"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.send(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
s.settimeout(10)
t0 = time.monotonic()
try:
    while s.recv(100):
        pass
except OSError:
    pass
print("%.1f" % (time.monotonic() - t0))
EOF
check "--idle-timeout 2s: a silent client is dropped after $(cat "$tmp/idle") s" \
    sh -c "awk '{ exit !(\$1 >= 1.5 && \$1 < 6) }' $tmp/idle"
python3 - "$O" <<'EOF' >"$tmp/dribble"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.send(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n")
t0 = time.monotonic()
try:
    for _ in range(100):  # a byte every 0.3 s: never idle, never done
        s.send(b" ")
        time.sleep(0.3)
except OSError:
    pass
print("%.1f" % (time.monotonic() - t0))
EOF
check "--body-timeout 1s: a dribbled body is cut after $(cat "$tmp/dribble") s" \
    sh -c "awk '{ exit !(\$1 >= 0.9 && \$1 < 4) }' $tmp/dribble"
check "llmserve_rejected_total{reason=\"slow_body\"} counts it" \
    [ "$(metric $O 'llmserve_rejected_total{reason="slow_body"}')" = 1 ]

# --- --engine-cpus: the engine thread on the CPUs given, the HTTP threads on the rest ---------------
st=0
"$llmserve" serve --model "$model_fast" --engine-cpus 0,2-1 >/dev/null 2>"$tmp/pin_bad.err" || st=$?
check "--engine-cpus 0,2-1: exit 2 naming the range ($st)" sh -c "[ $st = 2 ] &&
    grep -q \"engine-cpus: '2-1' in '0,2-1': the range runs backwards\" $tmp/pin_bad.err"
st=0
LLMSERVE_ENGINE_CPUS=100000 "$llmserve" serve --model "$model_fast" >/dev/null 2>"$tmp/pin_bad.err" || st=$?
check "LLMSERVE_ENGINE_CPUS=100000: exit 2 ($st)" sh -c "[ $st = 2 ] && grep -q LLMSERVE_ENGINE_CPUS $tmp/pin_bad.err"
ncpu=$(getconf _NPROCESSORS_ONLN)
servers="a k q o"
if [ "$ncpu" -ge 2 ] && [ -d /proc/self/task ]; then
    last=$((ncpu - 1))
    start_server p --model "$model_fast" --engine-cpus "$last" --cache off || not_ok "pinned server starts"
    servers="$servers p"
    st=$(post "$p_port" /v1/completions '{"prompt":"Once","max_tokens":8}')
    check "pinned server answers ($st)" [ "$st" = 200 ]
    for t in /proc/$p_pid/task/*; do
        echo "$(cat "$t/comm") $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status")"
    done >"$tmp/pin_threads"
    check "the HTTP workers are off CPU $last" sh -c "grep -q '^MHD-worker ' $tmp/pin_threads &&
        ! grep '^MHD-worker ' $tmp/pin_threads | grep -q '[ ,-]$last\$\|^MHD-worker $last'"
    check "the engine thread on CPU $last alone" grep -qx "engine $last" "$tmp/pin_threads"
    check "the log says where each runs" grep -q "the engine on 1 CPU, the HTTP threads on the other" "$tmp/p.err"
else
    echo "# --engine-cpus placement not checked: one CPU, or no /proc"
fi

# every server above exits 0 on SIGTERM: under ASan that also says no request
# path (errors, hostile bodies, cancelled streams) leaked
for name in $servers; do
    eval "spid=\$${name}_pid"
    kill -TERM "$spid" 2>/dev/null
    wait "$spid"
    rc=$?
    check "server $name drains and exits 0 (status $rc)" sh -c "[ $rc -eq 0 ] && ! grep -q 'LeakSanitizer\|runtime error' $tmp/$name.err"
done

finish
