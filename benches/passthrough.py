#!/usr/bin/env python3
"""Where a passthrough request's time goes: hookgate beside bare pingora and nginx, per request:
CPU time, system calls and context switches (the last two do not depend on what else the
machine runs), and with --callgrind the user-space instructions.

    benches/passthrough.py                          # 3 rounds of 5 s, 8 connections
    benches/passthrough.py --duration 10 --rounds 5 --conns 16
    benches/passthrough.py --record                 # also `perf record` each proxy; top symbols
    benches/passthrough.py --only hookgate,bare-pingora --no-write

Contenders, each in front of stub-idp (benches/stub_idp.rs, a Rust server answering a pre-made
token to POST /token) and started alone, with the same number of workers (--workers, default
one per core):

  nginx          nginx proxy_pass (benches/peers/nginx/proxy_pass.conf.in)
  bare-pingora   pingora's minimal ProxyHttp, a fixed peer and nothing else
                 (benches/bare_pingora.rs, the same pingora as hookgate, hookgate's thread layout
                 and allocator)
  bare-pingora+timeouts  the same with hookgate's default upstream timeouts on the peer: pingora
                 arms a timer around each read and write that has one
  hookgate       hookgate with a credentials-exchange route elsewhere, POST /token unrouted:
                 the passthrough path (routing, the Live snapshot, request id, path
                 normalisation, the head deadline, metrics)

Per contender and round: a wrk run of --duration with `perf stat` (software events: this machine's
VM has no hardware counters) attached to the proxy's processes for the same window. Reported:
requests/s, CPU µs per request (/proc, user + system), system calls and context switches per
request, and the ratios to nginx and to bare pingora (median of the rounds).
With --record, `perf record -g` (cpu-clock) on each proxy for one more run, and the top symbols by
self time. With --callgrind, each proxy runs once more under valgrind's callgrind, instrumented
only while a wrk run of --duration lasts: user-space instructions per request (Ir), exact and
independent of the machine's load, and the top functions by self cost.

Everything started here is stopped at the end, on Ctrl-C and on errors. Never a pass/fail.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import token_exchange as tx  # noqa: E402

ROOT = tx.ROOT
BARE = os.path.join(ROOT, "target", "release", "examples", "bare-pingora")
NGINX_CONF = os.path.join(ROOT, "benches", "peers", "nginx", "proxy_pass.conf.in")


def pids_of(proc):
    """The process and its children (nginx's workers)."""
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    return [proc.pid] + [int(p) for p in out.split()]


def tree_cpu(pids):
    return sum(tx.cpu_seconds(p) for p in pids)


def start_nginx(procs, work, up_port, workers, prefix=()):
    port = tx.free_port()
    with open(NGINX_CONF) as f:
        conf = f.read()
    for k, v in {"PREFIX": work, "WORKERS": str(workers), "LISTEN": f"127.0.0.1:{port}",
                 "UPSTREAM": f"127.0.0.1:{up_port}"}.items():
        conf = conf.replace(f"@{k}@", v)
    path = os.path.join(work, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start([*prefix, "nginx", "-p", work, "-c", path, "-e", os.path.join(work, "error.log"),
                     "-g", "daemon off;"], stderr=subprocess.DEVNULL)
    tx.wait_http(f"http://127.0.0.1:{port}/jwks")
    time.sleep(0.2)  # the workers
    return p, port


def start_bare(procs, work, up_port, workers, prefix=(), timeouts=False):
    port = tx.free_port()
    env = {**os.environ, "BARE_PINGORA_TIMEOUTS": "1" if timeouts else "0"}
    p = procs.start([*prefix, BARE, f"127.0.0.1:{port}", f"127.0.0.1:{up_port}", str(workers)],
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "bare.log"), "w"), env=env)
    tx.wait_http(f"http://127.0.0.1:{port}/jwks")
    return p, port


def start_hookgate(procs, work, up_port, workers, prefix=(), binary=None):
    return tx.start_hookgate(procs, work, up_port, "ES256", threads=workers, prefix=prefix,
                             upstream_path="/hooked-token", binary=binary)


