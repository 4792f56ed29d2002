#!/bin/sh
# gpu-check.sh -- the CUDA kernels on a machine with a GPU, in one go: build,
# run the CUDA correctness tests, run `llmbench cuda` (every kernel version
# against cuBLAS and the roofline, one table), and keep everything.
#
# usage (from anywhere in the tree):
#   kernels/cuda/gpu-check.sh [BUILD_DIR]
#       On the GPU machine.  Uses a bundle (below) when build-gpu-bundle/
#       holds one; otherwise configures into BUILD_DIR (default build-gpu;
#       running `autoreconf -fi` first when ./configure is missing) and
#       makes llmbench and the CUDA test programs (the kernels and llmserve's forward pass on the device).
#   kernels/cuda/gpu-check.sh --bundle [BUNDLE_DIR]
#       On a machine with the build dependencies (no GPU needed): build as
#       above, then copy the programs and the shared libraries a bare CUDA
#       machine may lack (jansson, libfyaml, xxhash, subunit, ...) into
#       BUNDLE_DIR (default build-gpu-bundle, ignored by git) for a GPU
#       machine without compilers' dependencies or autotools: carry it
#       there and run the first form.  Built for sm_90 only (CUDA_ARCHS
#       overrides) and without OpenBLAS, so that it stays small.
#
# Results, in ${OUT:-out/gpu-check}/: summary.txt (GPU, date, commit, each
# step's status), nvidia-smi.txt (nvidia-smi -q), build.log, tests.log (the
# test programs' output), llmbench-cuda.txt (the table),
# llmbench-cuda.json, and profile-cuda.json (llmserve's forward pass on the
# GPU as an llmsim profile: stories110M's shape, batch up to 64).  Each step has a time limit; the whole run takes about
# 3 minutes on an H100/H200 from source (1-2 with a bundle).
#
# Exit status: 0 every test passed and the benchmark ran; 1 a correctness
# test failed (a test that skips for want of a device counts as failed
# here); 2 the build failed; 3 only the benchmark or the profile failed.
# Environment: OUT, JOBS (make -j, default: the cores), LLMBENCH_ARGS (extra
# arguments for llmbench cuda, e.g. --quick), CUDA_ARCHS (--bundle).
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
tests="check_cuda_matmul check_cuda_attention check_cuda_ops check_forward_cuda"

