"""Fault drill: restart PostgreSQL under activation load (issue 19, point 4).

Runs activations at concurrency C against a PostgreSQL cluster, restarts the
cluster in the middle (C{--restart}, by default C{pg_ctlcluster 15 main
restart}), and prints per half-second how many activations succeeded and how
many failed with 152 (DATABASE_UNAVAILABLE), the slowest failure, when service
came back, the runner's C{db_unavailable} counter, and a consistency check:
every used voucher credited exactly once with a successful transaction, none
pending.  Use a cluster of its own: every session on it is cut off.

    IVOMS_PG_ADMIN_URL=postgresql+psycopg://postgres@127.0.0.1:5439/postgres \\
    python bench/pg_restart.py --restart "pg_ctlcluster 15 ivfault restart"
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Instance, NoBars, credit_check, run_on_reactor, stock  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vouchers", type=int, default=60_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--at", type=float, default=2.0, help="restart this many seconds in")
    ap.add_argument("--restart", default="pg_ctlcluster 15 main restart")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    inst = Instance("postgresql")
    try:
        hrns = stock(inst, a.vouchers)
        report = drive(inst, hrns, a)
        for line in report:
            print(line)
    finally:
        inst.close()


def drive(inst, hrns, a) -> list[str]:
    from twisted.internet import defer, reactor, threads

    from billing.ledger import EmbeddedLedger
    from core.activation import ActivationService
    from core.normalise import MsisdnRules
    from core.requests import ActivationRequest
    from core.units import UnitRunner

    runner = UnitRunner(inst.store, reactor, workers=a.workers)
    service = ActivationService(
        runner, EmbeddedLedger(runner, clock=reactor), inst.cipher, clock=reactor,
        msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]), hrn_lengths={14},
        fraud_settings=NoBars())
    events = []          # (t, code, latency)
    it = iter(range(len(hrns)))
    out = []

    async def worker(t0, until):
        for i in it:
            if time.perf_counter() > until:
                return
            s = time.perf_counter()
            r = await service.activate(ActivationRequest(msisdn="38164%07d" % (i % 50_000),
                                                         hrn=hrns[i], channel="cli"))
            events.append((s - t0, int(r.code), time.perf_counter() - s))

    def restart():
        s = time.perf_counter()
        subprocess.run(shlex.split(a.restart), check=True)
        return s, time.perf_counter()

    async def run():
        runner.start()
        t0 = time.perf_counter()
        until = t0 + a.seconds
        work = defer.gatherResults([defer.ensureDeferred(worker(t0, until))
                                    for _ in range(a.concurrency)])
        await defer.ensureDeferred(_sleep(reactor, a.at))
        began, ended = await threads.deferToThread(restart)
        await work
        await runner.stop()
        out.append("restart command: %.2f s to %.2f s" % (began - t0, ended - t0))
        slots: dict = {}
        for t, code, _ in events:
            slots.setdefault(int(t * 2), {}).setdefault(code, 0)
            slots[int(t * 2)][code] += 1
        for k in sorted(slots):
            out.append("  %4.1f s  %s" % (k / 2, dict(sorted(slots[k].items()))))
        fails = [lat for _, code, lat in events if code == 152]
        total = {}
        for _, code, _ in events:
            total[code] = total.get(code, 0) + 1
        out.append("results: %s" % dict(sorted(total.items())))
        out.append("slowest 152: %.0f ms" % (max(fails) * 1000 if fails else 0))
        back = [t for t, code, _ in events if code == 0 and t > ended - t0]
        if back:
            out.append("first success after the restart command returned: +%.0f ms"
                       % ((min(back) - (ended - t0)) * 1000))
        out.append("runner.db_unavailable: %d" % runner.db_unavailable)

    run_on_reactor(run)
    out.append(credit_check(inst.store))
    return out


async def _sleep(reactor, seconds):
    from twisted.internet import task
    await task.deferLater(reactor, seconds, lambda: None)


if __name__ == "__main__":
    main()
