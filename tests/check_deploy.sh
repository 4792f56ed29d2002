#!/bin/sh
# check_deploy.sh -- deploy/: the Kubernetes manifests and the images.
#
#  - each overlay (deploy/k8s/overlays/cpu, gpu) and deploy/monitoring is
#    rendered with `kubectl kustomize` (when kubectl is installed) and must
#    match the plain YAML committed in deploy/k8s/plain/;
#  - the plain YAML is validated against the Kubernetes API schema
#    (tests/k8s_validate.sh: kubernetes-validate, strict, 1.27 and 1.37);
#  - deploy's own rules beyond the schema (tests/data/deploy/policy.py:
#    probes, drain timing, non-root, GPU requests, HPA metric, Redis, night
#    schedule) hold for both overlays;
#  - broken copies (a grace period shorter than the drain, an HPA in a wrong
#    API version, a typo in a field) are caught, so the checks can fail;
#  - the Dockerfiles use exec-form entry points, a non-root user, the
#    Debian slim and CUDA runtime bases, and the CPU image's run-time
#    packages hold every shared library the llmserve built here links.
# Exits 77 (skipped) when Python's yaml or kubernetes_validate is missing.
. "$(dirname "$0")/lib.sh"
check_log_lines=20
py=${PYTHON3:-$top_srcdir/.venv/bin/python}
# The project's .venv when the Python given lacks the modules.
if ! "$py" -c 'import yaml, kubernetes_validate' 2>/dev/null && [ -x "$top_srcdir/.venv/bin/python" ]; then
    py=$top_srcdir/.venv/bin/python
fi
deploy=$top_srcdir/deploy
data=$top_srcdir/tests/data/deploy

if ! "$py" -c 'import yaml, kubernetes_validate' 2>/dev/null; then
    skip "$py lacks yaml or kubernetes_validate (scripts/setup.sh test installs tests/requirements.txt)"
fi

# --- rendering: kustomize output == committed plain YAML ---------------------
# same_docs A B: the same set of objects (order and formatting aside).
same_docs() {
    "$py" - "$1" "$2" <<'PY'
import sys, yaml
def load(p):
    return sorted((yaml.safe_dump(d, sort_keys=True) for d in yaml.safe_load_all(open(p)) if d))
sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
PY
}
if command -v kubectl >/dev/null 2>&1; then
    for o in cpu gpu; do
        if kubectl kustomize "$deploy/k8s/overlays/$o" >"$tmp/$o.yaml" 2>"$tmp/$o.err"; then
            check "kustomize overlays/$o renders as deploy/k8s/plain/llmserve-$o.yaml" \
                same_docs "$tmp/$o.yaml" "$deploy/k8s/plain/llmserve-$o.yaml"
        else
            not_ok "kubectl kustomize overlays/$o: $(head -c 300 "$tmp/$o.err")"
        fi
    done
    if kubectl kustomize "$deploy/monitoring" >"$tmp/mon.yaml" 2>"$tmp/mon.err"; then
        check "kustomize monitoring renders as deploy/k8s/plain/monitoring.yaml" \
            same_docs "$tmp/mon.yaml" "$deploy/k8s/plain/monitoring.yaml"
    else
        not_ok "kubectl kustomize monitoring: $(head -c 300 "$tmp/mon.err")"
    fi
else
    echo "# kubectl not found: validating the committed renders in deploy/k8s/plain/ only"
fi

# --- the Kubernetes API schema -------------------------------------------------
for f in llmserve-cpu llmserve-gpu monitoring; do
    check "$f.yaml valid against the Kubernetes API schema" \
        env PYTHON3="$py" "$top_srcdir/tests/k8s_validate.sh" "$deploy/k8s/plain/$f.yaml"
done
check "servicemonitor.yaml parses (custom resource: no API schema here)" \
    env PYTHON3="$py" "$top_srcdir/tests/k8s_validate.sh" --allow-unknown "$deploy/monitoring/servicemonitor.yaml"
