"""policy.py -- what deploy/'s rendered manifests must say, beyond the schema.

    python policy.py cpu|gpu RENDERED.yaml

Checks the llmserve Deployment (probes on /healthz and /readyz, a startup
probe that allows the model load, a preStop hook and a grace period that
covers preStop + --drain-timeout, non-root, read-only root filesystem, no
privilege escalation, resources; GPU requests and tolerations only in the gpu
overlay), that the Service, PDB and HPA point at it, that the HPA is
autoscaling/v2 on llmserve_requests_waiting per pod, that --cache names the
Redis Service, and that the night-schedule CronJobs patch that HPA under a
Role allowed to.  Prints one line per failed rule and exits 1, or 0.
"""
import re
import sys

import yaml


def seconds(text):
    """'90s', '2m', '1m30s', '15' -> seconds."""
    if re.fullmatch(r"\d+", text):
        return int(text)
    parts = re.findall(r"(\d+)(h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError("bad duration " + text)
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def main():
    overlay, path = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by = {}
    for d in docs:
        by.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    fails = []

    def need(cond, what):
        if not cond:
            fails.append(what)

    dep = by.get("Deployment", {}).get("llmserve")
    if dep is None:
        print("policy: no Deployment llmserve")
        return 1
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    c = [x for x in spec["containers"] if x["name"] == "llmserve"][0]
    args = c.get("args", [])
    opt = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)

    # probes
    need(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness probe is not GET /healthz")
    need(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness probe is not GET /readyz")
    sp = c.get("startupProbe", {})
    need(sp.get("httpGet", {}).get("path") in ("/readyz", "/healthz"), "no HTTP startupProbe")
    need(sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3) >= 300,
         "startupProbe allows less than 300 s for the model to load")
    # drain
    pre = c.get("lifecycle", {}).get("preStop", {})
    cmd = pre.get("exec", {}).get("command", [])
    pre_s = int(cmd[-1]) if cmd and cmd[0].endswith("sleep") else pre.get("sleep", {}).get("seconds", 0)
    need(pre_s > 0, "no preStop sleep")
    need("drain-timeout" in opt, "llmserve has no --drain-timeout")
    drain_s = seconds(opt.get("drain-timeout", "0"))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    need(grace >= pre_s + drain_s,
         f"terminationGracePeriodSeconds {grace} < preStop {pre_s} s + drain timeout {drain_s} s")
    # security
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "not runAsNonRoot")
    need(psc.get("runAsUser", csc.get("runAsUser", 0)) != 0, "runs as uid 0")
    need(csc.get("readOnlyRootFilesystem") is True, "root filesystem not read-only")
    need(csc.get("allowPrivilegeEscalation") is False, "privilege escalation allowed")
    need("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities not dropped")
    # model mounted read-only, not in the image
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    need(opt.get("model", "").startswith("/models/") and mounts.get("/models", {}).get("readOnly") is True,
         "the model is not read from a read-only /models mount")
    # resources
    req, lim = c.get("resources", {}).get("requests", {}), c.get("resources", {}).get("limits", {})
    need("cpu" in req and "memory" in req and "memory" in lim, "cpu/memory requests or memory limit missing")
    tol = [t.get("key") for t in spec.get("tolerations", [])]
    aff = yaml.safe_dump(spec.get("affinity", {}))
    if overlay == "gpu":
        need(str(lim.get("nvidia.com/gpu")) == "1" and str(req.get("nvidia.com/gpu")) == "1",
             "gpu overlay: nvidia.com/gpu not requested and limited to 1")
        need("nvidia.com/gpu" in tol, "gpu overlay: no toleration for the nvidia.com/gpu taint")
        need("nvidia.com/gpu.present" in aff, "gpu overlay: no node affinity for GPU nodes")
        need("spot" in aff, "gpu overlay: no preference for spot nodes")
    else:
        need("nvidia.com/gpu" not in req and "nvidia.com/gpu" not in lim, "cpu overlay requests a GPU")

    def selects(sel):
        return sel and all(labels.get(k) == v for k, v in sel.items())

    port_names = {p.get("name") for p in c.get("ports", [])}
    svc = by.get("Service", {}).get("llmserve")
    need(svc is not None and selects(svc["spec"]["selector"]), "Service llmserve does not select the pods")
    if svc:
        need(all(p.get("targetPort") in port_names for p in svc["spec"]["ports"]),
             "Service targetPort is not a container port name")
    pdb = by.get("PodDisruptionBudget", {}).get("llmserve")
    need(pdb is not None and selects(pdb["spec"]["selector"]["matchLabels"]), "PDB does not select the pods")
    hpa = by.get("HorizontalPodAutoscaler", {}).get("llmserve")
    need(hpa is not None and hpa["apiVersion"] == "autoscaling/v2", "no autoscaling/v2 HPA llmserve")
    if hpa:
        ref = hpa["spec"]["scaleTargetRef"]
        need(ref["kind"] == "Deployment" and ref["name"] == "llmserve", "HPA does not scale Deployment llmserve")
        m = hpa["spec"].get("metrics", [])
        need(any(x["type"] == "Pods" and x["pods"]["metric"]["name"] == "llmserve_requests_waiting"
                 and x["pods"]["target"]["type"] == "AverageValue" for x in m),
             "HPA does not scale on llmserve_requests_waiting per pod")
        need("behavior" in hpa["spec"], "HPA has no behavior")
        need(hpa["spec"]["minReplicas"] >= pdb["spec"].get("maxUnavailable", 0) if pdb else True,
             "PDB may take down every replica")
    # Redis
    cache = opt.get("cache", "")
    mr = re.fullmatch(r"redis://([^:/]+):(\d+)(/\d+)?", cache)
    need(mr is not None, "--cache is not a redis:// URL")
    if mr:
        rs = by.get("Service", {}).get(mr.group(1))
        need(rs is not None and any(p["port"] == int(mr.group(2)) for p in rs["spec"]["ports"]),
             f"--cache names {mr.group(1)}:{mr.group(2)}, which is no Service port")
        need(any(k in ("Deployment", "StatefulSet") and mr.group(1) in by.get(k, {}) for k in by),
             "no Redis Deployment or StatefulSet")
    # night schedule
    cjs = by.get("CronJob", {})
    need(len(cjs) >= 2, "night schedule: fewer than two CronJobs")
    role = by.get("Role", {}).get("llmserve-scheduler", {})
    allowed = [r for r in role.get("rules", []) if "horizontalpodautoscalers" in r.get("resources", [])
               and "patch" in r.get("verbs", [])]
    need(allowed and "llmserve" in allowed[0].get("resourceNames", ["llmserve"]),
         "night schedule: the Role may not patch HPA llmserve")
    for name, cj in cjs.items():
        ps = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        a = ps["containers"][0].get("args", [])
        need(a[:3] == ["patch", "hpa", "llmserve"], f"CronJob {name} does not patch HPA llmserve")
        need(ps.get("serviceAccountName") == "llmserve-scheduler", f"CronJob {name} runs without the scheduler account")
    for f in fails:
        print(f"policy: {path}: {f}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
