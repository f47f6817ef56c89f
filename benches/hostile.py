#!/usr/bin/env python3
"""A good client's latency while hostile hooks run beside it, in one run.

    benches/hostile.py                  # 15 s per phase, 3 rounds
    benches/hostile.py --duration 10 --rounds 1 --no-build

hookgate runs in front of stub-idp (a fast Rust upstream) with one well-behaved
credentials-exchange hook on the route `good` (/oauth/token) and one hostile hook on each of
its own routes, so every kind gets its own load:

  loop        a CPU loop that never ends (stopped by its 2 s timeout, its worker recycled)
  timer       cb at once, then a setInterval(0) left running until the hook's timeout
  slow-api    awaits an API that takes 4.5 s (a local server), more calls than workers
  flood       cb at once, then 3,000 fetches to that slow API
  prototype   overrides Function.prototype.apply/call, Array.prototype.push, JSON.stringify
  memory      allocates until the heap limit stops it

Each round measures the good client three times with wrk — one connection (latency without
queueing) and --conns connections:
  alone        nothing else runs (the idle baseline);
  neighbours   the same number of neighbour routes under the same load, running a well-behaved
               hook (the two-claims hook): what any neighbours' traffic costs on this machine;
  hostile      every hostile route under that load at the same time.
Neighbour and hostile load: --hostile-conns connections per route, each pausing
--hostile-delay-ms between requests (a bad neighbour sends at a bounded rate). A well-behaved
hook answers at once, so the neighbour routes send at least as many requests as the hostile ones:
`hostile / neighbours` is what the hostile hooks themselves cost the good client.
The neighbour/hostile load generators and the slow API stand for other machines: they run at
nice 19 (--no-nice-load runs them at normal priority), so the two cores go first to hookgate,
its upstream and the measured client, as they would in a deployment.
It prints p50/p99 and the ratios, and how the hostile requests were answered. Every load is
bounded by --duration; everything started here is stopped at the end. Never a pass/fail.
"""
import argparse
import http.server
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from token_exchange import HOOKGATE, LUA, ROOT, TWO_CLAIMS_HOOK, Procs, free_port, start_upstream, to_ms, wait_http  # noqa: E402

HOSTILE = {
    "loop": ("module.exports = function (client, scope, audience, context, cb) { while (true) {} };", 2000),
    "timer": (
        "module.exports = function (client, scope, audience, context, cb) {\n"
        "  setInterval(function () { Math.sqrt(2); }, 0);\n"
        "  cb(null, { scope: scope });\n};",
        None,
    ),
    "slow-api": (
        "module.exports = async function (client, scope, audience, context, cb) {\n"
        "  const r = await fetch(context.webtask.secrets.SLOW_URL);\n"
        "  await r.text();\n"
        "  cb(null, { scope: scope });\n};",
        None,
    ),
    "flood": (
        "module.exports = function (client, scope, audience, context, cb) {\n"
        "  for (let i = 0; i < 3000; i++) fetch(context.webtask.secrets.SLOW_URL).catch(function () {});\n"
        "  cb(null, { scope: scope });\n};",
        None,
    ),
    "prototype": (
        "module.exports = function (client, scope, audience, context, cb) {\n"
        "  Function.prototype.apply = function () { throw new Error('owned'); };\n"
        "  Function.prototype.call = function () { throw new Error('owned'); };\n"
        "  Array.prototype.push = function () { throw new Error('owned'); };\n"
        "  JSON.stringify = function () { return '\"owned\"'; };\n"
        "  Promise.prototype.then = function () { throw new Error('owned'); };\n"
        "  cb(null, { scope: scope });\n};",
        None,
    ),
    "memory": (
        "module.exports = function (client, scope, audience, context, cb) {\n"
        "  const keep = []; while (true) keep.push(new Array(100000).fill(1));\n};",
        5000,
    ),
}


class SlowHandler(http.server.BaseHTTPRequestHandler):
    """The slow API the hostile hooks wait on: 4.5 s per answer."""

    def do_GET(self):
        time.sleep(4.5)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class SlowServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 4096

    def handle_error(self, request, client_address):
        pass  # hookgate drops the flood's requests at the hook's timeout: broken pipes expected


