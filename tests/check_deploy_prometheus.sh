#!/bin/sh
# check_deploy_prometheus.sh -- deploy/monitoring: alert rules, scrape config,
# adapter rules and the Grafana dashboard.
#
#  - `promtool check rules` and `promtool test rules` (the alert unit tests
#    in deploy/monitoring/tests/alerts_test.yml), and a broken threshold
#    that the unit tests must catch;
#  - `promtool check config` on prometheus.yml (Debian's promtool is built
#    without Kubernetes service discovery, so the check runs on a copy with
#    the kubernetes_sd_configs block swapped for static_configs: everything
#    else, relabelling and rule files included, is checked as written);
#  - the PromQL of the adapter rules and the dashboard parses (promtool);
#  - every metric name in the alert rules, the dashboard, the adapter rules
#    and the HPA is one llmserve exports: against the agreed list
#    (tests/data/deploy/llmserve-metrics.txt) and, when `llmserve serve` is
#    built and answers, against its real /metrics output, and a real
#    Prometheus (Debian's) scraping it runs the adapter's queries and the
#    alert rules (the Redis alert goes pending with Redis down);
#  - the dashboard is valid JSON with unique panel ids, a target on every
#    panel and the Prometheus data source variable.
# Exits 77 (skipped) when promtool or Python's yaml is missing.
. "$(dirname "$0")/lib.sh"
check_log_lines=30
py=${PYTHON3:-$top_srcdir/.venv/bin/python}
# The project's .venv when the Python given lacks the modules.
if ! "$py" -c 'import yaml' 2>/dev/null && [ -x "$top_srcdir/.venv/bin/python" ]; then
    py=$top_srcdir/.venv/bin/python