def add_patched(root):
    """Contenders built against a patched pingora (benches/pingora-patches.diff) in `root`."""
    bare = os.path.join(root, "target", "release", "examples", "bare-pingora")
    hookgate = os.path.join(root, "target", "release", "hookgate")
    for b in (bare, hookgate):
        if not os.path.exists(b):
            raise SystemExit(f"{b} is missing")

    def start_patched_bare(procs, work, up_port, workers, prefix=(), timeouts=False):
        global BARE
        saved, BARE = BARE, bare
        try:
            return start_bare(procs, work, up_port, workers, prefix, timeouts)
        finally:
            BARE = saved

    STARTERS["bare-pingora+timeouts/patched"] = lambda *a, **k: start_patched_bare(*a, **k, timeouts=True)
    STARTERS["hookgate/patched"] = lambda *a, **k: start_hookgate(*a, **k, binary=hookgate)
    return ["bare-pingora+timeouts/patched", "hookgate/patched"]


STARTERS = {"nginx": start_nginx, "bare-pingora": start_bare,
            "bare-pingora+timeouts": lambda *a, **k: start_bare(*a, **k, timeouts=True),
            "hookgate": start_hookgate}


def perf_stat(pids, seconds):
    """Start `perf stat` on `pids` for `seconds`; returns the process (read it with parse_stat)."""
    return subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e", "task-clock,context-switches,raw_syscalls:sys_enter", "-p",
         ",".join(map(str, pids)), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def parse_stat(p):
    err = p.communicate()[1]
    counts = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].strip().isdigit():
            counts[parts[2].strip()] = int(parts[0])
    if "raw_syscalls:sys_enter" not in counts:
        raise SystemExit(f"perf stat gave no counts (is perf allowed here?):\n{err}")
    return counts


def one_run(pids, port, a):
    cpu0 = tree_cpu(pids)
    stat = perf_stat(pids, a.duration)
    r = tx.wrk(f"http://127.0.0.1:{port}", "/token", a.conns, a.duration, threads=min(2, a.conns))
    counts = parse_stat(stat)
    cpu = tree_cpu(pids) - cpu0
    n = r["rps"] * a.duration
    return {"rps": r["rps"], "p50": r["p50"], "p99": r["p99"], "bad": r["non200"],
            "sys": counts["raw_syscalls:sys_enter"] / n, "cs": counts.get("context-switches", 0) / n,
            "cpu_us": cpu / n * 1e6}


def record(name, pids, port, a, work):
    data = os.path.join(work, f"{name}.perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", data, "-p",
                            ",".join(map(str, pids)), "--", "sleep", str(a.duration)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tx.wrk(f"http://127.0.0.1:{port}", "/token", a.conns, a.duration, threads=min(2, a.conns))
    rec.wait()
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort",
                          "dso,symbol", "--percent-limit", "0.8", "-g", "none"],
                         capture_output=True, text=True).stdout
    lines = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines[: a.top]


