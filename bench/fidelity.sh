#!/bin/sh
# fidelity.sh -- does llmsim predict what the real server does?
#
#   bench/fidelity.sh [BUILD_DIR]          (default build/; run from the repository root)
#
# 1. one trace (Poisson arrivals, lognormal prompt and output lengths) is
#    generated with `llmsim trace gen`;
# 2. `llmserve serve` runs the same model; a burst of requests measures its
#    capacity (completed requests per second while saturated), again just
#    before each level;
# 3. at 50%, 80% and 95% of that capacity (the trace's times scaled), llmload
#    replays the trace against the server (open loop, streaming); just
#    before, `llmbench profile` measures the engine's step (synthetic model:
#    no download), and replays of two other traces at the same rate, one
#    just before the level and one just after, calibrate it (`llmbench
#    calibrate` on the steps the server logs); and
#    `llmsim validate` simulates the same trace with the raw and the
#    calibrated profile and compares TTFT and end-to-end latency at p50 and
#    p90 (target: within 15%).
# Writes OUT/table.md (and per level: results.json, the per-request CSV, the
# scenario, the profiles, the calibration and validate-*.json; steps.csv, every
# step the server ran) and prints the table.  Takes about 10 minutes.
#
# Environment: FIDELITY_OUT (default out/fidelity), FIDELITY_MODEL (default
# a 5M-parameter synthetic Llama with a 1024-token context), FIDELITY_THREADS
# (kernel threads for server and profile, default 1), FIDELITY_PIN (1: pin
# llmload to CPU 0 and the server and profile to the last CPU; 0: no), FIDELITY_REQUESTS
# (requests per load level, default 300), FIDELITY_CALIB_REQUESTS (requests per
# calibration replay, default 200), FIDELITY_LEVELS (default
# "0.5 0.8 0.95"), FIDELITY_NICE (the niceness of the measured processes
# when run as root, default -15; 0 leaves it), LLMSCALE_SHARED (for tokenizer.bin, default ../shared).
set -eu

build=${1:-build}
out=${FIDELITY_OUT:-out/fidelity}
model=${FIDELITY_MODEL:-synthetic:dim=256,layers=6,heads=4,kv_heads=4,hidden=768,vocab=512,seq=1024}
threads=${FIDELITY_THREADS:-1}
nreq=${FIDELITY_REQUESTS:-300}
ncal=${FIDELITY_CALIB_REQUESTS:-200}
levels=${FIDELITY_LEVELS:-0.5 0.8 0.95}
shared=${LLMSCALE_SHARED:-../shared}
tokenizer=$shared/models/tokenizer.bin
max_batch=16
prefill_chunk=256 # llmserve's engine default (server/engine.h)
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
# The profile, the server and llmload run at a raised priority when allowed
# (root): on a machine shared with other work, both the profile and the
# server would otherwise measure whatever share of a core they were left.
prio=""
if [ "$(id -u)" -eq 0 ] && [ "${FIDELITY_NICE:--15}" != 0 ]; then
    prio="nice -n ${FIDELITY_NICE:--15}"
fi

