#!/bin/sh
# bench_server.sh -- llmserve's HTTP benchmarks (docs/BENCHMARKS.md, "llmserve HTTP").
#
# Usage: bench/bench_server.sh [BUILD_DIR]   (default build/; needs wrk,
#        redis-server, python3 and ../shared/models/tokenizer.bin)
#
#   1. cache hits at about 2,000 requests/s (wrk, 22 connections each pausing
#      10 ms between requests): rate and p99, memory cache then Redis; the
#      baseline is /healthz at the same pacing (the HTTP stack alone)
#   2. /healthz p99 while the engine is saturated, against /healthz idle
#   3. 10x the engine's capacity (bench/bench_server.py): refused requests'
#      latency and admitted requests' latency against a run at capacity
#   4. RSS over 100,000 requests, each a distinct prompt (so cache misses that
#      run the engine, with the memory cache bounded at 8 MB)
# DURATION (seconds per wrk run, default 10) shortens or lengthens it.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
llmserve=$build/llmserve
tokenizer=${LLMSCALE_SHARED:-$top/../shared}/models/tokenizer.bin
D=${DURATION:-10}
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill -9 $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT

for t in wrk redis-server python3; do
    command -v $t >/dev/null 2>&1 || { echo "bench_server: needs $t" >&2; exit 2; }
done
[ -x "$llmserve" ] || { echo "bench_server: $llmserve not built" >&2; exit 2; }
[ -r "$tokenizer" ] || { echo "bench_server: $tokenizer absent" >&2; exit 2; }

model_fast="synthetic:stories260K"
model_slow="synthetic:dim=256,layers=6,heads=4,kv_heads=4,hidden=768,vocab=512,seq=1024"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve NAME ARGS...: sets port and pid
serve() {
    name=$1
    shift
    "$llmserve" serve --port 0 --tokenizer "$tokenizer" --chat-template raw "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench_server: llmserve did not start: $(tail -3 "$tmp/$name.err")" >&2
    exit 1
}

# A wrk script: POST BODY (or GET when empty), pausing DELAY_MS per connection.
wrk_script() { # wrk_script FILE BODY DELAY_MS
    {
        if [ -n "$2" ]; then
            echo 'wrk.method = "POST"'
            echo 'wrk.headers["Content-Type"] = "application/json"'
            printf 'wrk.body = [[%s]]\n' "$2"
        fi
        echo "function delay() return $3 end"
    } >"$1"
}

# paced NAME URL BODY: wrk at ~2,000 req/s; prints "rate p99_ms"
paced() {
    wrk_script "$tmp/$1.lua" "$3" 10
    wrk -t2 -c22 -d"${D}s" --latency -s "$tmp/$1.lua" "$2" >"$tmp/$1.wrk" 2>&1
    rate=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$tmp/$1.wrk")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub("us", "", v); v /= 1000 } else if (v ~ /ms$/) sub("ms", "", v);
        else if (v ~ /s$/) { sub("s", "", v); v *= 1000 }; printf "%.2f", v }' "$tmp/$1.wrk")
    echo "$rate $p99"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "llmserve HTTP benchmarks: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), ${D}s per run"

