"""Benchmark: memory and time of a storm of wrong passwords against Argon2id hashes.

Each mode runs in its own process (so its peak RSS is its own), with the
production Argon2id parameters (argon2-cffi defaults: 64 MiB, 3 passes):

- C{shared}: every check on the reactor's shared thread pool (how SOAP and
  the GUI checked passwords before the dedicated pool), all accepted;
- C{pool}: L{core.passwords.PasswordPool} with its defaults (2 threads,
  32 queued); checks beyond the bound are refused at once.

Prints, per mode, checks run, checks refused, wall time and the process's
peak RSS (VmHWM) against its RSS before the storm.

    python bench/auth_storm.py [--checks 96]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _child(mode: str, checks: int) -> dict:
    from twisted.internet import defer, reactor, threads

    from core.passwords import PasswordPool, PasswordPoolBusy
    from core.users import hash_password, verify_password
    stored = hash_password("the right password")
    before = _rss_mb("VmRSS")
    pool = PasswordPool(reactor) if mode == "pool" else None
    out = {"mode": mode, "checks": checks, "refused": 0}

    def run():
        started = time.monotonic()
        ds = []
        for i in range(checks):
            if pool is None:
                d = threads.deferToThread(verify_password, stored, "wrong %d" % i)
            else:
                d = pool.verify(stored, "wrong %d" % i)
            ds.append(d.addErrback(lambda f: f.trap(PasswordPoolBusy) and None))
        d = defer.DeferredList(ds)

        def done(_):
            out["seconds"] = round(time.monotonic() - started, 2)
            out["refused"] = pool.refused if pool is not None else 0
            if pool is not None:
                pool.stop()
            reactor.stop()
        d.addCallback(done)
    reactor.callWhenRunning(run)
    reactor.run()
    out["rss_before_mb"] = round(before, 1)
    out["rss_peak_mb"] = round(_rss_mb("VmHWM"), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checks", type=int, default=96)
    ap.add_argument("--child", choices=["shared", "pool"])
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.checks)))
        return
    env = dict(os.environ, PYTHONPATH=REPO)
    print("mode     checks  refused  seconds  RSS before  RSS peak")
    for mode in ("shared", "pool"):
        r = json.loads(subprocess.run(
            [sys.executable, __file__, "--child", mode, "--checks", str(args.checks)],
            env=env, check=True, capture_output=True, text=True).stdout)
        print("%-8s %6d  %7d  %7.2f  %7.1f MB  %6.1f MB" % (
            mode, r["checks"], r["refused"], r["seconds"], r["rss_before_mb"],
            r["rss_peak_mb"]))


if __name__ == "__main__":
    main()