# Pinning: on a small machine the load generator, the server's HTTP threads
# and its engine share the cores, and the engine's steps slow by whatever
# the others take from its core -- by tens of percent on 2 cores, varying
# with the load (the steps in steps.csv show it).  With FIDELITY_PIN=1 (the
# default when taskset exists and there are at least 2 CPUs) the engine
# alone runs on the last CPU (`llmserve --engine-cpus`), as the profile
# does, and llmload and the server's HTTP threads on the others, as a
# client on another machine and a node's spare cores would.
pin_srv="" pin_load="" pin_engine=""
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
if [ "${FIDELITY_PIN:-1}" = 1 ] && [ "$ncpu" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    pin_srv="taskset -c $((ncpu - 1))"
    pin_load="taskset -c 0-$((ncpu - 2))"
    pin_engine="--engine-cpus $((ncpu - 1))"
fi
prio_srv="$prio $pin_srv"
prio_load="$prio $pin_load"

for p in llmserve llmload llmsim llmbench; do
    [ -x "$build/$p" ] || { echo "fidelity: $build/$p not built" >&2; exit 1; }
done
[ -r "$tokenizer" ] || { echo "fidelity: $tokenizer missing (set LLMSCALE_SHARED)" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 1' INT TERM
# num FILE EXPR: a number from a JSON file (d is the document).
num() { "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

echo "fidelity: generating the trace"
"$build/llmsim" trace gen "{kind: poisson, rate: 1, duration: $((nreq * 3 / 2))s,
    prompt_tokens: {kind: lognormal, median: 96, sigma: 0.6, min: 16, max: 512},
    output_tokens: {kind: lognormal, median: 48, sigma: 0.5, min: 8, max: 256}}" \
    --seed 7 -o "$out/trace.csv" 2>/dev/null

echo "fidelity: starting llmserve"
$prio "$build/llmserve" serve --model "$model" --tokenizer "$tokenizer" --chat-template raw --threads "$threads" $pin_engine \
    --max-batch "$max_batch" --max-queue 100000 --max-connections 4096 --cache off --port 0 \
    --no-request-log --step-log "$out/steps.csv" >"$out/server.out" 2>"$out/server.err" &
server_pid=$!
port=""
i=0
while [ $i -lt 300 ]; do
    port=$(sed -n 's/^llmserve: listening on http:\/\/[0-9.]*:\([0-9]*\)$/\1/p' "$out/server.out" 2>/dev/null || true)
    [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { echo "fidelity: llmserve did not start" >&2; cat "$out/server.err" >&2; exit 1; }
url=http://127.0.0.1:$port

# capacity DIR: the first 200 requests of the trace sent at once; the
# server works at full batch, and completed requests per second is its
# capacity (into $cap).  Measured again before each level: the same burst
# measured 13.4 to 20.1 requests/s in runs minutes apart, and a level set
# from a fast minute's capacity was past the server's capacity in a slow one.
capacity() {
    $prio_load "$build/llmload" --url "$url" --trace "$out/trace.csv" --time-scale 0.0001 --max-requests 200 \
        --stream -o "$1/capacity.json" -q 2>"$1/capacity.err"
    cap=$(num "$1/capacity.json" "d['throughput']['requests_per_s']")
}
echo "fidelity: measuring capacity"
capacity "$out"
cap0=$cap
echo "fidelity: capacity $cap requests/s"

# The scenario llmsim simulates: one replica with the server's batching, the
# measured profile, the same trace at the same scale.
scenario() { # NAME TRACE TIME_SCALE LIMIT PROFILE
    cat <<EOF
name: fidelity-$1
seed: 1
workload: {trace: $2, format: native, time_scale: $3, limit: $4}
service: {profile: $5}
cluster:
  replicas: 1
  replica:
    max_num_seqs: $max_batch
    max_batched_tokens: $((prefill_chunk + max_batch))
    chunked_prefill: true
    max_concurrency: 0
gateway: {queue_capacity: -1, queue_timeout: 0}
output: {interval: 1m}
EOF
}

# profile_here DIR RATE: measure the service-time profile now, into
# DIR/profile.json ("raw"), and log the server's steps on a calibration
# trace (DIR/calib-steps.csv); calibrate_after DIR RATE, once the level is
# measured, logs a second calibration trace (DIR/calib-after-steps.csv) and
# calibrates the profile on both into DIR/profile-calibrated.json.
# The machine this runs on may be shared: its speed drifts by tens of percent
# within minutes, so each load level gets its own profile measured just
# before it.
#
# `llmbench profile` times the engine's step (forward pass and sampling) in a
# quiet loop; in the server the same step shares the machine with the HTTP
# threads and the client.  The calibration measures that: a different trace
# (another seed) is replayed at the level's rate ($ncal requests), the steps the
# server logs meanwhile (--step-log) are held against the profile's
# predictions, and `llmbench calibrate` scales the profile by the measured
# factors (per decode batch, and prefill).  The validated trace is never
# seen by the calibration.  The machine's speed drifts by 5-10% within a
# minute (the step factors of one calibration against those of the level's
# own steps, seen afterwards), so the calibration brackets the measured
# replay: one trace just before it, another just after.
# calib_replay DIR RATE TRACE STEPS: replay $ncal requests of TRACE, the
# server's steps meanwhile into STEPS (with the header), less those of the
# first 4 and the last 2 seconds: while a replay fills the server up and
# drains it, its steps run faster for their batch than in the steady state
# the measured level lives in (the 80% level of a run at 17:21: TTFT p90
# -24% calibrated on whole replays, -2% on their steady middles).
calib_replay() {
    n0=$(wc -l <"$out/steps.csv")
    $prio_load "$build/llmload" --url "$url" --trace "$3" --time-scale "$2" --max-requests "$ncal" \
        --stream -o "$4.json" -q 2>"$4.err"
    n1=$(wc -l <"$out/steps.csv")
    sed -n "1p;$((n0 + 1)),${n1}p" "$out/steps.csv" | awk -F, '
        NR == 1 { print; next }
        { t[NR] = $1; l[NR] = $0 }
        END { for (i = 2; i <= NR; i++) if (t[i] >= t[2] + 4 && t[i] <= t[NR] - 2) print l[i] }' >"$4"
}
profile_here() {
    $prio_srv "$build/llmbench" profile --model "$model" --threads "$threads" --max-batch "$max_batch" \
        --max-prefill 512 --repeat 21 -o "$1/profile.json" >"$1/profile.log" 2>&1
    calib_replay "$1" "$2" "$out/calib-trace.csv" "$1/calib-steps.csv"
}
calibrate_after() {
    calib_replay "$1" "$2" "$out/calib-trace-after.csv" "$1/calib-after-steps.csv"
    { cat "$1/calib-steps.csv"; sed 1d "$1/calib-after-steps.csv"; } >"$1/calib-both-steps.csv"
    "$build/llmbench" calibrate --profile "$1/profile.json" --steps "$1/calib-both-steps.csv" \
        -o "$1/profile-calibrated.json" >"$1/calibrate.txt"
    factors=$(sed -n 's/^factors: //p' "$1/calibrate.txt")
}
"$build/llmsim" trace gen "{kind: poisson, rate: 1, duration: $((ncal * 3 / 2))s,
    prompt_tokens: {kind: lognormal, median: 96, sigma: 0.6, min: 16, max: 512},
    output_tokens: {kind: lognormal, median: 48, sigma: 0.5, min: 8, max: 256}}" \
    --seed 8 -o "$out/calib-trace.csv" 2>/dev/null
"$build/llmsim" trace gen "{kind: poisson, rate: 1, duration: $((ncal * 3 / 2))s,
    prompt_tokens: {kind: lognormal, median: 96, sigma: 0.6, min: 16, max: 512},
    output_tokens: {kind: lognormal, median: 48, sigma: 0.5, min: 8, max: 256}}" \
    --seed 9 -o "$out/calib-trace-after.csv" 2>/dev/null

table=$out/table.md
{
    echo "| load | rate req/s | profile | TTFT p50 meas / sim | err | TTFT p90 meas / sim | err | E2E p50 meas / sim | err | E2E p90 meas / sim | err |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$table"
for level in $levels; do
    dir=$out/load-$level
    mkdir -p "$dir"
    capacity "$dir"
    ts=$("$py" -c "print(1.0 / ($level * $cap))")
    rate=$("$py" -c "print('%.2f' % ($level * $cap))")
    profile_here "$dir" "$ts"
    $prio_load "$build/llmload" --url "$url" --trace "$out/trace.csv" --time-scale "$ts" --max-requests "$nreq" --stream \
        -o "$dir/results.json" -q 2>"$dir/llmload.err"
    calibrate_after "$dir" "$ts"
    echo "fidelity: $level of capacity $cap requests/s ($rate requests/s, $nreq requests); calibration factors: $factors"
    for prof in profile profile-calibrated; do
        scenario "$level" "$out/trace.csv" "$ts" "$nreq" "$dir/$prof.json" >"$dir/scenario-$prof.yaml"
        "$build/llmsim" validate --scenario "$dir/scenario-$prof.yaml" --measured "$dir/results.json" \
            --json "$dir/validate-$prof.json" >"$dir/validate-$prof.txt" || true
        cat "$dir/validate-$prof.txt"
        extra=""
        "$py" - "$dir/validate-$prof.json" "$level" "$rate" "$prof" "$extra" >>"$table" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["figures"]
cells = []
for k in ("ttft.p50", "ttft.p90", "e2e.p50", "e2e.p90"):
    v = f[k]
    err = "n/a" if v["error"] is None else "%+.0f%%" % (100 * v["error"])
    cells += ["%.0f / %.0f ms" % (1e3 * v["measured"], 1e3 * v["simulated"]), err]
what = "raw" if sys.argv[4] == "profile" else "calibrated"
print("| %d%% | %s | %s | %s |" % (round(100 * float(sys.argv[2])), sys.argv[3], what + sys.argv[5], " | ".join(cells)))
PY
    done
done
echo
echo "fidelity: capacity $cap0 requests/s at the start, measured again before each level ($model, $threads thread(s)); $nreq requests per level;"
echo "fidelity: profile raw (llmbench profile, measured before each level) and calibrated (llmbench calibrate on the steps the server logged replaying two other traces at the same rate, just before and just after the level)"
cat "$table"
