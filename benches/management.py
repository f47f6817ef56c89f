#!/usr/bin/env python3
"""Issue 20's figures, in one run: what run records cost the hooked exchange, and how fast the
management API answers while the token route is under load.

    benches/management.py                      # 10 s per load run, 3 rounds
    benches/management.py --duration 5 --rounds 1 --no-build

Two hookgates in front of stub-idp (a fast Rust upstream, so hookgate is the bottleneck), each
with the two-claims credentials-exchange hook and ES256 re-signing: one records every hook run
(`[runs]` defaults), the other has `[runs] enabled = false`. Each round drives one, then the
other, with the same wrk load (--conns connections), and reads each process's CPU time from
/proc: CPU per request with and without run records, alternated so drift hits both alike.

Then the management API of the recording one (HTTPS, its self-signed certificate trusted,
one keep-alive connection): --calls sequential `GET /api/v2/hooks/{id}` and
`GET /api/v2/hooks?include_totals=true`, idle and while wrk saturates the token route.

Every load is bounded by --duration; everything started here is stopped at the end. Never a
pass/fail: it prints figures to compare.
"""
import argparse
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from token_exchange import (  # noqa: E402
    HOOKGATE, ROOT, TWO_CLAIMS_HOOK, Procs, cpu_seconds, free_port, start_upstream, wait_http, wrk,
)

TOKEN = "bench-admin-token-0123456789"


def start(procs, work, upstream_port, key, runs_enabled):
    os.makedirs(os.path.join(work, "hooks", "credentials-exchange"), exist_ok=True)
    with open(os.path.join(work, "hooks", "credentials-exchange", "two-claims.js"), "w") as f:
        f.write(TWO_CLAIMS_HOOK)
    with open(os.path.join(work, "admin-token"), "w") as f:
        f.write(TOKEN)
    port, admin, api = free_port(), free_port(), free_port()
    runs = "" if runs_enabled else "[runs]\nenabled = false\n"
    with open(os.path.join(work, "hookgate.toml"), "w") as f:
        f.write(
            f"""[server]
listen = ["127.0.0.1:{port}"]
admin_listen = "127.0.0.1:{admin}"
[upstream]
address = "127.0.0.1:{upstream_port}"
[token]
signing_key = "{key}"
[clients.m2m-post]
metadata = {{ tier = "gold" }}
[[route]]
name = "token"
path = "/oauth/token"
point = "credentials-exchange"
upstream_path = "/token"
audience_param = "resource"
[admin]
api_listen = "127.0.0.1:{api}"
rate_limit_per_sec = 100000
rate_limit_burst = 100000
[[admin.token]]
name = "bench"
token = {{ file = "admin-token" }}
scopes = ["read:hooks"]
{runs}"""
        )
    p = procs.start(
        [HOOKGATE, "serve", "--config", os.path.join(work, "hookgate.toml")],
        stderr=open(os.path.join(work, "hookgate.log"), "w"),
        env={**os.environ, "RUST_LOG": "warn"},
    )
    wait_http(f"http://127.0.0.1:{admin}/healthz")
    return p, port, api


def api_calls(work, api_port, calls):
    """`calls` sequential GETs of a hook and of the list on one keep-alive HTTPS connection;
    returns the latencies in ms."""
    ctx = ssl.create_default_context(cafile=os.path.join(work, ".hookgate", "admin-tls.crt"))
    conn = http.client.HTTPSConnection("localhost", api_port, context=ctx, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    conn.request("GET", "/api/v2/hooks?include_totals=true", headers=headers)
    listing = json.loads(conn.getresponse().read())
    hook_id = listing["hooks"][0]["id"]
    out = []
    for i in range(calls):
        path = f"/api/v2/hooks/{hook_id}" if i % 2 == 0 else "/api/v2/hooks?include_totals=true"
        t = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t) * 1000)
        assert r.status == 200, r.status
    conn.close()
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "hookgate", "--example", "stub-idp"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="hookgate-mgmt-bench-")
    procs = Procs()
    try:
        up = start_upstream("stub", procs, work)
        key = os.path.join(work, "key.pem")
        subprocess.run([HOOKGATE, "keys", "generate", "--alg", "ES256", "--out", key], check=True, stdout=subprocess.DEVNULL)
        runs_dir, off_dir = os.path.join(work, "runs-on"), os.path.join(work, "runs-off")
        on = start(procs, runs_dir, up, key, True)
        off = start(procs, off_dir, up, key, False)
        for _, port, _ in (on, off):
            wrk(f"http://127.0.0.1:{port}", "/oauth/token", 4, 2)  # warm

        per = {"on": [], "off": []}
        for _ in range(a.rounds):
            for name, (p, port, _) in (("on", on), ("off", off)):
                c0 = cpu_seconds(p.pid)
                r = wrk(f"http://127.0.0.1:{port}", "/oauth/token", a.conns, a.duration, threads=2)
                c1 = cpu_seconds(p.pid)
                n = r["rps"] * a.duration
                per[name].append({"rps": r["rps"], "us": (c1 - c0) / n * 1e6, "non200": r["non200"]})

        idle = api_calls(runs_dir, on[2], a.calls)
        loaded = {}

        def load():
            loaded["wrk"] = wrk(f"http://127.0.0.1:{on[1]}", "/oauth/token", a.conns, a.duration, threads=2)

        t = threading.Thread(target=load)
        t.start()
        time.sleep(1)
        busy = api_calls(runs_dir, on[2], a.calls)
        t.join()

        print(f"\n### Run records on the hooked exchange (ES256, stub-idp) — {os.cpu_count()} cores, {a.conns} connections, {a.duration} s per run\n")
        print("| round | records on: req/s | CPU µs/req | records off: req/s | CPU µs/req | overhead |")
        print("|---|---|---|---|---|---|")
        for i, (x, y) in enumerate(zip(per["on"], per["off"]), 1):
            print(f"| {i} | {x['rps']:.0f} | {x['us']:.1f} | {y['rps']:.0f} | {y['us']:.1f} | {(x['us'] / y['us'] - 1) * 100:+.1f}% |")
        on_us = sorted(x["us"] for x in per["on"])[len(per["on"]) // 2]
        off_us = sorted(x["us"] for x in per["off"])[len(per["off"]) // 2]
        print(f"\nmedian CPU per request: {on_us:.1f} µs with run records, {off_us:.1f} µs without: {(on_us / off_us - 1) * 100:+.1f}%")
        bad = sum(x["non200"] for x in per["on"] + per["off"])
        print(f"non-200 answers: {bad}")
        print(f"\n### Management API (GET /api/v2/hooks/{{id}} and the list, HTTPS keep-alive, {a.calls} calls)\n")
        print("| | p50 ms | p99 ms |")
        print("|---|---|---|")
        print(f"| idle | {pct(idle, 50):.2f} | {pct(idle, 99):.2f} |")
        print(f"| token route saturated ({loaded['wrk']['rps']:.0f} req/s) | {pct(busy, 50):.2f} | {pct(busy, 99):.2f} |")
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
