#!/bin/sh
# fidelity.sh -- does llmsim predict what the real server does?
#
#   bench/fidelity.sh [BUILD_DIR]          (default build/; run from the repository root)
#
# 1. one trace (Poisson arrivals, lognormal prompt and output lengths) is
#    generated with `llmsim trace gen`;
# 2. `llmserve serve` runs the same model; a burst of requests measures its
#    capacity (completed requests per second while saturated);
# 3. at 50%, 80% and 95% of that capacity (the trace's times scaled), llmload
#    replays the trace against the server (open loop, streaming); just
#    before, `llmbench profile` measures the forward step (synthetic model: no
#    download) and a burst of pure decode the engine's cost per sequence
#    beyond it (added to make the "fitted" profile); and
#    `llmsim validate` simulates the same trace with the raw and the fitted
#    profile and compares TTFT and end-to-end latency at p50 and p90 (target:
#    within 15%).
# Writes OUT/table.md (and per level: results.json, the per-request CSV, the
# scenario, the profiles and validate-*.json) and prints the table.  Takes about 7 minutes.
#
# Environment: FIDELITY_OUT (default out/fidelity), FIDELITY_MODEL (default
# a 5M-parameter synthetic Llama with a 1024-token context), FIDELITY_THREADS
# (kernel threads for server and profile, default 1), FIDELITY_REQUESTS
# (requests per load level, default 300), FIDELITY_LEVELS (default
# "0.5 0.8 0.95"), FIDELITY_NICE (the niceness of the measured processes
# when run as root, default -15; 0 leaves it), LLMSCALE_SHARED (for tokenizer.bin, default ../shared).
set -eu

build=${1:-build}
out=${FIDELITY_OUT:-out/fidelity}
model=${FIDELITY_MODEL:-synthetic:dim=256,layers=6,heads=4,kv_heads=4,hidden=768,vocab=512,seq=1024}
threads=${FIDELITY_THREADS:-1}
nreq=${FIDELITY_REQUESTS:-300}
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
$prio "$build/llmserve" serve --model "$model" --tokenizer "$tokenizer" --chat-template raw --threads "$threads" \
    --max-batch "$max_batch" --max-queue 100000 --max-connections 4096 --cache off --port 0 \
    --no-request-log >"$out/server.out" 2>"$out/server.err" &
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

# Capacity: the first 200 requests of the trace sent at once; the server
# works at full batch, and completed requests per second is its capacity.
echo "fidelity: measuring capacity"
$prio "$build/llmload" --url "$url" --trace "$out/trace.csv" --time-scale 0.0001 --max-requests 200 --stream \
    -o "$out/capacity.json" -q 2>"$out/capacity.err"
cap=$(num "$out/capacity.json" "d['throughput']['requests_per_s']")
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

# profile_here DIR: measure the service-time profile now, into DIR/profile.json
# ("raw"), and DIR/profile-fitted.json.  The machine this runs on may be
# shared: its speed drifts by tens of percent within minutes, so each load
# level gets its own profile measured just before it.
#
# The profile times llmbench's forward pass alone; the server's engine step
# also does work per sequence outside it (sampling, detokenising, handing the
# token to the HTTP thread that streams it).  That cost is fitted on a
# different workload than the one validated -- 64 requests of 16 prompt and
# 96 output tokens at once, decode at full batch -- as the gap between the
# measured TPOT p50 and the one llmsim predicts for that burst with the raw
# profile, per sequence of the batch; the "fitted" profile adds it to every
# decode step (batch x per-sequence cost).
profile_here() {
    $prio "$build/llmbench" profile --model "$model" --threads "$threads" --max-batch "$max_batch" \
        --max-prefill 512 --repeat 9 -o "$1/profile.json" >"$1/profile.log" 2>&1
    $prio "$build/llmload" --url "$url" --trace "$out/decode-trace.csv" --stream -o "$1/decode.json" -q \
        2>"$1/decode.err"
    scenario decode "$out/decode-trace.csv" 1 64 "$1/profile.json" >"$1/decode.yaml"
    "$build/llmsim" validate --scenario "$1/decode.yaml" --measured "$1/decode.json" \
        --json "$1/decode-validate.json" >"$1/decode-validate.txt" || true
    per_seq=$(num "$1/decode-validate.json" \
        "max(0.0, (d['figures']['tpot.p50']['measured'] - d['figures']['tpot.p50']['simulated']) / $max_batch)")
    "$py" - "$1/profile.json" "$per_seq" "$1/profile-fitted.json" <<'PY'
import json, sys
p, o = json.load(open(sys.argv[1])), float(sys.argv[2])
p["decode"]["time_s"] = [[t + b * o for t in row] for b, row in zip(p["decode"]["batch"], p["decode"]["time_s"])]
p["name"] += " + %.3f ms per sequence per step (fitted to llmserve)" % (o * 1e3)
json.dump(p, open(sys.argv[3], "w"), indent=1)
PY
    per_seq_ms=$("$py" -c "print('%.3f' % ($per_seq * 1e3))")
}
"$py" -c "
print('arrival_s,prompt_tokens,output_tokens,prompt_hash,tenant')
for i in range(64): print('0.0,16,96,,')" >"$out/decode-trace.csv"

table=$out/table.md
{
    echo "| load | rate req/s | profile | TTFT p50 meas / sim | err | TTFT p90 meas / sim | err | E2E p50 meas / sim | err | E2E p90 meas / sim | err |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$table"
for level in $levels; do
    ts=$("$py" -c "print(1.0 / ($level * $cap))")
    rate=$("$py" -c "print('%.2f' % ($level * $cap))")
    dir=$out/load-$level
    mkdir -p "$dir"
    profile_here "$dir"
    echo "fidelity: $level of capacity ($rate requests/s, $nreq requests); engine cost beyond the forward pass: $per_seq_ms ms per sequence per step"
    $prio "$build/llmload" --url "$url" --trace "$out/trace.csv" --time-scale "$ts" --max-requests "$nreq" --stream \
        -o "$dir/results.json" -q 2>"$dir/llmload.err"
    for prof in profile profile-fitted; do
        scenario "$level" "$out/trace.csv" "$ts" "$nreq" "$dir/$prof.json" >"$dir/scenario-$prof.yaml"
        "$build/llmsim" validate --scenario "$dir/scenario-$prof.yaml" --measured "$dir/results.json" \
            --json "$dir/validate-$prof.json" >"$dir/validate-$prof.txt" || true
        cat "$dir/validate-$prof.txt"
        extra=""
        [ "$prof" = profile-fitted ] && extra=" (+$per_seq_ms ms/seq)"
        "$py" - "$dir/validate-$prof.json" "$level" "$rate" "$prof" "$extra" >>"$table" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["figures"]
cells = []
for k in ("ttft.p50", "ttft.p90", "e2e.p50", "e2e.p90"):
    v = f[k]
    err = "n/a" if v["error"] is None else "%+.0f%%" % (100 * v["error"])
    cells += ["%.0f / %.0f ms" % (1e3 * v["measured"], 1e3 * v["simulated"]), err]
what = "raw" if sys.argv[4] == "profile" else "fitted"
print("| %d%% | %s | %s | %s |" % (round(100 * float(sys.argv[2])), sys.argv[3], what + sys.argv[5], " | ".join(cells)))
PY
    done
done
echo
echo "fidelity: capacity $cap requests/s ($model, $threads thread(s)); $nreq requests per level;"
echo "fidelity: profile raw (llmbench profile, measured before each level) and fitted (+ the engine's cost per sequence per step, from a decode burst before each level)"
cat "$table"