sed 's|^apiVersion: autoscaling/v2$|apiVersion: autoscaling/v3|' "$deploy/k8s/plain/llmserve-cpu.yaml" >"$tmp/badapi.yaml"
check_fails "an HPA in autoscaling/v3 is rejected" env PYTHON3="$py" "$top_srcdir/tests/k8s_validate.sh" "$tmp/badapi.yaml"
sed 's|readOnlyRootFilesystem: true|readOnlyRootFileSystem: true|' "$deploy/k8s/plain/llmserve-cpu.yaml" >"$tmp/badfield.yaml"
check_fails "a misspelt field is rejected" env PYTHON3="$py" "$top_srcdir/tests/k8s_validate.sh" "$tmp/badfield.yaml"
sed 's|terminationGracePeriodSeconds: 120|terminationGracePeriodSeconds: "two minutes"|' "$deploy/k8s/plain/llmserve-gpu.yaml" >"$tmp/badtype.yaml"
check_fails "a wrong type is rejected" env PYTHON3="$py" "$top_srcdir/tests/k8s_validate.sh" "$tmp/badtype.yaml"

# --- deploy's own rules ------------------------------------------------------------
for o in cpu gpu; do
    check "overlay $o: probes, drain, security, resources, HPA, Redis, schedule" \
        "$py" "$data/policy.py" "$o" "$deploy/k8s/plain/llmserve-$o.yaml"
done
sed 's|terminationGracePeriodSeconds: 120|terminationGracePeriodSeconds: 60|' "$deploy/k8s/plain/llmserve-cpu.yaml" >"$tmp/short.yaml"
check_fails "a grace period shorter than preStop + drain is caught" "$py" "$data/policy.py" cpu "$tmp/short.yaml"
check_fails "the cpu overlay fails the gpu rules" "$py" "$data/policy.py" gpu "$deploy/k8s/plain/llmserve-cpu.yaml"
sed 's|redis://llmserve-redis:6379|redis://redis:6379|' "$deploy/k8s/plain/llmserve-cpu.yaml" >"$tmp/redis.yaml"
check_fails "--cache naming no Service is caught" "$py" "$data/policy.py" cpu "$tmp/redis.yaml"

# --- the Deployment's command line and probes on the real llmserve ---------------
# llmserve started with the Deployment's own args (the model swapped for a
# synthetic one, the port for a free one, Redis for an address where nothing
# listens): the flags must parse, the probe paths answer 200, and SIGTERM
# must end it with status 0 well within the grace period.
llmserve=$top_builddir/llmserve
tokenizer=$shared/models/tokenizer.bin
if [ -x "$llmserve" ] && "$llmserve" serve --help >/dev/null 2>&1 && [ -r "$tokenizer" ] &&
    command -v curl >/dev/null 2>&1; then
    "$py" - "$deploy/k8s/plain/llmserve-cpu.yaml" "$tokenizer" >"$tmp/probe.env" <<'PY'
import re, socket, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "llmserve"][0]
spec = dep["spec"]["template"]["spec"]
c = spec["containers"][0]
dead = socket.socket(); dead.bind(("127.0.0.1", 0))
args = []
for a in c["args"]:
    if a.startswith("--model="): a = "--model=synthetic:stories260K"
    elif a.startswith("--host="): a = "--host=127.0.0.1"
    elif a.startswith("--port="): a = "--port=0"
    elif a.startswith("--cache=redis://"): a = "--cache=redis://127.0.0.1:%d/0" % dead.getsockname()[1]
    args.append(a)
args += ["--tokenizer=" + sys.argv[2], "--chat-template=raw", "--threads=1"]
env = {e["name"]: e["value"] for e in c.get("env", [])}
print("args='%s'" % " ".join(args))
print("envs='%s'" % " ".join("%s=%s" % kv for kv in env.items()))
print("live=%s" % c["livenessProbe"]["httpGet"]["path"])
print("ready=%s" % c["readinessProbe"]["httpGet"]["path"])
print("startup=%s" % c["startupProbe"]["httpGet"]["path"])
print("grace=%d" % spec["terminationGracePeriodSeconds"])
PY
    . "$tmp/probe.env"
    # shellcheck disable=SC2086
    env $envs "$llmserve" $args >"$tmp/serve.out" 2>"$tmp/serve.err" &
    spid=$!
    port=""
    i=0
    while [ $i -lt 300 ] && [ -z "$port" ]; do
        port=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$tmp/serve.out")
        [ -n "$port" ] || sleep 0.1
        i=$((i + 1))
    done
    i=0
    while [ -n "$port" ] && [ $i -lt 100 ] && ! curl -sf "http://127.0.0.1:$port$startup" >/dev/null 2>&1; do
        sleep 0.1
        i=$((i + 1))
    done
    check "llmserve accepts the Deployment's args ($args)" test -n "$port"
    for p in "$live" "$ready" "$startup"; do
        check "probe path $p answers 200" curl -sf -o /dev/null "http://127.0.0.1:$port$p"
    done
    t0=$(date +%s)
    kill -TERM "$spid" 2>/dev/null
    wait "$spid"
    st=$?
    t1=$(date +%s)
    check "SIGTERM: exit 0 within the grace period (${grace}s)" test "$st" -eq 0 -a $((t1 - t0)) -lt "$grace"
