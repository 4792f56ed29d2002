#!/bin/sh
# server_redis.sh -- llmserve with a real redis-server: the response cache
# in Redis (hits across two servers), rate limits shared by two servers
# (cluster-wide), and Redis killed mid-run: requests keep being served from
# the model, fast, with the errors counted and llmserve_redis_up 0; when
# Redis is back the cache works again.
. "$(dirname "$0")/server_lib.sh"

command -v redis-server >/dev/null 2>&1 || skip "redis-server not installed"
start_redis || skip "redis-server does not start"
R=redis://127.0.0.1:$redis_port

start_server a --model "$model_fast" --cache "$R" --cache-ttl 1m --rate-limit-rpm 6 || { not_ok "server a starts"; finish; }
start_server b --model "$model_fast" --cache "$R" --rate-limit-rpm 6 || { not_ok "server b starts"; finish; }
A=$a_port
B=$b_port
ok "two servers on one Redis"

body='{"messages":[{"role":"user","content":"shared cache"}],"max_tokens":12,"temperature":0}'
st=$(post $A /v1/chat/completions "$body")
cp "$tmp/body" "$tmp/first"
check "server a: 200, a miss" sh -c "[ $st = 200 ] && [ $(metric $A llmserve_cache_misses_total) = 1 ]"
check "the entry is in Redis with its TTL" sh -c "[ \$(redis-cli -p $redis_port --scan --pattern 'llmserve:rc:*' | wc -l) -ge 1 ] &&
    ttl=\$(redis-cli -p $redis_port pttl \$(redis-cli -p $redis_port --scan --pattern 'llmserve:rc:*' | head -1)) &&
    [ \$ttl -gt 50000 ] && [ \$ttl -le 60000 ]"
st=$(post $B /v1/chat/completions "$body")
check "server b: a hit on a's answer" sh -c "[ $st = 200 ] && [ $(metric $B llmserve_cache_hits_total) = 1 ]"
c1=$(sed 's/.*"content":"\([^"]*\)".*/\1/' "$tmp/first")
c2=$(sed 's/.*"content":"\([^"]*\)".*/\1/' "$tmp/body")
check "the same text" [ "$c1" = "$c2" ]
check "llmserve_redis_up 1" [ "$(metric $A llmserve_redis_up)" = 1 ]

# rate limit across servers: 6 per minute in all, whichever server answers
n200=0
n429=0
for i in 1 2 3 4 5 6 7 8 9 10; do
    if [ $((i % 2)) -eq 0 ]; then p=$A; else p=$B; fi
    st=$(post $p /v1/completions "{\"prompt\":\"rl $i\",\"max_tokens\":2}")
    [ "$st" = 200 ] && n200=$((n200 + 1))
    [ "$st" = 429 ] && n429=$((n429 + 1))
done
# two requests were spent above (one on each server): 4 more pass, plus one
# for every 10 s the test has taken; each server alone would pass them all
check "rate limit is cluster-wide: 4 more pass ($n200), the rest refused ($n429)" \
    sh -c "[ $n200 -ge 4 ] && [ $n200 -le 5 ] && [ $((n200 + n429)) -eq 10 ]"

# Redis killed mid-run: served from the model, fast, errors counted
kill -9 "$redis_pid"
wait "$redis_pid" 2>/dev/null
e0=$(metric $A llmserve_cache_errors_total)
worst=0
all200=1
# (5: the per-process fallback limiter allows 6 a minute)
for i in 1 2 3 4 5; do
    st=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -d "{\"prompt\":\"down $i\",\"max_tokens\":4,\"temperature\":0}" \
        "http://127.0.0.1:$A/v1/completions")
    [ "${st%% *}" = 200 ] || all200=0
    ms=$(echo "${st#* }" | awk '{ printf "%d", $1 * 1000 }')
    [ "$ms" -gt "$worst" ] && worst=$ms
done
check "Redis down: every request still 200 (fail open)" [ "$all200" = 1 ]
check "Redis down: slowest request ${worst} ms (< 500)" [ "$worst" -lt 500 ]
e1=$(metric $A llmserve_cache_errors_total)
check "Redis down: cache errors counted ($e0 -> $e1)" [ "$e1" -gt "$e0" ]
check "Redis down: llmserve_redis_up 0" [ "$(metric $A llmserve_redis_up)" = 0 ]
check "Redis down: /healthz and /readyz still 200" sh -c "curl -sf http://127.0.0.1:$A/healthz >/dev/null &&
    curl -sf http://127.0.0.1:$A/readyz >/dev/null"
check "Redis down: the error is logged once as a warning" grep -q "redis .*failing open" "$tmp/a.err"

# Redis back: reconnects by itself (backoff at most 5 s)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning >>"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids="$pids $redis_pid"
up=0
for i in $(seq 1 80); do
    post $A /v1/completions '{"prompt":"back","max_tokens":2,"temperature":0}' >/dev/null
    if [ "$(metric $A llmserve_redis_up)" = 1 ]; then up=1; break; fi
    sleep 0.1
done
check "Redis back: llmserve_redis_up 1 again" [ "$up" = 1 ]
h0=$(metric $A llmserve_cache_hits_total)
post $A /v1/completions '{"prompt":"back","max_tokens":2,"temperature":0}' >/dev/null
post $A /v1/completions '{"prompt":"back","max_tokens":2,"temperature":0}' >/dev/null
check "Redis back: hits again" [ "$(metric $A llmserve_cache_hits_total)" -gt "$h0" ]
if command -v promtool >/dev/null 2>&1; then
    check "promtool check metrics (with llmserve_redis_up)" sh -c "curl -s http://127.0.0.1:$A/metrics | promtool check metrics"
fi

# SIGTERM: drained, exit 0 (under ASan: nothing leaked)
for name in a b; do
    eval "spid=\$${name}_pid"
    kill -TERM "$spid" 2>/dev/null
    wait "$spid"
    rc=$?
    check "server $name drains and exits 0 (status $rc)" sh -c "[ $rc -eq 0 ] && ! grep -q 'LeakSanitizer\|runtime error' $tmp/$name.err"
done
finish
