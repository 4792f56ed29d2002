#!/bin/sh
# cli_tune.sh -- llmsim tune from the command line: the example tunes to a
# cheaper scenario that meets its SLO, the outputs and the report exist,
# best.yaml runs, shards merged through the CLI equal one run, bad input
# exits 2 naming the file, line and key, and the manifests are valid against
# the Kubernetes API schema and KEDA's ScaledObject schema
# (tests/tune_validate.py; that part skips, exit 77 at the end, when its
# Python modules are missing).
# Run by `make check` (top_srcdir, top_builddir, PYTHON3 exported).
. "$(dirname "$0")/lib.sh"
llmsim=$top_builddir/llmsim
data=$top_srcdir/tests/data/tune
example=$top_srcdir/workloads/examples/tune-chat.yaml
py=${PYTHON3:-python3}
skip_validation=no

# csv_field FILE ROW_LABEL COLUMN_NAME: the field of the row whose first
# column is ROW_LABEL (no quoted commas in the columns asked for).
csv_field() {
    awk -F, -v row="$2" -v col="$3" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 == row && c { print $c; exit }' "$1"
}

# --- help and usage -----------------------------------------------------------------
check "llmsim --help lists tune" sh -c "'$llmsim' --help | grep -q 'tune '"
check "llmsim tune --help" sh -c "'$llmsim' tune --help | grep -q -- '--shard I/N'"
expect_fail "tune without a scenario exits 2" 2 "usage" "$llmsim" tune
expect_fail "bad --jobs exits 2" 2 "jobs" "$llmsim" tune "$example" -j 0
expect_fail "bad --shard exits 2" 2 "shard" "$llmsim" tune "$example" --shard 4/4
expect_fail "--merge without directories exits 2" 2 "shard directories" "$llmsim" tune --merge

# --- bad input names the file, the line and the key --------------------------------------
sed 's/key: autoscaler.hpa.minReplicas/key: autoscaler.hpa.minReplica/' "$data/small.yaml" >"$tmp/typo.yaml"
expect_fail "a typo'd key fails before running, naming file, line and key" 2 \
    "typo.yaml:[0-9]*: tune.space\[1\].key: 'autoscaler.hpa.minReplica' is not in the scenario" \
    "$llmsim" tune "$tmp/typo.yaml" -o "$tmp/x"
sed 's/range: \[1, 3\]/range: [1, 9]/' "$data/small.yaml" >"$tmp/badvalue.yaml"
expect_fail "a value the scenario refuses names the knob and the value" 2 "tune.space\[1\]: value 4" \
    "$llmsim" tune "$tmp/badvalue.yaml" -o "$tmp/x"
expect_fail "a typo'd key given with --set is named" 2 "tune.space\[0\].key: 'cache.ttl' is not in the scenario" \
    "$llmsim" tune "$data/small.yaml" --set 'tune.space[0].key=cache.ttl' -o "$tmp/x"
expect_fail "a scenario without tune: exits 2" 2 "no 'tune' section" \
    "$llmsim" tune "$top_srcdir/workloads/examples/replay.yaml" -o "$tmp/x"

# --- the example: cheaper than the scenario as written, meeting the SLO --------------------
out=$tmp/tune-chat
if "$llmsim" tune "$example" -o "$out" -j 2 >"$tmp/stdout" 2>"$tmp/stderr"; then
    ok "tune the example"
else
    not_ok "tune the example ($(head -c 300 "$tmp/stderr"))"
fi
for f in trials.csv pareto.csv sensitivity.csv best.yaml report.html chart_tune_pareto.png \
         chart_tune_knob_1.png manifests/hpa.yaml manifests/deployment-patch.yaml; do
    if [ "$f" != "${f%.png}" ] && ! command -v "${GNUPLOT:-gnuplot}" >/dev/null 2>&1; then
        continue # no gnuplot: the page has no charts
    fi
    check "writes $f" test -s "$out/$f"
done
best=$(sed -n 's/.*: candidate \([0-9]*\).*/\1/p' "$out/best.yaml" | head -1)
base_cost=$(csv_field "$out/trials.csv" baseline cost_usd)
best_cost=$(csv_field "$out/trials.csv" "$best" cost_usd)
best_ok=$(csv_field "$out/trials.csv" "$best" feasible)
best_att=$(csv_field "$out/trials.csv" "$best" slo_attainment)
check "the winner meets the constraints" test "$best_ok" = yes
check "the winner meets the SLO target (0.99): $best_att" awk "BEGIN { exit !($best_att >= 0.99) }"
check "the winner ($best_cost USD) is cheaper than the scenario as written ($base_cost USD)" \
    awk "BEGIN { exit !($best_cost < $base_cost) }"
