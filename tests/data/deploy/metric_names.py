"""metric_names.py -- the metric names deploy/ queries, checked against the
names llmserve exports.

    python metric_names.py EXPORTED EXTERNAL FILE...

EXPORTED: metric family names, one a line ('#' comments), or a Prometheus
text exposition (llmserve's /metrics output: the '# TYPE' lines are read).
EXTERNAL: names from elsewhere (Prometheus's `up`, kube-state-metrics) that
deploy/ may use.  FILEs: Prometheus rule files, Grafana dashboards (.json),
Prometheus adapter rules, HPA manifests.  Every metric name in every PromQL
expression (and every HPA Pods/Object metric) must be an exported family
(a histogram's _bucket, _sum and _count series included) or an external name.
Prints each unknown name with the file and exits 1; prints the names checked.
"""
import json
import re
import sys

import yaml

FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes", "clamp",
    "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "delta", "deriv", "exp", "floor",
    "group", "histogram_quantile", "holt_winters", "idelta", "increase", "irate", "label_join",
    "label_replace", "label_values", "last_over_time", "ln", "log2", "log10", "max", "max_over_time", "min",
    "min_over_time", "predict_linear", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar",
    "sort", "sort_desc", "sqrt", "stddev", "stddev_over_time", "stdvar", "sum", "sum_over_time", "time",
    "timestamp", "topk", "vector", "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "query_result",
}


def read_exported(path):
    names, text = set(), open(path).read()
    if "# TYPE " in text:
        for m in re.finditer(r"^# TYPE (\S+) (\S+)", text, re.M):
            names.add(m.group(1))
            if m.group(2) in ("histogram", "summary"):
                names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
        return names
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
            names.update(line + s for s in ("_bucket", "_sum", "_count"))
    return names


def expr_names(expr):
    """Metric names in a PromQL expression (or an adapter template)."""
    expr = re.sub(r"<<[^>]*>>", "", expr)                 # adapter templates
    expr = re.sub(r"label_values\(([^,()]+),[^)]*\)", r"\1", expr)  # Grafana: label_values(METRIC, LABEL)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)      # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)                # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)               # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)                     # Grafana variables
    out = set()
    for tok in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if tok.lower() in FUNCTIONS or re.fullmatch(r"\d+\w*", tok):
            continue
        out.add(tok)
    return out


def file_exprs(path):
    text = open(path).read()
    if path.endswith(".json"):
        found = []

        def walk(x):
            if isinstance(x, dict):
                for k, v in x.items():
                    if k in ("expr", "definition") and isinstance(v, str):
                        found.append(v)
                    elif k == "query" and isinstance(v, str) and "(" in v:
                        found.append(v)
                    else:
                        walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(json.loads(text))
        return found
    found = []
    for doc in yaml.safe_load_all(text):
        if not isinstance(doc, dict):
            continue
        for g in doc.get("groups", []):                       # rule files
            found.extend(r["expr"] for r in g.get("rules", []))
        for r in doc.get("rules", []) if isinstance(doc.get("rules"), list) else []:
            if isinstance(r, dict) and "seriesQuery" in r:    # adapter rules
                found.append(r["seriesQuery"])
                found.append(r.get("metricsQuery", ""))
                found.append(r.get("name", {}).get("as", ""))
        if doc.get("kind") == "HorizontalPodAutoscaler":
            for m in doc["spec"].get("metrics", []):
                body = m.get(m["type"][0].lower() + m["type"][1:], {})
                if "metric" in body:
                    found.append(body["metric"]["name"])
    return found


def main():
    exported = read_exported(sys.argv[1])
    external = read_exported(sys.argv[2])
    bad, seen = 0, set()
    for path in sys.argv[3:]:
        exprs = file_exprs(path)
        if not exprs:
            print(f"metric_names: {path}: no expressions found")
            bad += 1
        for e in exprs:
            for n in expr_names(e):
                seen.add(n)
                if n not in exported and n not in external:
                    print(f"metric_names: {path}: '{n}' is not a metric llmserve exports (in: {e.strip()[:80]})")
                    bad += 1
    print("metric_names: checked " + " ".join(sorted(seen)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