fi
mon=$top_srcdir/deploy/monitoring
data=$top_srcdir/tests/data/deploy
server_pid=""
prom_pid=""
at_exit() {
    [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
}

if ! command -v promtool >/dev/null 2>&1; then
    skip "promtool not found (Debian: apt-get install prometheus; scripts/setup.sh installs it)"
fi
if ! "$py" -c 'import yaml' 2>/dev/null; then
    skip "$py lacks the yaml module (scripts/setup.sh test installs tests/requirements.txt)"
fi

# --- alert rules ---------------------------------------------------------------------
check "promtool check rules alerts.yml" promtool check rules "$mon/alerts.yml"
check "promtool test rules (alert unit tests)" sh -c "cd '$mon/tests' && promtool test rules alerts_test.yml"
# The unit tests must notice a wrong threshold: raise the KV-cache one past 0.98.
mkdir -p "$tmp/rules/tests"
sed 's/llmserve_kv_cache_usage_ratio\[5m\]) > 0.95/llmserve_kv_cache_usage_ratio[5m]) > 0.99/' "$mon/alerts.yml" >"$tmp/rules/alerts.yml"
cp "$mon/tests/alerts_test.yml" "$tmp/rules/tests/"
check "the KV-cache threshold was changed in the copy" sh -c "! cmp -s '$mon/alerts.yml' '$tmp/rules/alerts.yml'"
check_fails "the unit tests catch a changed alert threshold" sh -c "cd '$tmp/rules/tests' && promtool test rules alerts_test.yml"

# --- scrape configuration -------------------------------------------------------------
mkdir -p "$tmp/prom"
awk '/kubernetes_sd_configs:/ {print "    static_configs:"; print "      - targets: [\"127.0.0.1:8080\"]"; skip=1; next}
     skip && /^      - role:/ {next} {skip=0; print}' "$mon/prometheus.yml" >"$tmp/prom/prometheus.yml"
cp "$mon/alerts.yml" "$tmp/prom/"
check "promtool check config prometheus.yml (service discovery swapped for a static target)" \
    promtool check config "$tmp/prom/prometheus.yml"

# --- PromQL of the adapter rules and the dashboard -------------------------------------
# promtool parses rule files only: every adapter query (placeholders filled as
# the adapter fills them) and every dashboard query (Grafana variables given
# values) becomes a recording rule.
check "the adapter's and the dashboard's PromQL parses (promtool check rules)" sh -c \
    "'$py' '$data/promql_rules.py' '$mon/adapter-rules.yaml' '$mon/grafana/llmserve.json' >'$tmp/promql.yml' &&
     promtool check rules '$tmp/promql.yml'"
sed 's/max_over_time(<<.Series>>/max_over_time((<<.Series>>/' "$mon/adapter-rules.yaml" >"$tmp/bad-adapter.yaml"
check_fails "an unbalanced adapter query is caught" sh -c \
    "'$py' '$data/promql_rules.py' '$tmp/bad-adapter.yaml' '$mon/grafana/llmserve.json' >'$tmp/bad.yml' &&
     promtool check rules '$tmp/bad.yml'"

# --- metric names ------------------------------------------------------------------------
sources="$mon/alerts.yml $mon/grafana/llmserve.json $mon/adapter-rules.yaml $top_srcdir/deploy/k8s/base/hpa.yaml"
check "every metric deploy/ queries is in the agreed list" \
    "$py" "$data/metric_names.py" "$data/llmserve-metrics.txt" "$data/external-metrics.txt" $sources
sed 's/llmserve_requests_waiting/llmserve_queue_length/' "$top_srcdir/deploy/k8s/base/hpa.yaml" >"$tmp/hpa.yaml"
check_fails "an HPA on an unexported metric is caught" \
    "$py" "$data/metric_names.py" "$data/llmserve-metrics.txt" "$data/external-metrics.txt" "$tmp/hpa.yaml"

# Against the real server, when there is one.
llmserve=$top_builddir/llmserve
tokenizer=$shared/models/tokenizer.bin
if [ -x "$llmserve" ] && command -v curl >/dev/null 2>&1 && [ -r "$tokenizer" ] &&
    "$llmserve" serve --help >/dev/null 2>&1; then
    # Redis configured but unreachable (nothing listens on the port): llmserve
    # serves on (fail open) and exports llmserve_redis_up 0.
    dead=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$llmserve" serve --model synthetic:stories260K --tokenizer "$tokenizer" --chat-template raw --port 0 \
        --threads 1 --no-request-log --cache "redis://127.0.0.1:$dead" >"$tmp/server.out" 2>"$tmp/server.err" &
    server_pid=$!
    port=""
    i=0
    while [ $i -lt 300 ]; do
        port=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$tmp/server.out")
        [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
        i=$((i + 1))
    done
    # Requests, so histograms and counters have samples: streamed and not.
    curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
        -d '{"prompt":"Once upon a time","max_tokens":4}' >/dev/null 2>&1
    curl -sf "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
        -d '{"prompt":"Once upon a time","max_tokens":4,"stream":true}' >/dev/null 2>&1
    if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/metrics.txt"; then
        check "every metric deploy/ queries is in llmserve's real /metrics output" \
            "$py" "$data/metric_names.py" "$tmp/metrics.txt" "$data/external-metrics.txt" $sources
        missing=""
        for n in $(grep -v -e '^#' "$data/llmserve-metrics.txt"); do
            grep -q "^# TYPE $n " "$tmp/metrics.txt" || missing="$missing $n"
        done
        check "llmserve's /metrics has every agreed family${missing:+; missing:$missing}" \
            test -z "$missing"
        check "promtool check metrics accepts llmserve's /metrics" sh -c "promtool check metrics < '$tmp/metrics.txt'"
        check "llmserve_redis_up is 0 with Redis unreachable (what LLMServeRedisUnreachable fires on)" \
            grep -q '^llmserve_redis_up 0$' "$tmp/metrics.txt"
        # A real Prometheus (Debian's) scraping this llmserve with deploy's
        # alert rules: the adapter's queries return the pod's series, and the
        # Redis alert goes pending.
        if command -v prometheus >/dev/null 2>&1; then
            mkdir -p "$tmp/live"
            cp "$mon/alerts.yml" "$tmp/live/"
            pport=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
            cat >"$tmp/live/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [alerts.yml]
scrape_configs:
  - job_name: llmserve
    static_configs:
      - targets: ["127.0.0.1:$port"]
        labels: {namespace: llmserve, pod: llmserve-0}
EOF
            prometheus --config.file="$tmp/live/prometheus.yml" --storage.tsdb.path="$tmp/live/data" \
                --web.listen-address="127.0.0.1:$pport" >"$tmp/live/prometheus.log" 2>&1 &
            prom_pid=$!
            if "$py" "$data/live_prometheus.py" "http://127.0.0.1:$pport" "$mon/adapter-rules.yaml" >"$tmp/live.out" 2>&1; then
                ok "a real Prometheus scraping llmserve: the adapter's queries and the Redis alert"
            else
                not_ok "a real Prometheus scraping llmserve: the adapter's queries and the Redis alert"
            fi
            sed 's/^/    # /' "$tmp/live.out"
            kill "$prom_pid" 2>/dev/null
            wait "$prom_pid" 2>/dev/null
            prom_pid=""
        else
            echo "# prometheus not installed: the live scrape is skipped"
        fi
    else
        not_ok "llmserve serve answered no /metrics: $(tail -n 5 "$tmp/server.err")"
    fi
else
    echo "# llmserve serve not built here (or no tokenizer in \$LLMSCALE_SHARED): metric names checked against the agreed list only"
fi

# --- Grafana dashboard ---------------------------------------------------------------------
check "the dashboard is valid JSON with unique panel ids and targets on every panel" "$py" - "$mon/grafana/llmserve.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ids = [p["id"] for p in d["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
assert all(p.get("targets") and all(t.get("expr") for t in p["targets"]) for p in d["panels"]), "a panel without a query"
assert any(v["name"] == "datasource" and v["type"] == "datasource" for v in d["templating"]["list"]), "no datasource variable"
assert d["uid"] and d["title"]
PY

finish
