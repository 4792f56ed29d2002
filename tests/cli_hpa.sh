#!/bin/sh
# cli_hpa.sh -- `llmsim hpa` end to end: the replays in tests/data/hpa give
# the replica counts the Kubernetes controller gives (see the comment at
# the top of each file), malformed input exits 2 naming FILE:LINE.  Uses
# $top_builddir and $top_srcdir; exits 77 (skip) when llmsim is not built.
. "$(dirname "$0")/lib.sh"
LLMSIM="$top_builddir/llmsim"
DATA="$top_srcdir/tests/data/hpa"
[ -x "$LLMSIM" ] || skip "$LLMSIM not built"

# run WANT_STATUS ARGS... : stdout to $tmp/out, stderr to $tmp/err.
run() {
    want=$1
    shift
    "$LLMSIM" "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -eq "$want" ]; then
        ok "llmsim $* exits $want"
    else
        not_ok "llmsim $* exits $got, wanted $want"
        sed 's/^/  stderr: /' "$tmp/err"
    fi
}

# desired FILE LIST : the desiredReplicas of FILE's result, space separated.
desired() {
    tr -d ' \n' <"$1" | grep -o '"desiredReplicas":[0-9]*' | sed 's/.*://' | tr '\n' ' ' | sed 's/ $//'
}

# expect_desired FILE WANT NAME
expect_desired() {
    got=$(desired "$1")
    if [ "$got" = "$2" ]; then
        ok "$3: desiredReplicas $2"
    else
        not_ok "$3: desiredReplicas '$got', wanted '$2'"
    fi
}

# expect_in FILE TEXT NAME
expect_in() {
    if grep -F -q -- "$2" "$1"; then
        ok "$3"
    else
        not_ok "$3: '$2' not in $1"
        sed 's/^/  | /' "$1" | head -10
    fi
}

run 0 hpa --help
expect_in "$tmp/out" "llmsim hpa FILE" "help names the usage"
run 2 hpa
run 2 hpa --bogus "$DATA/cpu-scale-up.yaml"

run 0 hpa "$DATA/cpu-scale-up.yaml"
expect_desired "$tmp/out" "5 5" "TestScaleUp, then pending pods"
expect_in "$tmp/out" "cpu resource utilization (percentage of request) above target" "scale-up message"
expect_in "$tmp/out" '"utilization": 50' "utilization 50%"

run 0 hpa "$DATA/behavior-rate.yaml"
expect_desired "$tmp/out" "235" "scaleUp with pod policy and previous scale up events"
expect_in "$tmp/out" '"reason": "ScaleUpLimit"' "ScaleUpLimit reason"

run 0 hpa "$DATA/legacy-stabilization.yaml"
expect_desired "$tmp/out" "5 5 3" "TestScaleDownStabilizeInitialSize over time"
expect_in "$tmp/out" '"ableToScale": "ScaleDownStabilized"' "ScaleDownStabilized"

run 0 hpa "$DATA/missing-metrics.json"
expect_desired "$tmp/out" "3" "TestReplicaCalcMissingMetricsUnreadyChange (JSON input)"

run 0 hpa "$DATA/behavior-rate.yaml" -o "$tmp/result.json"
expect_desired "$tmp/result.json" "235" "-o writes the result"

run 2 hpa "$DATA/bad-key.yaml"
expect_in "$tmp/err" "bad-key.yaml:5: unknown key 'stabilizationWindowSecond'" "unknown key located"
run 2 hpa "$DATA/bad-minmax.yaml"
expect_in "$tmp/err" "bad-minmax.yaml:2: minReplicas: must be less than or equal to maxReplicas" "min > max located"
printf 'hpa: {maxReplicas: 3}\nobservations:\n  - {time: 0, currentReplicas: 1, pods: [{usage: 2x}]}\n' >"$tmp/q.yaml"
run 2 hpa "$tmp/q.yaml"
expect_in "$tmp/err" "q.yaml:3: usage: '2x' is not a quantity" "bad quantity located"
printf 'hpa: {maxReplicas: 3}\nobservations:\n  - {time: 5, currentReplicas: 1}\n  - {time: 1}\n' >"$tmp/t.yaml"
run 2 hpa "$tmp/t.yaml"
expect_in "$tmp/err" "t.yaml:4: time: observations must be in time order" "time order located"
run 1 hpa "$tmp/does-not-exist.yaml"

finish
