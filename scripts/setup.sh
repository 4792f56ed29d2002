#!/bin/sh
# setup.sh -- set up llmscale on Debian 12 and run the main job or the tests.
#
#   scripts/setup.sh run    install what is missing, build, and simulate the
#                           example scenario (workloads/examples/replay.yaml),
#                           writing its report under out/replay/
#   scripts/setup.sh test   install what is missing, build, and run the whole
#                           test suite: `make check`, then again built with
#                           AddressSanitizer and UndefinedBehaviorSanitizer
#
# Runs as root (or with sudo for apt-get).  Builds go to build/ and build-asan/.
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
mode=${1:-run}
jobs=$(nproc 2>/dev/null || echo 2)

case "$mode" in
run | test) ;;
*)
    echo "usage: scripts/setup.sh run|test" >&2
    exit 2
    ;;
esac

# --- Debian packages --------------------------------------------------------
packages="build-essential autoconf automake libtool pkg-config make
 check libjansson-dev libfyaml-dev libxxhash-dev
 libhiredis-dev libmicrohttpd-dev libcurl4-openssl-dev libopenblas-dev libsimde-dev
 gnuplot-nox redis-server python3 python3-venv
 prometheus
 chromium chromium-driver wrk"
missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# kubectl renders deploy/'s Kustomize overlays in tests/check_deploy.sh;
# Debian's is kubernetes-client (only when no kubectl is installed already,
# since another kubectl package would conflict with it).
if ! command -v kubectl >/dev/null 2>&1; then
    echo "setup: installing kubernetes-client (kubectl)"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null ||
        echo "setup: warning: kubernetes-client not installed; tests/check_deploy.sh checks the committed renders only" >&2
fi

# --- build ---------------------------------------------------------------------
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    echo "setup: autoreconf"
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi

# build DIR [CONFIGURE-ARGS...]: configure once into DIR, then make.
build() {
    dir=$1
    shift
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        echo "setup: configuring $dir"
        (cd "$dir" && "$top/configure" -q "$@")
    fi
    echo "setup: building $dir"
    make -C "$dir" -s -j"$jobs" >/dev/null
}

build build

if [ "$mode" = run ]; then
    echo "setup: simulating workloads/examples/replay.yaml"
    exec build/llmsim run workloads/examples/replay.yaml -o out/replay
fi

# --- tests -------------------------------------------------------------------------
# Python tools the tests drive (the OpenAI client, validators, ...) live in a
# virtual environment, .venv/, listed in tests/requirements.txt.  Tests that
# need one of them skip, saying so, when it is missing.
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv (tests/requirements.txt)"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt ||
    echo "setup: warning: pip install failed; tests that need those modules will skip" >&2
LLMSCALE_PYTHON=$top/.venv/bin/python
export LLMSCALE_PYTHON

# Redis serves the tests of the parts that use it; start one if none answers.
if command -v redis-server >/dev/null 2>&1 && ! (command -v redis-cli >/dev/null && redis-cli ping >/dev/null 2>&1); then
    redis-server --daemonize yes --save "" --appendonly no >/dev/null || true
fi

# show_failures DIR: the log of every test that failed in DIR (its last 80
# lines, the lines that say "not ok" or FAIL first), so that a CI log says why.
show_failures() {
    for trs in "$1"/tests/*.trs; do
        [ -f "$trs" ] || continue
        grep -q -E '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || continue
        log=${trs%.trs}.log
        echo "setup: ---- $log ----"
        grep -E '^not ok|FAIL|ERROR' "$log" | head -n 40
        echo "setup: ---- its last 80 lines ----"
        tail -n 80 "$log"
    done
}

status=0
echo "setup: make check (build/)"
make -C build -j"$jobs" check || status=1
[ $status -eq 0 ] || show_failures build

echo "setup: make check with ASan+UBSan (build-asan/)"
build build-asan --enable-sanitizers
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    make -C build-asan -j"$jobs" check || status=1
[ $status -eq 0 ] || show_failures build-asan

# One closing line over both builds: every test program and script once each.
results=$(cat build/tests/*.trs build-asan/tests/*.trs 2>/dev/null | grep '^:test-result:' || true)
npass=$(printf '%s\n' "$results" | grep -c ' PASS' || true)
nfail=$(printf '%s\n' "$results" | grep -c -E ' (FAIL|ERROR|XPASS)' || true)
nskip=$(printf '%s\n' "$results" | grep -c ' SKIP' || true)
echo "tests: $npass passed, $nfail failed, $nskip skipped"
if [ $status -eq 0 ]; then
    echo "setup: all tests passed (build/ and build-asan/)"
else
    echo "setup: TESTS FAILED" >&2
fi
exit $status