def callgrind(name, procs, work, up_port, a):
    """Run `name` under callgrind, instrumented only during one wrk run: (Ir per request, top
    functions by self cost)."""
    d = os.path.join(work, f"{name}-callgrind")
    os.makedirs(d)
    out = os.path.join(d, "cg.%p")
    prefix = ("valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
              f"--callgrind-out-file={out}")
    p, port = STARTERS[name](procs, d, up_port, a.workers, prefix=prefix)
    time.sleep(1)
    pids = pids_of(p)
    tx.wrk(f"http://127.0.0.1:{port}", "/token", a.conns, 2)  # warm-up, not counted
    for pid in pids:
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], capture_output=True)
    r = tx.wrk(f"http://127.0.0.1:{port}", "/token", a.conns, a.duration, threads=min(2, a.conns))
    for pid in pids:
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], capture_output=True)
        # Dump now: a proxy may not end in time to write its profile at exit.
        subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True)
    procs.stop_one(p, timeout=30)
    files = [os.path.join(d, f) for f in os.listdir(d) if f.startswith("cg.")]
    total, top = 0, []
    for f in files:
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", f], capture_output=True, text=True).stdout
        m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", ann)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        total += n
        if n > 0:
            body = ann.split("file:function", 1)[-1].splitlines()[2:]
            top += [ln for ln in body if ln.strip()][: a.top]
    return total / max(1, r["rps"] * a.duration), top


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--only", default="nginx,bare-pingora,bare-pingora+timeouts,hookgate")
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--patched", metavar="ROOT",
                    help="also run bare pingora and hookgate built in ROOT against a patched pingora")
    a = ap.parse_args()
    names = a.only.split(",")
    if a.patched:
        names += add_patched(a.patched)
    for b in (tx.STUB, BARE, tx.HOOKGATE):
        if not os.path.exists(b):
            raise SystemExit(f"{b} is missing: cargo build --release --bin hookgate "
                             "--example stub-idp --example bare-pingora")
    work = tempfile.mkdtemp(prefix="hookgate-pass-")
    procs = tx.Procs()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    results = {n: [] for n in names}
    profiles, irs, cg_top = {}, {}, {}
    try:
        up = tx.start_upstream("stub", procs, work)
        for rnd in range(a.rounds):
            for name in names:
                d = os.path.join(work, f"{name}-{rnd}")
                os.makedirs(d)
                p, port = STARTERS[name](procs, d, up, a.workers)
                pids = pids_of(p)
                tx.wrk(f"http://127.0.0.1:{port}", "/token", a.conns, 1)  # warm-up
                results[name].append(one_run(pids, port, a))
                if a.record and rnd == a.rounds - 1:
                    profiles[name] = record(name, pids, port, a, work)
                procs.stop_one(p)
                r = results[name][-1]
                print(f"round {rnd + 1} {name:13} {r['rps']:9.0f} req/s  {r['cpu_us']:5.1f} µs CPU/req  "
                      f"{r['sys']:5.2f} syscalls/req  {r['cs']:5.2f} switches/req  non-200 {r['bad']}",
                      file=sys.stderr)
        if a.callgrind:
            for name in names:
                irs[name], cg_top[name] = callgrind(name, procs, work, up, a)
                print(f"callgrind {name:13} {irs[name]:,.0f} Ir/req", file=sys.stderr)
    finally:
        procs.stop()
    med = {n: {k: median([r[k] for r in rs]) for k in rs[0]} for n, rs in results.items()}
    print(f"\n{a.rounds} rounds × {a.duration} s, {a.conns} connections, {a.workers} workers, "
          "stub-idp upstream; medians\n")
    print("| contender | req/s | CPU µs/req | syscalls/req | context switches/req | Ir/req (callgrind) | non-200 |")
    print("|---|---|---|---|---|---|---|")
    for n, m in med.items():
        ir = f"{irs[n]:,.0f}" if n in irs else "–"
        print(f"| {n} | {m['rps']:.0f} | {m['cpu_us']:.1f} | {m['sys']:.2f} | {m['cs']:.2f} | {ir} | {m['bad']:.0f} |")
    print()
    pairs = [("hookgate", b) for b in ("nginx", "bare-pingora", "bare-pingora+timeouts")]
    pairs += [("hookgate/patched", "nginx"), ("hookgate/patched", "hookgate"),
              ("bare-pingora+timeouts/patched", "bare-pingora+timeouts")]
    for who, base in pairs:
        if base in med and who in med:
            h, b = med[who], med[base]
            ir = (f", user instructions {irs[who] / irs[base]:.2f}×"
                  if irs.get(base) and who in irs else "")
            print(f"{who} / {base}: CPU {h['cpu_us'] / b['cpu_us']:.2f}×, throughput {h['rps'] / b['rps']:.2f}×, "
                  f"syscalls {h['sys'] / b['sys']:.2f}×{ir}")
    for n, lines in list(profiles.items()) + [(f"{k} (callgrind, self Ir)", v) for k, v in cg_top.items()]:
        print(f"\n## {n}: top symbols by self time\n")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
