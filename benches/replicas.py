#!/usr/bin/env python3
"""The Redis outbox (issue 23), measured in one run, every step bounded in time:

1. The durability choice: what storing one event costs, serially, on one connection —
   XADD with Redis `appendfsync always` and `everysec` (a raw RESP client, so only Redis' cost)
   — and the signup answer's added p50/p99 (wrk, one connection, benches/signup-post.lua,
   the stub IdP) with the redb outbox (fsync'd commit: the cost option (b), a local WAL, would
   have) against the Redis outbox (option (a), XADD acknowledged) with both fsync policies.
2. Events/s delivered by 1 and by 3 replicas (no-op post-user-registration hook): N events are
   written into the stream at once and the time until every one is acknowledged is measured.

Needs: redis-server, wrk, and a release build (done here unless --no-build):
    cargo build --release --bin hookgate --example stub-idp

    benches/replicas.py                     # 5 s wrk runs, 20000 events
    benches/replicas.py --no-build --events 40000 --duration 10
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Resp:
    """A minimal Redis client (RESP2) over one socket."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self.encode(*c) for c in commands))
        return [self.reply() for _ in commands]


def start_redis(work, fsync):
    port = free_port()
    d = os.path.join(work, "redis-%d" % port)
    os.makedirs(d)
    p = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "yes", "--appendfsync", fsync, "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if Resp(port).call("PING") == "PONG":
                return p, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def xadd_latency(port, n):
    r = Resp(port)
    lat = []
    payload = json.dumps(event(0))
    for i in range(n):
        t = time.perf_counter()
        r.call("XADD", "bench:lat", "*", "seq", i, "event", payload)
        lat.append((time.perf_counter() - t) * 1000)
    r.call("DEL", "bench:lat")
    return pct(lat, 50), pct(lat, 99)


def event(i, route="with-post"):
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "trigger": "post-user-registration",
        "route": route,
        "client_id": "spa",
        "args": [
            {"id": "auth0|%024d" % i, "tenant": "bench", "username": "bench",
             "email": "bench@example.com", "emailVerified": False,
             "user_metadata": {"plan": "trial"}, "app_metadata": {"tier": "gold"}},
            {"requestLanguage": "en-us",
             "connection": {"id": "con_1", "name": "Username-Password-Authentication",
                            "tenant": "bench"}},
        ],
        "created_ms": int(time.time() * 1000),
        "attempts": 0,
        "done_hooks": [],
        "last_error": None,
    }


class Hookgate:
    def __init__(self, work, name, upstream, outbox, threads=None):
        self.dir = os.path.join(work, name)
        os.makedirs(os.path.join(self.dir, "hooks", "post-user-registration"))
        with open(os.path.join(self.dir, "hooks", "post-user-registration", "noop.js"), "w") as f:
            f.write("module.exports = function (user, context, cb) { cb(); };\n")
        self.port, self.admin = free_port(), free_port()
        server = "threads = %d\n" % threads if threads else ""
        with open(os.path.join(self.dir, "hookgate.toml"), "w") as f:
            f.write(f"""[server]
listen = ["127.0.0.1:{self.port}"]
admin_listen = "127.0.0.1:{self.admin}"
{server}
[upstream]
address = "{upstream}"
[[route]]
name = "plain"
path = "/signup-plain"
point = "pre-user-registration"
upstream_path = "/dbconnections/signup"
[[route]]
name = "with-post"
path = "/signup-post"
point = "pre-user-registration"
upstream_path = "/dbconnections/signup"
[hooks]
dir = "hooks"
[[hooks.hook]]
file = "post-user-registration/noop.js"
routes = ["with-post"]
[runs]
enabled = false
[outbox]
{outbox}
""")
        self.log = open(os.path.join(self.dir, "hookgate.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(target_dir(), "release", "hookgate"), "serve", "--config",
             os.path.join(self.dir, "hookgate.toml")],
            stdout=subprocess.DEVNULL, stderr=self.log, env={**os.environ, "RUST_LOG": "warn"})
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.admin, timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise SystemExit("hookgate did not become ready:\n" +
                         open(os.path.join(self.dir, "hookgate.log")).read()[-4000:])

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def to_ms(v):
    if v.endswith("us"):
        return float(v[:-2]) / 1000
    if v.endswith("ms"):
        return float(v[:-2])
    if v.endswith("s"):
        return float(v[:-1]) * 1000
    return float(v)


def wrk(url, path, duration):
    env = {**os.environ, "SIGNUP_PATH": path}
    lua = os.path.join(ROOT, "benches", "signup-post.lua")
    subprocess.run(["wrk", "-t1", "-c1", "-d2s", "-s", lua, url], env=env,
                   stdout=subprocess.DEVNULL, timeout=30, check=True)
    out = subprocess.run(["wrk", "-t1", "-c1", "-d%ds" % duration, "--latency", "-s", lua, url],
                         env=env, capture_output=True, text=True, timeout=duration + 30,
                         check=True).stdout
    rps = p50 = p99 = None
    bad = 0
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec"):
            rps = float(parts[1])
        elif parts[:1] == ["50%"]:
            p50 = to_ms(parts[1])
        elif parts[:1] == ["99%"]:
            p99 = to_ms(parts[1])
        elif "Non-2xx" in line:
            bad = int(parts[-1])
    return rps, p50, p99, bad