check "the report shows baseline and best" sh -c "grep -q 'baseline (the scenario as written)' '$out/report.html' && grep -q '<th>best</th>' '$out/report.html'"
check "the sensitivity table has rows" test "$(wc -l <"$out/sensitivity.csv")" -gt 2
check "stdout names the winner's values" grep -q "autoscaler.hpa.minReplicas: " "$tmp/stdout"
check "best.yaml runs as a scenario" sh -c "'$llmsim' run '$out/best.yaml' -o '$tmp/best-run' --no-report -q"
check "best.yaml holds the tuned values" grep -q "averageValue: \"\\{0,1\\}$(sed -n 's/^#   autoscaler.hpa.metrics\[0\].pods.target.averageValue: \([0-9]*\) .*/\1/p' "$out/best.yaml")" "$out/best.yaml"

minr=$(sed -n 's/^#   autoscaler.hpa.minReplicas: \([0-9]*\) .*/\1/p' "$out/best.yaml")
avg=$(sed -n 's/^#   autoscaler.hpa.metrics\[0\].pods.target.averageValue: \([0-9]*\) .*/\1/p' "$out/best.yaml")
check "the HPA manifest carries the winner's minReplicas ($minr) and target ($avg)" sh -c \
    "grep -q '^  minReplicas: $minr\$' '$out/manifests/hpa.yaml' && grep -q 'averageValue: \"$avg\"' '$out/manifests/hpa.yaml'"

# --- shards through the CLI, merged ----------------------------------------------------
for i in 0 1 2 3; do
    "$llmsim" tune "$example" --shard "$i/4" -o "$tmp/shards/$i" -q || not_ok "shard $i/4"
done
if "$llmsim" tune --merge -o "$tmp/merged" -q --no-report "$tmp/shards/0" "$tmp/shards/1" "$tmp/shards/2" "$tmp/shards/3"; then
    ok "merge four shards"
else
    not_ok "merge four shards"
fi
check "merged trials.csv equals one run's" cmp "$out/trials.csv" "$tmp/merged/trials.csv"
check "merged best.yaml equals one run's" cmp "$out/best.yaml" "$tmp/merged/best.yaml"
expect_fail "a merge with a shard missing exits 2" 2 "shard 3 of 4 is missing" \
    "$llmsim" tune --merge -o "$tmp/m2" "$tmp/shards/0" "$tmp/shards/1" "$tmp/shards/2"

# --- KEDA, cache and spot: the manifests ------------------------------------------------
kout=$tmp/keda
check "tune a KEDA scenario with a cache and spot" "$llmsim" tune "$data/keda-cache.yaml" -o "$kout" -q --no-report
check "a KEDA ScaledObject with the cron trigger" sh -c "grep -q 'kind: ScaledObject' '$kout/manifests/scaledobject.yaml' && grep -q 'type: cron' '$kout/manifests/scaledobject.yaml'"
check "no HPA beside KEDA's" test ! -e "$kout/manifests/hpa.yaml"
check "the cache TTL in the Deployment patch" grep -q LLMSERVE_CACHE_TTL "$kout/manifests/deployment-patch.yaml"
check "spot affinity for the AWS pool" grep -q "karpenter.sh/capacity-type" "$kout/manifests/deployment-patch.yaml"
"$py" "$top_srcdir/tests/tune_validate.py" "$out/manifests/"*.yaml "$kout/manifests/"*.yaml >"$tmp/v.out" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
    skip_validation=yes
    echo "# skip: manifest validation: $(cat "$tmp/v.out")"
elif [ $rc -eq 0 ]; then
    ok "manifests valid against the Kubernetes API and KEDA schemas ($(grep -c valid "$tmp/v.out") documents)"
else
    not_ok "manifests valid ($(cat "$tmp/v.out"))"
fi
if [ $skip_validation = no ]; then
    # The validator itself refuses a broken manifest.
    sed 's/minReplicas: /minReplicas: x/' "$out/manifests/hpa.yaml" >"$tmp/bad-hpa.yaml"
    sed 's/cooldownPeriod:/cooldownPerod:/' "$kout/manifests/scaledobject.yaml" >"$tmp/bad-so.yaml"
    check "the validator refuses a bad HPA" sh -c "! '$py' '$top_srcdir/tests/tune_validate.py' '$tmp/bad-hpa.yaml' 2>/dev/null >&2"
    check "the validator refuses a misspelt ScaledObject field" sh -c "! '$py' '$top_srcdir/tests/tune_validate.py' '$tmp/bad-so.yaml' 2>/dev/null >&2"
fi

# --- the sweep as an Indexed Job ----------------------------------------------------
if [ $skip_validation = no ] && [ -r "$top_srcdir/tests/k8s_validate.sh" ]; then
    check "deploy/sim-sweep-job.yaml is valid against the Kubernetes API" \
        sh "$top_srcdir/tests/k8s_validate.sh" "$top_srcdir/deploy/sim-sweep-job.yaml"
fi
check "the sweep Job is Indexed and shards by JOB_COMPLETION_INDEX" sh -c \
    "grep -q 'completionMode: Indexed' '$top_srcdir/deploy/sim-sweep-job.yaml' && grep -q -- '--shard \"\${JOB_COMPLETION_INDEX}/8\"' '$top_srcdir/deploy/sim-sweep-job.yaml'"

[ $skip_validation = no ] || finish "manifest validation (tests/tune_validate.py's Python modules)"
finish