def write_config(work, upstream_port, key, kinds):
    hooks = os.path.join(work, "hooks", "credentials-exchange")
    os.makedirs(hooks, exist_ok=True)
    for name in ("good", "neighbour"):
        with open(os.path.join(hooks, f"{name}.js"), "w") as f:
            f.write(TWO_CLAIMS_HOOK)
    port, admin = free_port(), free_port()
    routes = ['[[route]]\nname = "good"\npath = "/oauth/token"\npoint = "credentials-exchange"\nupstream_path = "/token"\naudience_param = "resource"\n']
    settings = ['[[hooks.hook]]\nfile = "credentials-exchange/good.js"\nroutes = ["good"]\n']
    for name in kinds:
        routes.append(
            f'[[route]]\nname = "neighbour-{name}"\npath = "/neighbour/{name}"\npoint = "credentials-exchange"\n'
            'upstream_path = "/token"\naudience_param = "resource"\n'
        )
    settings.append(
        '[[hooks.hook]]\nfile = "credentials-exchange/neighbour.js"\nroutes = ['
        + ", ".join(f'"neighbour-{k}"' for k in kinds) + "]\n"
    )
    for name, (src, timeout) in HOSTILE.items():
        if name not in kinds:
            continue
        with open(os.path.join(hooks, f"{name}.js"), "w") as f:
            f.write(src + "\n")
        routes.append(
            f'[[route]]\nname = "{name}"\npath = "/hostile/{name}"\npoint = "credentials-exchange"\n'
            'upstream_path = "/token"\naudience_param = "resource"\n'
        )
        t = f"timeout_ms = {timeout}\n" if timeout else ""
        settings.append(
            f'[[hooks.hook]]\nfile = "credentials-exchange/{name}.js"\nroutes = ["{name}"]\n{t}'
            'secrets = { SLOW_URL = { env = "SLOW_URL" } }\n'
        )
    cfg = os.path.join(work, "hookgate.toml")
    with open(cfg, "w") as f:
        f.write(
            f'[server]\nlisten = ["127.0.0.1:{port}"]\nadmin_listen = "127.0.0.1:{admin}"\naccess_log = false\n'
            f'[upstream]\naddress = "127.0.0.1:{upstream_port}"\n[token]\nsigning_key = "{key}"\n'
            '[clients.m2m-post]\nmetadata = { tier = "gold" }\n'
            + "".join(routes)
            + '[hooks]\nwatch = false\n'
            + "".join(settings)
        )
    return cfg, port, admin