def drain(port, replicas, n, stream):
    """Write n events at once, return events/s until every one is acknowledged."""
    r = Resp(port)
    t0 = time.perf_counter()
    batch = 1000
    for start in range(0, n, batch):
        r.pipeline([("XADD", stream, "*", "seq", i + 1, "event", json.dumps(event(i)))
                    for i in range(start, min(n, start + batch))])
    r.call("SET", stream + ":seq", n)
    deadline = time.time() + 300
    while time.time() < deadline:
        left = r.call("XLEN", stream) + r.call("ZCARD", stream + ":delayed")
        if left == 0:
            return n / (time.perf_counter() - t0)
        if any(h.proc.poll() is not None for h in replicas):
            raise SystemExit("a replica exited")
        time.sleep(0.01)
    raise SystemExit("the stream was not drained within 300 s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--xadds", type=int, default=3000)
    args = ap.parse_args()
    for tool in ("redis-server", "wrk"):
        if not shutil.which(tool):
            raise SystemExit("needs %s" % tool)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "hookgate", "--example", "stub-idp"],
                       cwd=ROOT, check=True)
    started = time.time()
    work = tempfile.mkdtemp(prefix="hookgate-replicas-")
    procs = []
    hookgates = []
    try:
        stub_port = free_port()
        stub = subprocess.Popen([os.path.join(target_dir(), "release", "examples", "stub-idp"),
                                 "127.0.0.1:%d" % stub_port], stdout=subprocess.PIPE, text=True)
        procs.append(stub)
        stub.stdout.readline()
        upstream = "127.0.0.1:%d" % stub_port
        redis, port = start_redis(work, "always")
        procs.append(redis)
        url = "redis://127.0.0.1:%d" % port
        results = {}

        # 1a. XADD alone.
        r = Resp(port)
        for fsync in ("always", "everysec"):
            r.call("CONFIG", "SET", "appendfsync", fsync)
            results["xadd_" + fsync] = xadd_latency(port, args.xadds)

        # 1b. The signup answer: redb, then Redis (always, everysec).
        hg = Hookgate(work, "redb", upstream, 'path = "outbox.redb"')
        hookgates.append(hg)
        results["plain_redb"] = wrk(hg.url(), "/signup-plain", args.duration)
        results["post_redb"] = wrk(hg.url(), "/signup-post", args.duration)
        hg.stop()
        redis_outbox = f'backend = "redis"\nredis_url = "{url}"\nstream = "bench:signup"\n'
        hg = Hookgate(work, "redis", upstream, redis_outbox)
        hookgates.append(hg)
        for fsync in ("always", "everysec"):
            r.call("CONFIG", "SET", "appendfsync", fsync)
            results["plain_redis_" + fsync] = wrk(hg.url(), "/signup-plain", args.duration)
            results["post_redis_" + fsync] = wrk(hg.url(), "/signup-post", args.duration)
        hg.stop()

        # 2. Events/s: 1 replica, then 3.
        r.call("CONFIG", "SET", "appendfsync", "always")
        for count in (1, 3):
            stream = "bench:drain%d" % count
            outbox = f'backend = "redis"\nredis_url = "{url}"\nstream = "{stream}"\n'
            replicas = [Hookgate(work, "drain%d-%d" % (count, i), upstream,
                                 outbox + 'consumer = "r%d"\n' % i) for i in range(count)]
            hookgates.extend(replicas)
            results["drain_%d" % count] = drain(port, replicas, args.events, stream)
            for h in replicas:
                h.stop()

        elapsed = time.time() - started
        print("\n## Redis outbox (issue 23), `benches/replicas.py`\n")
        print("Run on %s UTC in %.0f s; %d cores; hookgate release build; Redis %s with "
              "`appendonly yes`; everything on one machine over loopback.\n" % (
                  time.strftime("%Y-%m-%d %H:%M", time.gmtime()), elapsed, os.cpu_count(),
                  subprocess.run(["redis-server", "--version"], capture_output=True,
                                 text=True).stdout.split()[2]))
        print("Storing one event, serially, one connection (%d XADDs):\n" % args.xadds)
        print("| | p50 ms | p99 ms |\n|---|---|---|")
        for fsync in ("always", "everysec"):
            p50, p99 = results["xadd_" + fsync]
            print("| XADD, appendfsync %s | %.3f | %.3f |" % (fsync, p50, p99))
        print("\nThe signup answer, wrk -c1 for %d s each (stub IdP):\n" % args.duration)
        print("| outbox | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | non-2xx |")
        print("|---|---|---|---|---|---|---|")
        rows = [("redb (fsync'd commit)", "plain_redb", "post_redb")]
        for fsync in ("always", "everysec"):
            rows.append(("redis, appendfsync %s" % fsync, "plain_redis_" + fsync,
                         "post_redis_" + fsync))
        for label, plain, post in rows:
            a, b = results[plain], results[post]
            print("| %s | %.0f | %.3f | %.3f | %+.3f | %+.3f | %d |" % (
                label, b[0], b[1], b[2], b[1] - a[1], b[2] - a[2], b[3] + a[3]))
        one, three = results["drain_1"], results["drain_3"]
        print("\nDelivery, no-op hook, %d events written at once, until all acknowledged:\n"
              % args.events)
        print("| replicas | events/s |\n|---|---|")
        print("| 1 | %.0f |\n| 3 | %.0f |" % (one, three))
        print("\n3 replicas / 1 = %.2f×" % (three / one))
        with open(os.path.join(work, "results.json"), "w") as f:
            json.dump(results, f)
    finally:
        for h in hookgates:
            h.stop()
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
