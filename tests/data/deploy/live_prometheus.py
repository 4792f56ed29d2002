"""live_prometheus.py -- deploy/monitoring against a real Prometheus scraping
a real llmserve.

    python live_prometheus.py PROMETHEUS_URL ADAPTER_RULES

Waits (up to 60 s: Prometheus answers 503 while it starts) until Prometheus has scraped llmserve (labels namespace
"llmserve", pod "llmserve-0" given by the scrape config), then runs each of
the Prometheus adapter's metricsQuery templates as the adapter would for that
pod and requires one series for the pod; then requires the alert
LLMServeRedisUnreachable to be pending or firing (llmserve runs with an
unreachable Redis) and no other llmserve alert but LLMServeTargetDown to be
active.  Prints what it checked; exits 1 on the first failure.
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml


def get(base, path, **params):
    """The API's data; None while Prometheus is still starting (it answers
    503 until its storage is ready, or refuses the connection before)."""
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 503:
            return None
        raise
    except urllib.error.URLError:
        return None
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (url, body))
    return body["data"]


def main():
    base, adapter = sys.argv[1], yaml.safe_load(open(sys.argv[2]))
    deadline = time.time() + 60
    queries = []
    for r in adapter["rules"]:
        series = r["seriesQuery"].split("{", 1)[0]
        queries.append((series, r["metricsQuery"].replace("<<.Series>>", series)
                        .replace("<<.LabelMatchers>>", 'namespace="llmserve",pod="llmserve-0"')
                        .replace("<<.GroupBy>>", "pod")))
    pending = dict(queries)
    while pending and time.time() < deadline:
        for name, q in list(pending.items()):
            data = get(base, "/api/v1/query", query=q)
            res = data["result"] if data is not None else []
            if len(res) == 1 and res[0]["metric"].get("pod") == "llmserve-0":
                print("adapter rule %s: %s = %s for pod llmserve-0" % (name, q, res[0]["value"][1]))
                del pending[name]
        time.sleep(0.5)
    if pending:
        print("adapter rules that return no series for the pod: %s" % ", ".join(pending))
        return 1
    while time.time() < deadline:
        data = get(base, "/api/v1/alerts")
        if data is None:
            time.sleep(0.5)
            continue
        alerts = data["alerts"]
        names = {a["labels"]["alertname"]: a["state"] for a in alerts}
        if names.get("LLMServeRedisUnreachable") in ("pending", "firing"):
            others = set(names) - {"LLMServeRedisUnreachable", "LLMServeTargetDown"}
            if others:
                print("unexpected alerts: %s" % names)
                return 1
            print("alerts: %s" % names)
            return 0
        time.sleep(0.5)
    print("LLMServeRedisUnreachable never became pending: %s" % get(base, "/api/v1/alerts"))
    return 1


if __name__ == "__main__":
    sys.exit(main())