def wrk_run(url, path, conns, duration):
    env = {**os.environ, "TOKEN_PATH": path}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", f"--timeout={duration}s", "--latency", "-s", LUA, url],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": to_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
        "p99": to_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
        "non200": int(re.search(r"non-200 responses: (\d+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


HOSTILE_LUA = os.path.join(ROOT, "benches", "hostile-post.lua")


def hostile_load(url, duration, conns, kinds, delay_ms, prefix, nice):
    """Start one bounded wrk per route `<prefix>/<kind>`, each connection pausing `delay_ms`
    between its requests; returns the processes (read with finish_hostile)."""
    out = []
    for name in kinds:
        env = {**os.environ, "TOKEN_PATH": f"{prefix}/{name}", "TOKEN_LUA": LUA, "HOSTILE_DELAY_MS": str(delay_ms)}
        p = subprocess.Popen(
            [*nice, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", f"--timeout={duration + 25}s", "-s", HOSTILE_LUA, url],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        out.append((name, p))
    return out


def finish_hostile(procs, limit):
    result = {}
    for name, p in procs:
        try:
            text, _ = p.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
        req = re.search(r"(\d+) requests in", text or "")
        bad = re.search(r"non-200 responses: (\d+)", text or "")
        result[name] = (int(req.group(1)) if req else 0, int(bad.group(1)) if bad else 0)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--conns", type=int, default=8, help="the good client's connections (besides one)")
    ap.add_argument("--hostile-conns", type=int, default=4, help="connections per hostile route")
    ap.add_argument("--hostile-delay-ms", type=int, default=20, help="pause between a hostile connection's requests")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(HOSTILE), help="comma-separated hostile kinds (default: all)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-nice-load", action="store_true", help="run the neighbour/hostile load and the slow API at normal priority")
    ap.add_argument("--serve-slow", help=argparse.SUPPRESS)  # internal: the slow API, in its own process
    a = ap.parse_args()
    if a.serve_slow:
        slow = SlowServer(("127.0.0.1", 0), SlowHandler)
        with open(a.serve_slow + ".tmp", "w") as f:
            f.write(str(slow.server_address[1]))
        os.rename(a.serve_slow + ".tmp", a.serve_slow)
        slow.serve_forever()
        return
    nice = [] if a.no_nice_load else ["nice", "-n", "19"]
    kinds = [k for k in a.only.split(",") if k]
    unknown = [k for k in kinds if k not in HOSTILE]
    if unknown:
        sys.exit(f"unknown hostile kinds {unknown}; known: {list(HOSTILE)}")
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk")
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-q", "--bin", "hookgate", "--example", "stub-idp"], cwd=ROOT, check=True)

    work = tempfile.mkdtemp(prefix="hookgate-hostile-")
    procs = Procs()
    try:
        port_file = os.path.join(work, "slow.port")
        procs.start([*nice, sys.executable, os.path.abspath(__file__), "--serve-slow", port_file])
        deadline = time.time() + 10
        while not os.path.exists(port_file) and time.time() < deadline:
            time.sleep(0.05)
        with open(port_file) as f:
            slow_port = int(f.read())
        up = start_upstream("stub", procs, work)
        key = os.path.join(work, "key.pem")
        subprocess.run([HOOKGATE, "keys", "generate", "--alg", "ES256", "--out", key], check=True, stdout=subprocess.DEVNULL)
        cfg, port, admin = write_config(work, up, key, kinds)
        env = {**os.environ, "RUST_LOG": "error", "SLOW_URL": f"http://127.0.0.1:{slow_port}/"}
        procs.start([HOOKGATE, "serve", "--config", cfg], stderr=open(os.path.join(work, "hookgate.log"), "w"), env=env)
        wait_http(f"http://127.0.0.1:{admin}/healthz")
        url = f"http://127.0.0.1:{port}"
        wrk_run(url, "/oauth/token", 4, 3)  # proves the path works and warms it

        rows = []
        for r in range(a.rounds):
            base_1 = wrk_run(url, "/oauth/token", 1, a.duration)
            base_n = wrk_run(url, "/oauth/token", a.conns, a.duration)
            # Each load starts first and outlasts both measured runs.
            near = hostile_load(url, 2 * a.duration + 6, a.hostile_conns, kinds, a.hostile_delay_ms, "/neighbour", nice)
            time.sleep(3)
            near_1 = wrk_run(url, "/oauth/token", 1, a.duration)
            near_n = wrk_run(url, "/oauth/token", a.conns, a.duration)
            near_answered = finish_hostile(near, 60)
            hostile = hostile_load(url, 2 * a.duration + 6, a.hostile_conns, kinds, a.hostile_delay_ms, "/hostile", nice)
            time.sleep(3)
            hot_1 = wrk_run(url, "/oauth/token", 1, a.duration)
            hot_n = wrk_run(url, "/oauth/token", a.conns, a.duration)
            answered = finish_hostile(hostile, 60)
            rows.append((base_1, base_n, near_1, near_n, hot_1, hot_n, answered, near_answered))
            # Let the hostile hooks' leftovers (timers, the flood) reach their timeouts.
            time.sleep(22)

        load = "niced (other machines)" if nice else "normal priority"
        print(f"\n### The good client with hostile hooks under load ({', '.join(kinds)}) — {os.cpu_count()} cores, {a.duration} s per run, load generators {load}\n")
        print("| round | conns | alone req/s | p99 ms | neighbours req/s | p99 ms | hostile req/s | p50 ms | p99 ms | non-200 | hostile / alone | hostile / neighbours |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        ratios = {(1, "alone"): [], (a.conns, "alone"): [], (1, "neighbours"): [], (a.conns, "neighbours"): []}
        for i, (b1, bn, n1, nn, h1, hn, _, _) in enumerate(rows, 1):
            for c, b, n, h in ((1, b1, n1, h1), (a.conns, bn, nn, hn)):
                ra = h["p99"] / b["p99"] if b["p99"] else float("nan")
                rn = h["p99"] / n["p99"] if n["p99"] else float("nan")
                ratios[(c, "alone")].append(ra)
                ratios[(c, "neighbours")].append(rn)
                bad = b["non200"] + n["non200"] + h["non200"]
                print(f"| {i} | {c} | {b['rps']:.0f} | {b['p99']:.3f} | {n['rps']:.0f} | {n['p99']:.3f} | {h['rps']:.0f} | {h['p50']:.3f} | {h['p99']:.3f} | {bad} | {ra:.2f}× | {rn:.2f}× |")
        for (c, what), xs in ratios.items():
            xs.sort()
            print(f"\np99 with hostile hooks / {what}, {c} connection(s): median {xs[len(xs) // 2]:.2f}× (range {xs[0]:.2f}–{xs[-1]:.2f}×)")
        print("\nneighbour and hostile routes (last round): requests answered, of which non-200")
        for name, (n, bad) in rows[-1][6].items():
            nn_, nbad = rows[-1][7][name]
            print(f"- {name}: neighbour {nn_} answered ({nbad} non-200); hostile {n} answered ({bad} non-200)")
    finally:
        procs.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