# --- 1. cache hits -------------------------------------------------------------------------
body='{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":32,"temperature":0}'
serve mem --model "$model_fast" --threads 1 --no-request-log
curl -s -d "$body" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
set -- $(paced health_mem "http://127.0.0.1:$port/healthz" "")
h_rate=$1 h_p99=$2
set -- $(paced hit_mem "http://127.0.0.1:$port/v1/chat/completions" "$body")
m_rate=$1 m_p99=$2
hits=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "llmserve_cache_hits_total" { print $2 }')
echo "cache hits, memory: $m_rate req/s, p99 $m_p99 ms (target: 2000 req/s, p99 < 5 ms); /healthz baseline $h_rate req/s, p99 $h_p99 ms; p99 ratio $(ratio "$m_p99" "$h_p99"); hits counted $hits"
kill "$pid"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning >/dev/null 2>&1 &
pids="$pids $!"
sleep 0.5
rb=$(redis-benchmark -p "$redis_port" -q -n 50000 -c 22 -t get --precision 3 2>/dev/null | tr '\r' '\n' | grep -i 'GET' | tail -1)
serve red --model "$model_fast" --threads 1 --no-request-log --cache "redis://127.0.0.1:$redis_port"
curl -s -d "$body" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null
set -- $(paced hit_redis "http://127.0.0.1:$port/v1/chat/completions" "$body")
r_rate=$1 r_p99=$2
echo "cache hits, Redis:  $r_rate req/s, p99 $r_p99 ms (target: 2000 req/s, p99 < 10 ms); p99 ratio to /healthz $(ratio "$r_p99" "$h_p99"); redis-benchmark GET on this machine: $rb"
kill "$pid"

# --- 2. /healthz while the engine is saturated ------------------------------------------------------
serve sat --model "$model_slow" --threads 1 --max-batch 8 --max-queue 64 --cache off --no-request-log
set -- $(paced health_idle "http://127.0.0.1:$port/healthz" "")
i_p99=$2
wrk_script "$tmp/load.lua" '{"prompt":"x","max_tokens":64,"ignore_eos":true}' 0
wrk -t1 -c32 -d"$((D + 4))s" --timeout 30s -s "$tmp/load.lua" "http://127.0.0.1:$port/v1/completions" >"$tmp/load.wrk" 2>&1 &
loadpid=$!
sleep 2
running=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "llmserve_requests_running" { print $2 }')
waiting=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "llmserve_requests_waiting" { print $2 }')
set -- $(paced health_busy "http://127.0.0.1:$port/healthz" "")
b_p99=$2
wait $loadpid
util=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "llmserve_gpu_utilization_ratio" { print $2 }')
echo "/healthz while saturated ($running running, $waiting waiting, engine busy $util): p99 $b_p99 ms (target < 5 ms); idle p99 $i_p99 ms; ratio $(ratio "$b_p99" "$i_p99")"
kill "$pid"

# --- 3. 10x the engine's capacity ---------------------------------------------------------------
serve over --model "$model_slow" --threads 1 --max-batch 4 --max-queue 4 --cache off --log-format json
python3 "$top/bench/bench_server.py" "http://127.0.0.1:$port" 6 "$D" "$tmp/over.err"
kill "$pid"

# --- 4. memory over 100,000 requests -------------------------------------------------------------
cat >"$tmp/uniq.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, string.format(
        '{"prompt":"story %d-%d","max_tokens":2,"temperature":0}', math.random(1, 1e9), n))
end
EOF
for cache in off memory; do
    serve "m_$cache" --model "$model_fast" --threads 1 --cache "$cache" --cache-max-mb 8 --max-batch 32 \
        --max-queue 256 --no-request-log
    total=0
    rss_series=""
    while [ "$total" -lt 100000 ]; do
        wrk -t2 -c16 -d5s -s "$tmp/uniq.lua" "http://127.0.0.1:$port/v1/completions" >"$tmp/uniq.wrk" 2>&1
        n=$(awk '/requests in/ { print $1 }' "$tmp/uniq.wrk")
        total=$((total + ${n:-0}))
        rss=$(awk '/^VmRSS/ { print $2 }' /proc/$pid/status)
        rss_series="$rss_series $total:${rss}k"
        [ "${n:-0}" -gt 0 ] || break
    done
    statuses=$(curl -s "http://127.0.0.1:$port/metrics" | grep '^llmserve_requests_total{endpoint="/v1/completions"' |
        sed 's/.*status="\([0-9]*\)"} \(.*\)/\1:\2/' | tr '\n' ' ')
    echo "memory, cache $cache, over $total distinct requests (requests:RSS):$rss_series; status:count $statuses"
    kill "$pid"
done
