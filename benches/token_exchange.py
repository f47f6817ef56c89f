#!/usr/bin/env python3
"""Token-exchange cost of hookgate, in one run, against the same upstream both ways.

    benches/token_exchange.py                    # both upstreams, ES256, 10 s per load run
    benches/token_exchange.py --upstream oidc --alg RS256 --duration 20
    benches/token_exchange.py --upstream oidc --pin --rounds 5

For each upstream (node-oidc-provider, the realistic one; stub-idp, a Rust server answering a
pre-made JWT, so hookgate itself is the bottleneck) it measures, with wrk over loopback:

  latency     one connection: p50/p99 of one request with no queueing, direct vs. through hookgate
              (a credentials-exchange hook adding two claims, re-signed with --alg);
  throughput  --conns connections: requests/s both ways, and hookgate's CPU time per request
              (from /proc, user+system, all of hookgate's threads).

With --pin (two cores or more), the upstream runs on core 0 and wrk and hookgate on core 1, in
both the direct and the hookgate runs: the upstream's throughput is then its own, not what is
left of a core it shares with the proxy, and the throughput ratio answers whether hookgate is the
bottleneck (on a shared 2-core machine any proxy takes CPU from a co-located upstream).

Every load run is bounded by --duration and everything started here is stopped at the end.
Never a pass/fail: it prints figures to compare.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOKGATE = os.path.join(ROOT, "target", "release", "hookgate")
STUB = os.path.join(ROOT, "target", "release", "examples", "stub-idp")
LUA = os.path.join(ROOT, "tests", "oidc", "token-post.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The hook every contender runs (benches/compare.py gives the same file to its peers).
with open(os.path.join(ROOT, "benches", "peers", "two-claims.js")) as _f:
    TWO_CLAIMS_HOOK = _f.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout=20):
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout}s")


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop_one(self, p, timeout=10):
        """Stop one process started here (SIGTERM, then SIGKILL after `timeout` s)."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_upstream(kind, procs, work, stub=None, prefix=()):
    """node-oidc-provider ("oidc") or stub-idp ("stub", or the binary `stub`); returns its port."""
    port = free_port()
    if kind == "stub":
        procs.start([*prefix, stub or STUB, f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{port}/jwks")
    else:
        out = open(os.path.join(work, "idp.out"), "w")
        procs.start(
            [*prefix, "node", os.path.join(ROOT, "tests", "oidc", "server.mjs"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"http://127.0.0.1:{port}/jwks")
    return port


def start_hookgate(procs, work, upstream_port, alg, key=None, threads=None, prefix=(), binary=None,
                   upstream_path="/token"):
    """hookgate with the two-claims hook on POST /oauth/token (upstream `upstream_path`), re-signing
    with `alg`: a new key in `work`, or the PKCS#8 PEM `key`. `threads` sets server.threads (default:
    one per core); `prefix` goes before the command (e.g. taskset); `binary` replaces HOOKGATE.
    hookgate guards a hooked route's `upstream_path` (a request for it runs the hooks), so a
    passthrough measurement of POST /token moves it elsewhere."""
    binary = binary or HOOKGATE
    hooks = os.path.join(work, "hooks", "credentials-exchange")
    os.makedirs(hooks, exist_ok=True)
    with open(os.path.join(hooks, "two-claims.js"), "w") as f:
        f.write(TWO_CLAIMS_HOOK)
    if key is None:
        key = os.path.join(work, "key.pem")
        if os.path.exists(key):
            os.remove(key)
        subprocess.run([binary, "keys", "generate", "--alg", alg, "--out", key], check=True, stdout=subprocess.DEVNULL)
    port, admin = free_port(), free_port()
    threads_line = f"threads = {threads}\n" if threads else ""
    with open(os.path.join(work, "hookgate.toml"), "w") as f:
        f.write(
            f"""[server]
listen = ["127.0.0.1:{port}"]
admin_listen = "127.0.0.1:{admin}"
{threads_line}[upstream]
address = "127.0.0.1:{upstream_port}"
[token]
signing_key = "{key}"
[clients.m2m-post]
metadata = {{ tier = "gold" }}
[[route]]
name = "token"
path = "/oauth/token"
point = "credentials-exchange"
upstream_path = "{upstream_path}"
audience_param = "resource"
"""
        )
    p = procs.start(
        [*prefix, binary, "serve", "--config", os.path.join(work, "hookgate.toml")],
        stderr=open(os.path.join(work, "hookgate.log"), "w"),
        env={**os.environ, "RUST_LOG": "warn"},
    )
    wait_http(f"http://127.0.0.1:{admin}/healthz")
    return p, port


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    n = float(m.group(1))
    return {"us": n / 1000, "ms": n, "s": n * 1000}[m.group(2)]


def wrk(url, path, conns, duration, threads=1, env=None, prefix=()):
    """One bounded wrk run of tests/oidc/token-post.lua; `env` adds its TOKEN_* variables;
    `prefix` goes before the command (e.g. taskset)."""
    env = {**os.environ, "TOKEN_PATH": path, **(env or {})}
    threads = max(1, min(threads, conns))
    out = subprocess.run(
        [*prefix, "wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"--timeout={max(2, duration)}s", "--latency", "-s", LUA, url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    bad = int(re.search(r"non-200 responses: (\d+)", out).group(1))
    errors = re.search(r"Socket errors: .*|Non-2xx.*", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non200": bad, "errors": errors.group(0) if errors else ""}


def measure(kind, alg, duration, conns, pin=False, rounds=1):
    work = tempfile.mkdtemp(prefix="hookgate-bench-")
    procs = Procs()
    up_cpu, rest = (("taskset", "-c", "0"), ("taskset", "-c", "1")) if pin else ((), ())
    try:
        up = start_upstream(kind, procs, work, prefix=up_cpu)
        hg, hg_port = start_hookgate(procs, work, up, alg, prefix=rest)
        direct, through = f"http://127.0.0.1:{up}", f"http://127.0.0.1:{hg_port}"
        # Proves the path works before timing it, and warms both (node's JIT needs seconds).
        wrk(through, "/oauth/token", 4, 3, prefix=rest)
        wrk(direct, "/token", 4, 3, prefix=rest)
        r = {}
        r["direct_1"] = wrk(direct, "/token", 1, duration, prefix=rest)
        r["hookgate_1"] = wrk(through, "/oauth/token", 1, duration, prefix=rest)
        # Throughput drifts on a shared VM: direct and hookgate runs alternate, and each side's
        # median run is reported.
        runs = {"direct_n": [], "hookgate_n": []}
        for _ in range(rounds):
            runs["direct_n"].append(wrk(direct, "/token", conns, duration, prefix=rest))
            cpu0 = cpu_seconds(hg.pid)
            h = wrk(through, "/oauth/token", conns, duration, prefix=rest)
            h["cpu_us_per_req"] = 1e6 * (cpu_seconds(hg.pid) - cpu0) / (h["rps"] * duration)
            runs["hookgate_n"].append(h)
        for key, xs in runs.items():
            xs.sort(key=lambda x: x["rps"])
            r[key] = xs[len(xs) // 2]
            r[key]["all_rps"] = [round(x["rps"]) for x in xs]
        return r
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(kind, alg, duration, conns, r, pin=False):
    names = {"oidc": "node-oidc-provider", "stub": "stub-idp (Rust, pre-made JWT)"}
    where = "; upstream on core 0, wrk and hookgate on core 1" if pin else ""
    print(f"\n### upstream: {names[kind]} — {alg} re-signing, hook adding two claims, {duration} s per run, {os.cpu_count()} cores{where}\n")
    print("| path | conns | req/s | p50 ms | p99 ms | non-200 | hookgate CPU µs/req |")
    print("|---|---|---|---|---|---|---|")
    for key, label, c in [("direct_1", "direct", 1), ("hookgate_1", "through hookgate", 1),
                          ("direct_n", "direct", conns), ("hookgate_n", "through hookgate", conns)]:
        x = r[key]
        cpu = f"{x['cpu_us_per_req']:.0f}" if "cpu_us_per_req" in x else ""
        print(f"| {label} | {c} | {x['rps']:.0f} | {x['p50']:.3f} | {x['p99']:.3f} | {x['non200']} | {cpu} |")
    d1, h1, dn, hn = r["direct_1"], r["hookgate_1"], r["direct_n"], r["hookgate_n"]
    print(f"\nadded latency, one connection: p50 {h1['p50'] - d1['p50']:+.3f} ms, p99 {h1['p99'] - d1['p99']:+.3f} ms")
    runs = f" (median of {len(dn['all_rps'])} alternated runs each: direct {dn['all_rps']}, hookgate {hn['all_rps']} req/s)" if len(dn["all_rps"]) > 1 else ""
    print(f"throughput through hookgate / direct, {conns} connections: {100 * hn['rps'] / dn['rps']:.1f}%{runs}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", choices=["oidc", "stub", "both"], default="both")
    ap.add_argument("--alg", default="ES256", choices=["ES256", "RS256", "EdDSA"])
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--pin", action="store_true", help="upstream on core 0; wrk and hookgate on core 1")
    ap.add_argument("--rounds", type=int, default=3, help="alternated direct/hookgate load runs (median kept)")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    if a.pin and ((os.cpu_count() or 1) < 2 or not shutil.which("taskset")):
        sys.exit("--pin needs two cores and taskset")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "hookgate", "--example", "stub-idp"], cwd=ROOT, check=True)
    for kind in (["oidc", "stub"] if a.upstream == "both" else [a.upstream]):
        report(kind, a.alg, a.duration, a.conns, measure(kind, a.alg, a.duration, a.conns, a.pin, max(1, a.rounds)), a.pin)


if __name__ == "__main__":
    main()
