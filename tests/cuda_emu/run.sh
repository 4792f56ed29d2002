#!/bin/sh
# Build tests/check_cuda_attention.c and tests/check_cuda_ops.c against a CPU
# emulation of kernels/cuda/{attention,flash_bf16,ops}.cu and run them.  See README.
#
#   tests/cuda_emu/run.sh [BUILD_DIR]
#
# BUILD_DIR (default build): taken from the current directory if it is there,
# else from the tree root.
#
# It must be configured and built (config.h, kernels/libkernels.a,
# common/libcommon.a); CUDA need not be configured there.  Everything generated
# goes to BUILD_DIR/cuda-emu/.  Environment: SAN (default ASan+UBSan), OPT
# (default -O1 -g), CC, CXX, PYTHON; EMU_SHUFFLE, EMU_SMS, EMU_OPTIN reach the tests.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
B=${1:-build}
case $B in
  /*) ;;
  *) [ -d "$B" ] || B=$top/$B ;;
esac
if [ ! -d "$B" ]; then
  echo "run.sh: no build directory $B" >&2
  exit 2
fi
B=$(cd "$B" && pwd)
for f in config.h kernels/libkernels.a common/libcommon.a; do
  if [ ! -f "$B/$f" ]; then
    echo "run.sh: $B/$f is missing (configure and build $B first)" >&2
    exit 2
  fi
done

SAN="${SAN--fsanitize=address,undefined -fno-sanitize-recover=undefined}"
OPT="${OPT--O1 -g}"
CC=${CC:-gcc}
CXX=${CXX:-g++}
PYTHON=${PYTHON:-python3}

# check's flags as configure found them, else what works on a usual Linux
mkvar() { sed -n "s/^$1 = //p" "$B/Makefile" 2>/dev/null | head -n 1; }
CHECK_CFLAGS=$(mkvar CHECK_CFLAGS) || CHECK_CFLAGS=
CHECK_LIBS=$(mkvar CHECK_LIBS) || CHECK_LIBS=
OPENMP_CFLAGS=$(mkvar OPENMP_CFLAGS) || OPENMP_CFLAGS=
[ -n "$CHECK_LIBS" ] || CHECK_LIBS="-lcheck_pic -lsubunit -lrt -lm"
[ -n "$OPENMP_CFLAGS" ] || OPENMP_CFLAGS=-fopenmp

W=$B/cuda-emu
mkdir -p "$W"

for f in attention flash_bf16 ops; do
  "$PYTHON" "$here/prep.py" "$top/kernels/cuda/$f.cu" > "$W/$f.cpp"
done
cp "$here/emu.cpp" "$W/emu.cpp"

CXXFLAGS="-std=c++17 $OPT $SAN -ffp-contract=off -fno-omit-frame-pointer -I$here/include -I$top -I$B -w"
echo "run.sh: compiling the emulated kernels in $W"
# two compiles at a time
pids=
for f in emu attention; do $CXX $CXXFLAGS -c "$W/$f.cpp" -o "$W/$f.o" & pids="$pids $!"; done
fail=0
for p in $pids; do wait "$p" || fail=1; done
pids=
for f in flash_bf16 ops; do $CXX $CXXFLAGS -c "$W/$f.cpp" -o "$W/$f.o" & pids="$pids $!"; done
for p in $pids; do wait "$p" || fail=1; done
[ $fail = 0 ] || { echo "run.sh: compiling failed" >&2; exit 1; }

for t in check_cuda_attention check_cuda_ops; do
  $CC -std=c11 -D_GNU_SOURCE $OPT $SAN $CHECK_CFLAGS -I"$top" -I"$B" -c "$top/tests/$t.c" -o "$W/$t.o"
  $CXX $SAN -o "$W/$t" "$W/$t.o" "$W/emu.o" "$W/attention.o" "$W/flash_bf16.o" "$W/ops.o" \
    "$B/kernels/libkernels.a" "$B/common/libcommon.a" $OPENMP_CFLAGS $CHECK_LIBS -lm
done

status=0
for t in check_cuda_attention check_cuda_ops; do
  echo "run.sh: $t (emulated)"
  start=$(date +%s)
  if "$W/$t"; then r=0; else r=$?; fi
  end=$(date +%s)
  if [ $r = 0 ]; then
    echo "run.sh: PASS $t ($((end - start)) s)"
  else
    echo "run.sh: FAIL $t (exit $r, $((end - start)) s)"
    status=1
  fi
done
exit $status
