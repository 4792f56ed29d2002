# server_lib.sh -- sourced by tests/server_*.sh: start llmserve and
# redis-server on free ports, and always stop them (the checks, skip and
# finish come from tests/lib.sh).
# Needs: llmserve built with libmicrohttpd, curl, and ../shared's
# tokenizer.bin (the tests serve synthetic models with it).
. "$(dirname "$0")/lib.sh"
llmserve=$top_builddir/llmserve
tokenizer=$shared/models/tokenizer.bin
pids=""

# at exit: kill what still runs (SIGKILL, no drain: a test that checks the
# drain sends SIGTERM itself and waits).
at_exit() {
    for p in $pids; do
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
}

[ -x "$llmserve" ] || skip "$llmserve not built"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
[ -r "$tokenizer" ] || skip "$tokenizer absent (set LLMSCALE_SHARED)"
"$llmserve" serve --help >/dev/null 2>&1 || skip "llmserve serve unavailable"

# The small model of the tests, and a slower one for drain and load.
model_fast="synthetic:stories260K"
model_slow="synthetic:dim=256,layers=6,heads=4,kv_heads=4,hidden=768,vocab=512,seq=1024"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME ARGS...: run llmserve on a free port, wait until it is
# ready; sets NAME_port, NAME_pid, and logs to $tmp/NAME.err.
start_server() {
    name=$1
    shift
    "$llmserve" serve --port 0 --tokenizer "$tokenizer" --chat-template raw --threads 1 "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    spid=$!
    pids="$pids $spid"
    eval "${name}_pid=$spid"
    i=0
    while [ $i -lt 300 ]; do
        sport=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$tmp/$name.out" 2>/dev/null)
        if [ -n "$sport" ] && curl -sf "http://127.0.0.1:$sport/readyz" >/dev/null 2>&1; then
            eval "${name}_port=$sport"
            return 0
        fi
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "# llmserve $name did not start:"
    sed 's/^/#   /' "$tmp/$name.err" | tail -20
    return 1
}

# start_redis: redis-server on a free port; sets redis_port, redis_pid.
start_redis() {
    command -v redis-server >/dev/null 2>&1 || return 1
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
        >"$tmp/redis.log" 2>&1 &
    redis_pid=$!
    pids="$pids $redis_pid"
    i=0
    while [ $i -lt 100 ]; do
        redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# metric PORT NAME_WITH_LABELS: the value of one series (empty if absent).
metric() {
    curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# post PORT PATH BODY [CURL-ARGS...]: body to $tmp/body, status printed.
post() {
    p=$1 path=$2 body=$3
    shift 3
    curl -s -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -H 'Content-Type: application/json' \
        "$@" --data-binary "$body" "http://127.0.0.1:$p$path"
}
