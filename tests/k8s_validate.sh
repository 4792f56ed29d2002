#!/bin/sh
# k8s_validate.sh -- validate Kubernetes manifests against the Kubernetes API
# schema (the OpenAPI schemas of each release, as JSON Schema, shipped by the
# pip package kubernetes-validate; tests/requirements.txt).
#
#   tests/k8s_validate.sh [--allow-unknown] FILE...
#
# Every document of every FILE (multi-document YAML, `---`) is checked in
# strict mode (unknown fields are errors) against each Kubernetes version in
# $K8S_VERSIONS (default "1.27.0 1.37.0": the oldest release the manifests
# support -- CronJob timeZone is GA from 1.27 -- and the newest schema
# shipped).  A kind with no schema (a custom resource such as ServiceMonitor)
# is an error unless --allow-unknown is given, so a typo in apiVersion or
# kind cannot pass unnoticed.
#
# Exit: 0 all valid; 1 something invalid (the validator's message names the
# file, the resource and the field); 2 usage; 77 the validator is missing
# (the test-suite's "skipped").  Uses $PYTHON3 (set by `make check`) or
# .venv/bin/python, else python3.
set -u

allow_unknown=no
if [ "${1:-}" = "--allow-unknown" ]; then
    allow_unknown=yes
    shift
fi
if [ $# -eq 0 ]; then
    echo "usage: tests/k8s_validate.sh [--allow-unknown] FILE..." >&2
    exit 2
fi

here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON3:-}
[ -n "$py" ] || { [ -x "$here/.venv/bin/python" ] && py=$here/.venv/bin/python; }
[ -n "$py" ] || py=python3
if ! "$py" -c 'import kubernetes_validate' 2>/dev/null; then
    echo "k8s_validate: the Python module kubernetes_validate is missing for $py (pip install kubernetes-validate; scripts/setup.sh test does it)" >&2
    exit 77
fi

status=0
for f in "$@"; do
    if [ ! -r "$f" ]; then
        echo "k8s_validate: $f: cannot read" >&2
        status=1
        continue
    fi
    for v in ${K8S_VERSIONS:-1.27.0 1.37.0}; do
        out=$("$py" -m kubernetes_validate --strict --kubernetes-version "$v" "$f" 2>&1)
        rc=$?
        # The validator exits 0 for kinds it has no schema for, with a warning.
        if [ $rc -eq 0 ] && [ $allow_unknown = no ] && printf '%s\n' "$out" | grep -q "Couldn't find schema"; then
            rc=1
        fi
        if [ $rc -ne 0 ]; then
            printf '%s\n' "$out" | grep -v '^INFO ' >&2
            echo "k8s_validate: $f: INVALID against Kubernetes $v" >&2
            status=1
        else
            n=$(printf '%s\n' "$out" | grep -c '^INFO .* passed')
            echo "k8s_validate: $f: $n resources valid against Kubernetes $v"
        fi
    done
done
exit $status
