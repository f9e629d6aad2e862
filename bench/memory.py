"""Benchmark: resident memory of a real C{ivoms run} node, idle and under load.

A copy of the shipped conf/ (every listener moved to a free 127.0.0.1 port) is
initialised with the demo stock, and C{ivoms run} is started as its own
process. Once C{/health} answers and the node has settled, its RSS is read
from /proc (idle). Then C{--connections} keep-alive HTTP clients in this
process drive USSD for C{--seconds}: whole TCAP Begins (C{*123*HRN#}, the
demo vouchers first, then numbers that are no voucher), and JSON text menu
dialogues, while the node's RSS is sampled; the figure under load is the
node's peak (VmHWM). The node's writer process (database.writer, SQLite) counts
too: every figure is node plus writer. Prints both against the limits (120 MB
idle, 200 MB under load) and exits 1 if one is over. Stops the node whatever happens.

    python bench/memory.py [--seconds 20] [--connections 8]
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

IDLE_LIMIT_MB = 120
LOAD_LIMIT_MB = 200
DEFAULT_PORTS = {'listen = "tcp:8080:interface=127.0.0.1"': "http",
                 'listen = "tcp:8081:interface=127.0.0.1"': "admin",
                 'endpoint = "tcp:2775:interface=127.0.0.1"': "smpp"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(workdir: str) -> tuple[str, int]:
    """A conf/ copy in C{workdir} with free loopback ports, initialised with the
    demo stock; (config path, HTTP port)."""
    conf = os.path.join(workdir, "conf")
    shutil.copytree(os.path.join(REPO, "conf"), conf, ignore=shutil.ignore_patterns("var"))
    path = os.path.join(conf, "ivoms.toml")
    with open(path) as f:
        text = f.read()
    http_port = None
    for line, name in DEFAULT_PORTS.items():
        port = free_port()
        if name == "http":
            http_port = port
        text = text.replace(line, line.replace(line.split(":")[1], str(port)))
    # the load sends numbers that are no voucher from one peer: measure their full path,
    # not the per-source throttle (153) they would meet after 30 a minute
    text = text.replace("source_failures_per_minute = 30", "source_failures_per_minute = 1000000000")
    if http_port is None or 'tcp:%d:' % http_port not in text:
        raise SystemExit("conf/ivoms.toml no longer has the default [http] listen line")
    with open(path, "w") as f:
        f.write(text)
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", path, "init",
                           "--demo", "--admin-password", "memory-bench-password-1"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit("ivoms init failed: %s" % done.stderr[-3000:])
    return path, http_port


def _env():
    return dict(os.environ, PYTHONPATH=REPO)


def demo_hrns(path: str) -> list[str]:
    from sqlalchemy import select

    from core import keys
    from core.crypto import VoucherCipher
    from core.db import Store
    from core.schema import voucher
    from gateway.config import load_config
    config = load_config(path)
    store = Store(config.database.url)
    try:
        cipher = VoucherCipher(keys.load(config.keys.file))
        rows = store.run_sync(lambda tx: tx.execute(
            select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
            .where(voucher.c.state == "available")).rows)
        return [cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows]
    finally:
        store.dispose()


def children(pid: int) -> list[int]:
    """The process ids whose parent is C{pid} (the node's writer process)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def pss_mb(pid: int) -> float:
    """Proportional set size of C{pid} in MB (shared pages split between their users)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of C{pid} in MB, from /proc."""
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0]) / 1024.0
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def wait_healthy(port: int, proc, deadline: float = 120.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("node exited with %s: %s" % (proc.returncode, proc.stderr.read()[-3000:]))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("node not healthy within %.0f s" % deadline)


def tcap_begin(i: int, hrn: str) -> bytes:
    from protocols.ussd.map import encode_ussd_arg
    from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as AC
    from protocols.ussd.tcap import Dialogue, Invoke, TcapMessage, encode_tcap
    return encode_tcap(TcapMessage(
        "begin", otid=(i + 1).to_bytes(4, "big"), dialogue=Dialogue("request", application_context=AC),
        components=(Invoke(1, 59, encode_ussd_arg("*123*%s#" % hrn,
                                                  msisdn="+38164%07d" % (i % 100_000))),)))


def drive(port: int, hrns: list[str], seconds: float, connections: int, pid: int) -> dict:
    """Keep-alive clients posting to /ussd for C{seconds}; the node's RSS sampled."""
    stop = time.monotonic() + seconds
    counter = itertools.count()
    fed = iter(hrns)
    lock = threading.Lock()
    stats = {"requests": 0, "errors": 0, "samples": []}

    def next_hrn(i):
        with lock:
            hrn = next(fed, None)
        return hrn or "%014d" % (10 ** 13 + i)         # no such voucher once the stock is used

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            i = next(counter)
            try:
                if i % 4 == 3:                          # a text menu dialogue: begin, then pick 3 (help)
                    for doc in ({"dialogue_id": "mem-%d" % i, "operation": "begin",
                                 "msisdn": "0641%06d" % (i % 10 ** 6), "text": "*123#"},
                                {"dialogue_id": "mem-%d" % i, "operation": "continue", "text": "3"}):
                        conn.request("POST", "/ussd", body=json.dumps(doc).encode(),
                                     headers={"Content-Type": "application/json"})
                        r = conn.getresponse()
                        r.read()
                        ok = r.status == 200
                else:
                    conn.request("POST", "/ussd", body=tcap_begin(i, next_hrn(i)),
                                 headers={"Content-Type": "application/octet-stream"})
                    r = conn.getresponse()
                    r.read()
                    ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                stats["requests"] += 1
                stats["errors"] += not ok
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(connections)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        stats["samples"].append(rss_mb(pid)[0] + sum(rss_mb(c)[0] for c in children(pid)))
        time.sleep(0.2)
    for t in threads:
        t.join(35)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="load duration")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds idle before measuring")
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="ivoms-memory-")
    proc = None
    try:
        path, port = prepare(workdir)
        hrns = demo_hrns(path)
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", path, "run"],
                                cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        wait_healthy(port, proc)
        time.sleep(a.settle)
        writers = children(proc.pid)
        node_idle, writer_idle = rss_mb(proc.pid)[0], sum(rss_mb(c)[0] for c in writers)
        idle = node_idle + writer_idle
        idle_pss = pss_mb(proc.pid) + sum(pss_mb(c) for c in writers)
        t0 = time.monotonic()
        stats = drive(port, hrns, a.seconds, a.connections, proc.pid)
        elapsed = time.monotonic() - t0
        node_now, node_peak = rss_mb(proc.pid)
        writer_peak = sum(rss_mb(c)[1] for c in writers)
        now = node_now + sum(rss_mb(c)[0] for c in writers)
        peak = node_peak + writer_peak
        print("node: ivoms run (shipped conf/, demo stock of %d vouchers), %d CPUs, %s"
              % (len(hrns), os.cpu_count() or 0,
                 "%d writer process(es)" % len(writers) if writers else "writer threads"))
        print("  idle RSS        : %6.1f MB = node %.1f + writer %.1f   (limit %d MB); "
              "PSS %.1f MB (shared pages counted once)"
              % (idle, node_idle, writer_idle, IDLE_LIMIT_MB, idle_pss))
        print("  under load      : %6.1f MB peak = node %.1f + writer %.1f (VmHWM), %.1f MB most "
              "sampled, %.1f MB at the end   (limit %d MB); %d USSD requests in %.1f s (%.0f/s), "
              "%d errors, %d connections"
              % (peak, node_peak, writer_peak, max(stats["samples"] or [0.0]), now, LOAD_LIMIT_MB,
                 stats["requests"], elapsed, stats["requests"] / elapsed, stats["errors"],
                 a.connections))
        over = idle > IDLE_LIMIT_MB or peak > LOAD_LIMIT_MB
        print("  %s" % ("OVER A LIMIT" if over else "within both limits"))
        if over:
            raise SystemExit(1)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
