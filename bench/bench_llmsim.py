#!/usr/bin/env python3
"""llmsim speed and memory: the one-hour Azure conversation trace through
continuous batching (Llama-2-7B on A100-80GB, roofline profile), the peak
memory of a ten-times-longer generated trace against a one-hour one, and a
simulated week of the diurnal chat example at 50 requests/s with the HPA, 70%
spot and a response cache (--week).

Prints wall time and events per second (median of --repeat runs), and the
peak resident set size of each run, with the 10 h / 1 h ratio.

usage: bench/bench_llmsim.py [--llmsim PATH] [--shared DIR] [--repeat N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.join(HERE, "..", "workloads", "examples", "replay.yaml")
# A chat-like generator at the Azure conversation trace's rate (5.5 req/s)
# and token lengths, for the memory comparison.
GEN = ("{kind: poisson, rate: 5.5, duration: %s,"
       " prompt_tokens: {kind: lognormal, median: 900, sigma: 0.9, min: 16, max: 8192},"
       " output_tokens: {kind: lognormal, median: 150, sigma: 0.8, min: 1, max: 1000}}")


def run(llmsim, trace, out, extra=()):
    """Run llmsim on TRACE; return (process wall s, peak RSS KiB, summary)."""
    cmd = [llmsim, "run", SCENARIO, "-q", "--no-report", "-o", out,
           "--set", "workload.trace=" + os.path.abspath(trace)] + list(extra)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit("bench_llmsim.py: %s failed (status %d)" % (" ".join(cmd), status))
    with open(os.path.join(out, "summary.json")) as f:
        return wall, usage.ru_maxrss, json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llmsim", default=os.path.join(HERE, "..", "build", "llmsim"))
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--week", action="store_true", help="also the week at 50 req/s (a minute or two)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        azure = os.path.join(args.shared, "traces", "azure-llm-2023-conv.csv")
        if os.path.exists(azure):
            walls, sims, rss = [], [], []
            for _ in range(args.repeat):
                wall, kib, sm = run(args.llmsim, azure, os.path.join(tmp, "azure"))
                walls.append(wall)
                sims.append(sm["sim"]["wall_s"])
                rss.append(kib)
            print("Azure conversation trace, 1 h, Llama-2-7B on A100-80GB roofline, 2 replicas:")
            print("  %d requests, %d events, %d batch steps" % (sm["requests"]["arrived"], sm["sim"]["events"],
                                                              sm["sim"]["steps"]))
            print("  wall: simulation %.3f s, whole process %.3f s (median of %d; target < 1 s)"
                  % (statistics.median(sims), statistics.median(walls), args.repeat))
            print("  %.2fM events/s, peak RSS %.1f MiB"
                  % (sm["sim"]["events"] / statistics.median(sims) / 1e6, max(rss) / 1024))
        else:
            print("Azure trace not found under %s: skipping its timing" % args.shared)

        print("Memory against trace length (generated, 5.5 req/s):")
        results = {}
        for label, dur in (("1h", "1h"), ("10h", "10h")):
            path = os.path.join(tmp, "gen-%s.csv" % label)
            subprocess.run([args.llmsim, "trace", "gen", GEN % dur, "-o", path, "--seed", "1"], check=True)
            wall, kib, sm = run(args.llmsim, path, os.path.join(tmp, label))
            results[label] = kib
            print("  %-4s %7d requests  %.3f s  peak RSS %.1f MiB"
                  % (label, sm["requests"]["arrived"], wall, kib / 1024))
        print("  peak RSS ratio 10h / 1h: %.3f (target <= 1.2)" % (results["10h"] / results["1h"]))

        if args.week:
            week(args.llmsim, tmp)


def week(llmsim, tmp):
    """A week of chat-day-spot.yaml at 50 req/s mean: HPA, 70% spot, a 1-hour cache."""
    scenario = os.path.join(HERE, "..", "workloads", "examples", "chat-day-spot.yaml")
    out = os.path.join(tmp, "week")
    cmd = [llmsim, "run", scenario, "-q", "--no-report", "-o", out,
           "--set", "workload.generator.rate=50", "--set", "workload.generator.duration=7d",
           "--set", "workload.generator.repeat.fraction=0.3", "--set", "workload.generator.repeat.keys=2000",
           "--set", "cache.ttl=1h", "--set", "autoscaler.hpa.maxReplicas=150",
           "--set", "cluster.pools.spot.max_nodes=100", "--set", "cluster.pools.ondemand.max_nodes=100"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit("bench_llmsim.py: the week run failed (status %d)" % status)
    with open(os.path.join(out, "summary.json")) as f:
        sm = json.load(f)
    print("A week of chat-day-spot.yaml at 50 req/s (HPA, 70% spot, 1 h cache):")
    print("  %d requests, %d events, %d batch steps, replicas mean %.1f max %d, cache hit ratio %.2f"
          % (sm["requests"]["arrived"], sm["sim"]["events"], sm["sim"]["steps"], sm["replicas"]["mean"],
             sm["replicas"]["max"], sm["cache"]["hit_ratio"]))
    print("  wall %.1f s, CPU %.1f s, peak RSS %.1f MiB (target: under 60 s)"
          % (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024))


if __name__ == "__main__":
    main()
