"""promql_rules.py -- every PromQL expression of deploy/ as a Prometheus
recording-rules file, so that `promtool check rules` parses them all.

    python promql_rules.py ADAPTER_RULES DASHBOARD.json > rules.yml

The Prometheus adapter's metricsQuery templates get their placeholders filled
as the adapter would for one pod (<<.Series>>, <<.LabelMatchers>>,
<<.GroupBy>>); the dashboard's Grafana variables get values ($namespace,
$__rate_interval, ...).  A syntax error in any of them then fails promtool.
"""
import json
import sys

import yaml


def main():
    rules = []
    adapter = yaml.safe_load(open(sys.argv[1]))
    for i, r in enumerate(adapter["rules"]):
        series = r["seriesQuery"].split("{", 1)[0]
        q = (r["metricsQuery"].replace("<<.Series>>", series)
             .replace("<<.LabelMatchers>>", 'namespace="llmserve",pod=~"llmserve-.*"')
             .replace("<<.GroupBy>>", "pod"))
        rules.append({"record": "adapter:rule%d" % i, "expr": q})
        rules.append({"record": "adapter:series%d" % i, "expr": r["seriesQuery"]})
    dash = json.load(open(sys.argv[2]))
    for p in dash["panels"]:
        for t in p.get("targets", []):
            q = (t["expr"].replace("$__rate_interval", "1m").replace("$namespace", "llmserve"))
            rules.append({"record": "dashboard:panel%d_%s" % (p["id"], t["refId"]), "expr": q})
    yaml.safe_dump({"groups": [{"name": "deploy-promql", "rules": rules}]}, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
