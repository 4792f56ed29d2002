#!/usr/bin/env python3
"""M/M/c in SimPy against llmsim: the same model, timed in one run.

Both simulate Poisson arrivals at RATE/s, C servers with exponential service of
mean 1 s and one FIFO queue, for DURATION hours, and report the mean queue wait
(which both must put near Erlang C).  The ratio printed is SimPy's wall time
over llmsim's, each measured around the whole simulation (llmsim: the process,
including start-up and writing its results).

usage: bench/mmc_simpy.py [--llmsim PATH] [--hours H] [--servers C] [--rho R]
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

try:
    import simpy
except ImportError:
    sys.exit("mmc_simpy.py: SimPy is not installed (pip install simpy)")


def erlang_c_wq(c, rho):
    a = rho * c
    term, total = 1.0, 0.0
    for k in range(c):
        total += term
        term *= a / (k + 1)
    top = term / (1.0 - rho)
    return top / (total + top) / (c - a)


def simpy_mmc(rate, c, hours, seed):
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    rng = random.Random(seed)
    waits = [0.0, 0]
    end = hours * 3600.0

    def customer(env):
        arrived = env.now
        with servers.request() as req:
            yield req
            waits[0] += env.now - arrived
            waits[1] += 1
            yield env.timeout(rng.expovariate(1.0))

    def source(env):
        while True:
            yield env.timeout(rng.expovariate(rate))
            if env.now > end:
                return
            env.process(customer(env))

    env.process(source(env))
    env.run()
    return waits[0] / waits[1], waits[1]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llmsim", default=os.path.join(here, "..", "build", "llmsim"))
    ap.add_argument("--hours", type=float, default=48.0)
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--rho", type=float, default=0.8)
    args = ap.parse_args()
    rate = args.rho * args.servers
    scenario = os.path.join(here, "..", "workloads", "examples", "mmc.yaml")

    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run([args.llmsim, "run", scenario, "-q", "--no-report", "-o", out,
                        "--set", "cluster.replicas=%d" % args.servers,
                        "--set", "workload.generator.rate=%r" % rate,
                        "--set", "workload.generator.duration=%rh" % args.hours],
                       check=True)
        t_llmsim = time.perf_counter() - t0
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
    t0 = time.perf_counter()
    wq_simpy, n_simpy = simpy_mmc(rate, args.servers, args.hours, 1)
    t_simpy = time.perf_counter() - t0

    wq = erlang_c_wq(args.servers, args.rho)
    wq_llmsim = summary["latency_s"]["queue"]["mean"]
    n_llmsim = summary["requests"]["completed"]
    print("M/M/%d, rho %.2f, %.0f h simulated (Erlang C: Wq = %.4f s)" % (args.servers, args.rho, args.hours, wq))
    print("  %-7s %10s %10s %9s %10s" % ("", "requests", "Wq (s)", "vs ErlC", "wall (s)"))
    print("  %-7s %10d %10.4f %+8.2f%% %10.3f" % ("llmsim", n_llmsim, wq_llmsim, 100 * (wq_llmsim - wq) / wq, t_llmsim))
    print("  %-7s %10d %10.4f %+8.2f%% %10.3f" % ("simpy", n_simpy, wq_simpy, 100 * (wq_simpy - wq) / wq, t_simpy))
    print("speed-up llmsim / SimPy: %.1fx (SimPy %s, Python %s)" % (t_simpy / t_llmsim, simpy.__version__,
                                                                  sys.version.split()[0]))


if __name__ == "__main__":
    main()