else
    echo "# llmserve serve not built (or no tokenizer in \$LLMSCALE_SHARED): the Deployment's args not tried"
fi

# --- images -----------------------------------------------------------------------
# final_stage FILE: the lines of the last stage of a Dockerfile.
final_stage() { awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$1"; }
for df in Dockerfile Dockerfile.cuda; do
    final_stage "$deploy/$df" >"$tmp/stage"
    check "$df: multi-stage" test "$(grep -c '^FROM ' "$deploy/$df")" -ge 2
    check "$df: exec-form ENTRYPOINT" grep -q '^ENTRYPOINT \["/' "$tmp/stage"
    check "$df: runs as a non-root numeric user" sh -c "grep '^USER ' '$tmp/stage' | grep -qv -E '^USER (0|root)(:|\$)'"
    check "$df: no model baked in" sh -c "! grep -E -i '^(COPY|ADD) .*\\.(bin|gguf|safetensors)' '$deploy/$df'"
done
check "Dockerfile: runtime on debian:12-slim" grep -q '^FROM debian:12-slim AS runtime' "$deploy/Dockerfile"
check "Dockerfile.cuda: runtime on the CUDA runtime image" grep -q '^FROM nvidia/cuda:.*-runtime-' "$deploy/Dockerfile.cuda"
llmserve=$top_builddir/llmserve
if [ -x "$llmserve" ] && command -v dpkg >/dev/null 2>&1 && command -v ldd >/dev/null 2>&1; then
    # Every library llmserve links must come from a package the runtime
    # stage installs, or from the base image (libc, libgcc, libstdc++).
    final_stage "$deploy/Dockerfile" | tr ' \\' '\n\n' | grep -E '^lib' | sort -u >"$tmp/pkgs"
    printf '%s\n' libc6 libgcc-s1 libstdc++6 >>"$tmp/pkgs"
    # ... and what apt installs with them (their dependencies, recursively).
    "$py" - "$tmp/pkgs" >"$tmp/closure" <<'PY'
import re, subprocess, sys
todo = [l.strip() for l in open(sys.argv[1]) if l.strip()]
seen = set()
while todo:
    p = todo.pop()
    if p in seen:
        continue
    seen.add(p)
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p], capture_output=True, text=True)
    for alt in re.split(r"[,|]", r.stdout):
        name = re.sub(r"\(.*?\)|:any", "", alt).strip()
        if name:
            todo.append(name)
print("\n".join(sorted(seen)))
PY
    mv "$tmp/closure" "$tmp/pkgs"
    missing=""
    for lib in $(ldd "$llmserve" | awk '$3 ~ /^\// {print $3}'); do
        case "$lib" in *libasan* | *libubsan*) continue ;; esac
        # the CUDA toolkit's (a build with CUDA links them): the image
        # builds --without-cuda; Dockerfile.cuda's runtime base carries them
        # (matched by name as well as by path: ldconfig may find them
        # through links in /usr/local/lib, as on CI's machine)
        case "$lib" in */cuda*/lib64/* | */cuda*/lib/* | */cuda*/targets/*) continue ;; esac
        case "${lib##*/}" in libcudart.so* | libcublas.so* | libcublasLt.so* | libcuda.so* | libnvrtc.so* | libnvJitLink.so*) continue ;; esac
        pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
        [ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
        grep -qx "$pkg" "$tmp/pkgs" || missing="$missing $lib($pkg)"
    done
    check "Dockerfile: runtime packages hold every library llmserve links${missing:+ (missing:$missing)}" test -z "$missing"
else
    echo "# $llmserve not built (or no dpkg/ldd): runtime libraries not checked"
fi

finish
