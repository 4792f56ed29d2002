"""bench_server.py -- llmserve at and beyond its engine's capacity.

Usage: bench_server.py URL CLIENTS SECONDS LOGFILE

1. Baseline: CLIENTS closed-loop clients (fewer than max_batch + max_queue,
   so all are admitted) for SECONDS: the throughput X and the latencies.
2. Overload: open-loop arrivals (Poisson) at 10 X for SECONDS.  Excess
   requests must be refused (429) fast, and admitted ones keep their latency.
Every request is the same completion (ignore_eos: the same work each).
Latencies are given as the client saw them and as the server logged them
(LOGFILE: the server's --log-format json request log, total_ms), since the
Python clients share the machine's cores with the server.
"""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse

url, clients, seconds, logfile = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
u = urllib.parse.urlparse(url)
BODY = json.dumps({"prompt": "Once upon a time", "max_tokens": 32, "ignore_eos": True, "temperature": 0.7})


def one(conn, out):
    t0 = time.monotonic()
    try:
        conn.request("POST", "/v1/completions", BODY, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        out.append((r.status, time.monotonic() - t0))
        return True
    except (OSError, http.client.HTTPException):
        out.append((0, time.monotonic() - t0))
        return False


def closed_loop(n, out):
    stop_at = time.monotonic() + seconds

    def w():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        while time.monotonic() < stop_at:
            if not one(conn, out):
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        conn.close()

    ts = [threading.Thread(target=w) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def open_loop(rate, out):
    """Arrivals at RATE per second; each request on a fresh connection in its own thread."""
    ts = []
    t_next = time.monotonic()
    stop_at = t_next + seconds
    rng = random.Random(1)

    def w():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        one(conn, out)
        conn.close()

    while t_next < stop_at:
        now = time.monotonic()
        if now < t_next:
            time.sleep(t_next - now)
        t = threading.Thread(target=w)
        t.start()
        ts.append(t)
        t_next += rng.expovariate(rate)
    for t in ts:
        t.join()


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def server_side(since_line):
    """(status, total seconds) of the completions logged after line SINCE_LINE."""
    res = []
    with open(logfile) as f:
        lines = f.readlines()
    for line in lines[since_line:]:
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("path") == "/v1/completions":
            res.append((o["status"], o["total_ms"] / 1e3))
    return res, len(lines)


def report(name, res, srv):
    ok = [t for s, t in res if s == 200]
    refused = [t for s, t in res if s == 429]
    s_ok = [t for s, t in srv if s == 200]
    s_ref = [t for s, t in srv if s == 429]
    print("%-9s 200=%-5d 429=%-5d other=%-3d | client: admitted p50 %6.1f ms p99 %6.1f ms, refused p99 %5.1f ms "
          "| server: admitted p99 %6.1f ms, refused p99 %5.2f ms max %5.2f ms" %
          (name, len(ok), len(refused), len(res) - len(ok) - len(refused), pct(ok, .5) * 1e3, pct(ok, .99) * 1e3,
           pct(refused, .99) * 1e3, pct(s_ok, .99) * 1e3, pct(s_ref, .99) * 1e3, max(s_ref, default=0) * 1e3))
    return ok, refused, s_ok, s_ref


_, mark = server_side(0)
base = []
closed_loop(clients, base)
srv_base, mark = server_side(mark)
x = sum(1 for s, _ in base if s == 200) / seconds
b_ok, _, sb_ok, _ = report("baseline", base, srv_base)
print("baseline throughput %.1f req/s with %d clients; overload: open-loop arrivals at %.0f req/s (10x)" %
      (x, clients, 10 * x))
over = []
open_loop(10 * x, over)
srv_over, _ = server_side(mark)
o_ok, o_ref, so_ok, so_ref = report("10x", over, srv_over)
print("ratio 10x/baseline, admitted: client p50 %.2f p99 %.2f, server p99 %.2f; refused within 10 ms: "
      "%.1f%% (server), %.1f%% (client)" %
      (pct(o_ok, .5) / pct(b_ok, .5), pct(o_ok, .99) / pct(b_ok, .99), pct(so_ok, .99) / pct(sb_ok, .99),
       100.0 * sum(1 for t in so_ref if t < 0.010) / max(1, len(so_ref)),
       100.0 * sum(1 for t in o_ref if t < 0.010) / max(1, len(o_ref))))