# Absolute path of $1 (relative to the tree's root).
abspath() {
    case $1 in
    /*) echo "$1" ;;
    *) echo "$root/$1" ;;
    esac
}

# Build into $1: autoreconf when needed, configure (extra arguments in
# $configure_args), make the programs.  Logs to $2.
build() {
    b=$1
    log=$2
    {
        echo "== build in $b ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
        if [ ! -x "$root/configure" ]; then
            echo "== autoreconf -fi"
            (cd "$root" && timeout 180 autoreconf -fi) || return 1
        fi
        mkdir -p "$b" || return 1
        if [ ! -f "$b/Makefile" ]; then
            echo "== configure --with-cuda $configure_args"
            # shellcheck disable=SC2086
            (cd "$b" && timeout 180 "$root/configure" --with-cuda $configure_args) || return 1
        fi
        echo "== make -j$jobs llmbench tests"
        prog="llmbench"
        for t in $tests; do prog="$prog tests/$t"; done
        # shellcheck disable=SC2086
        (cd "$b" && timeout 300 make -j"$jobs" $prog) || return 1
    } >>"$log" 2>&1
}

# ---- --bundle: build here, gather the programs and their libraries --------------
if [ "${1:-}" = "--bundle" ]; then
    bundle=$(abspath "${2:-build-gpu-bundle}")
    b=$(abspath "${BUILD:-build-gpu-for-bundle}")
    log="$b.log"
    : >"$log"
    # llmbench without OpenBLAS (36 MB): hide openblas.pc from pkg-config.
    pcdir="$b-pkgconfig"
    rm -rf "$pcdir" && mkdir -p "$pcdir"
    for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
        for f in "$d"/*.pc; do
            [ -e "$f" ] || continue
            case $(basename "$f") in *blas*) ;; *) ln -sf "$f" "$pcdir/" ;; esac
        done
    done
    export PKG_CONFIG_LIBDIR="$pcdir"
    configure_args="--with-cuda-arch=${CUDA_ARCHS:-90}"
    echo "gpu-check: building in $b (log: $log)"
    if ! build "$b" "$log"; then
        tail -30 "$log"
        echo "gpu-check: the build failed (log: $log)" >&2
        exit 2
    fi
    rm -rf "$bundle" && mkdir -p "$bundle/bin" "$bundle/lib" || exit 2
    cp "$b/llmbench" "$bundle/bin/" || exit 2
    for t in $tests; do
        cp "$b/tests/$t" "$bundle/bin/" || exit 2
    done
    strip --strip-debug "$bundle"/bin/* 2>/dev/null
    # Shared libraries other than glibc's, the compiler runtime's and CUDA's.
    for lib in $(ldd "$bundle"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
        case $(basename "$lib") in
        libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux* | libstdc++* | libgcc_s*) ;;
        libcuda* | libcublas* | libnvidia*) ;;
        *) cp -L "$lib" "$bundle/lib/" || exit 2 ;;
        esac
    done
    {
        echo "built $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -n) for sm ${CUDA_ARCHS:-90}"
        (cd "$root" && git log -1 --format='commit %H %s' 2>/dev/null && git status --short 2>/dev/null | head -50)
    } >"$bundle/INFO"
    du -sh "$bundle"
    echo "gpu-check: bundle ready in $bundle; on the GPU machine run kernels/cuda/gpu-check.sh with it in place"
    exit 0
fi

# ---- on the GPU machine --------------------------------------------------------------
out=$(abspath "${OUT:-out/gpu-check}")
mkdir -p "$out" || exit 2
summary="$out/summary.txt"
: >"$summary"
: >"$out/build.log"
: >"$out/tests.log"

say() {
    echo "$*"
    echo "$*" >>"$summary"
}

say "gpu-check $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -n)"
say "tree: $(cd "$root" && git log -1 --format='%h %s' 2>/dev/null || echo 'not a git checkout')"
if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 60 nvidia-smi -q >"$out/nvidia-smi.txt" 2>&1
    say "gpu: $(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
        --format=csv,noheader 2>&1 | head -1)"
else
    say "gpu: nvidia-smi not found"
fi

# The programs: a bundle, or a build from source.
bundle=$(abspath build-gpu-bundle)
if [ $# -eq 0 ] && [ -x "$bundle/bin/llmbench" ]; then
    llmbench="$bundle/bin/llmbench"
    testdir="$bundle/bin"
    export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # CUDA's libraries from wherever this machine has them (the toolkit, or
    # NVIDIA's Python wheels) when the programs' run path misses them.
    for name in $(ldd "$llmbench" "$testdir"/check_* 2>/dev/null | awk '/not found/ {print $1}' | sort -u); do
        d=$(find /usr /opt -name "$name" 2>/dev/null | head -1)
        [ -n "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$d")"
    done
    say "build: bundle $bundle ($(head -1 "$bundle/INFO" 2>/dev/null))"
    cat "$bundle/INFO" >>"$out/build.log" 2>/dev/null
    ldd "$llmbench" "$testdir"/check_* >>"$out/build.log" 2>&1
else
    b=$(abspath "${1:-build-gpu}")
    configure_args=""
    t0=$(date +%s)
    if ! build "$b" "$out/build.log"; then
        say "build: FAILED after $(($(date +%s) - t0)) s (see build.log)"
        tail -30 "$out/build.log"
        exit 2
    fi
    say "build: ok in $(($(date +%s) - t0)) s ($b)"
    llmbench="$b/llmbench"
    testdir="$b/tests"
fi

# The correctness tests.
failed=0
for t in $tests; do
    if [ ! -x "$testdir/$t" ]; then
        say "test $t: MISSING"
        failed=1
        continue
    fi
    t0=$(date +%s)
    echo "== $t" >>"$out/tests.log"
    (cd "$root" && timeout 150 "$testdir/$t") >>"$out/tests.log" 2>&1
    rc=$?
    case $rc in
    0) status="passed" ;;
    77) status="SKIPPED (no usable device?)"; failed=1 ;;
    124) status="TIMED OUT"; failed=1 ;;
    *) status="FAILED (exit $rc)"; failed=1 ;;
    esac
    say "test $t: $status in $(($(date +%s) - t0)) s"
done

# The benchmark table.
t0=$(date +%s)
# shellcheck disable=SC2086
(cd "$root" && timeout 240 "$llmbench" cuda --json "$out/llmbench-cuda.json" ${LLMBENCH_ARGS:-}) \
    >"$out/llmbench-cuda.txt" 2>&1
bench_rc=$?
cat "$out/llmbench-cuda.txt"
if [ $bench_rc -eq 0 ]; then
    say "llmbench cuda: ok in $(($(date +%s) - t0)) s"
else
    say "llmbench cuda: FAILED (exit $bench_rc) after $(($(date +%s) - t0)) s"
fi

# llmserve's forward pass on this GPU as llmsim sees it: a service-time
# profile of the stories110M shape (f32), for `service: {profile: ...}`.
t0=$(date +%s)
(cd "$root" && timeout 120 "$llmbench" profile --model synthetic:stories110M --backend cuda --max-batch 64 \
    --max-prefill 1024 --repeat 3 -o "$out/profile-cuda.json") >"$out/profile-cuda.txt" 2>&1
prof_rc=$?
if [ $prof_rc -eq 0 ]; then
    say "llmbench profile --backend cuda: ok in $(($(date +%s) - t0)) s (profile-cuda.json)"
else
    say "llmbench profile --backend cuda: FAILED (exit $prof_rc) after $(($(date +%s) - t0)) s"
fi

echo
cat "$summary"
[ $failed -eq 0 ] || exit 1
[ $bench_rc -eq 0 ] && [ $prof_rc -eq 0 ] || exit 3
exit 0
