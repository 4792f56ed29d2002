# lib.sh -- the prologue every shell test sources first:
#
#     . "$(dirname "$0")/lib.sh"
#
# (relative to the script, so it works from `make check` in a VPATH build,
# from a read-only `make distcheck` tree and by hand; tests/server_lib.sh
# sources it for tests/server_*.sh).
#
# It sets top_srcdir and top_builddir (exported by `make check`; by hand,
# the tree above tests/ and its build/), shared (../shared, or
# $LLMSCALE_SHARED: the real traces and models) and tmp, a fresh directory
# removed at exit.  The helpers print one line per check, "ok - WHAT" or
# "not ok - WHAT", counted in pass and fail; finish prints the summary line
# "NAME: P passed, F failed" and exits.  Exit status, as automake reads it:
# 1 when a check failed, else 77 (skipped) from skip or finish REASON,
# else 0.  POSIX sh: `make check` runs the tests with $(SHELL).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
shared=${LLMSCALE_SHARED:-$top_srcdir/../shared}
test_name=$(basename "$0" .sh)
pass=0
fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$test_name.XXXXXX") || exit 1

# at_exit: the test's own cleanup (stop the processes it started), run at
# exit before $tmp is removed.  A test that needs one redefines it after
# sourcing this file.
at_exit() { :; }
lib_exit() {
    at_exit
    rm -rf "$tmp"
}
trap lib_exit EXIT
trap 'exit 1' INT TERM

ok() { pass=$((pass + 1)); echo "ok - $1"; }
not_ok() { fail=$((fail + 1)); echo "not ok - $1"; }

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.  Its output goes
# through, unless the test sets check_log_lines=N: then it is kept in
# $tmp/log and its first N lines are shown, indented, when COMMAND fails.
check_log_lines=
check() {
    d=$1
    shift
    if [ -z "$check_log_lines" ]; then
        if "$@"; then ok "$d"; else not_ok "$d"; fi
    elif "$@" >"$tmp/log" 2>&1; then
        ok "$d"
    else
        not_ok "$d"
        sed 's/^/    /' "$tmp/log" | head -n "$check_log_lines"
    fi
}

# check_fails DESCRIPTION COMMAND...: ok when COMMAND fails (a broken input
# is refused); its output goes to $tmp/log.
check_fails() {
    d=$1
    shift
    if "$@" >"$tmp/log" 2>&1; then not_ok "$d (was accepted)"; else ok "$d"; fi
}

# expect_fail DESCRIPTION STATUSES PATTERN COMMAND...: ok when COMMAND exits
# with one of STATUSES (space-separated) and its stderr matches PATTERN
# (grep); its stdout is left in $tmp/out, its stderr in $tmp/err.
expect_fail() {
    d=$1 want=$2 pat=$3
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    for w in $want; do
        if [ "$got" -eq "$w" ] && grep -q -- "$pat" "$tmp/err"; then
            ok "$d"
            return
        fi
    done
    not_ok "$d (status $got, want $want; stderr: $(head -c 300 "$tmp/err"))"
}

# skip REASON: stop here, saying why: skipped (77), or failed (1) when a
# check before it failed.
skip() {
    echo "SKIP: $*"
    [ "$fail" -eq 0 ] || exit 1
    exit 77
}

# finish [REASON]: the summary line, then exit: 1 when a check failed, else
# skipped (77, saying REASON) when a part of the test could not run, else 0.
finish() {
    echo "$test_name: $pass passed, $fail failed"
    [ "$fail" -eq 0 ] || exit 1
    [ $# -eq 0 ] || skip "$@"
    exit 0
}
