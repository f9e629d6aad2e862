"""Benchmark: activation latency while the expiry job expires 1 M vouchers, against without it.

In one process and one run, over SQLite (synchronous=FULL) with the embedded
ledger: fills C{--expiring} vouchers already past their date (a fast raw
fill), generates real vouchers to activate, then

1. drives C{--baseline} activations at C{--concurrency} through the real
   ActivationService and records each latency (no job running);
2. starts the housekeeping C{expire} job (the real Housekeeper, chunks of
   C{--chunk-size} on the same writer) and keeps driving activations until
   the job ends, recording their latencies;

and prints p50/p99/max of both phases, the job's duration and rate.

    python bench/housekeeping.py [--expiring 1000000] [--vouchers 150000] [--baseline 20000]
                                 [--concurrency 16] [--chunk-size 1000] [--chunk-pause 0.05]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    run_on_reactor, Instance, NoBars, make_runner, peak_rss_mb, started, percentile, raw_fill, stock,
    writer_process)


def run(inst, hrns, a):
    from twisted.internet import defer, reactor

    from billing.ledger import EmbeddedLedger
    from core.activation import ActivationService
    from core.housekeeping.housekeeper import Housekeeper
    from core.normalise import MsisdnRules
    from core.requests import ActivationRequest
    from gateway.config_housekeeping import HousekeepingSettings

    runner = make_runner(inst.store, reactor)
    service = ActivationService(
        runner, EmbeddedLedger(runner, clock=reactor), inst.cipher, clock=reactor,
        msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]), hrn_lengths={14},
        fraud_settings=NoBars())
    hk = dataclasses.replace(HousekeepingSettings(), chunk_size=a.chunk_size,
                             chunk_pause=a.chunk_pause)
    keeper = Housekeeper(settings=hk, node="bench", runner=runner, store=inst.store,
                         reactor=reactor, clock=reactor)
    feed = iter(enumerate(hrns))
    out = {}

    async def drive(lat, codes, until):
        for i, hrn in feed:
            t0 = time.perf_counter()
            res = await service.activate(ActivationRequest(
                msisdn="38164%07d" % (i % 50_000), hrn=hrn, channel="cli"))
            lat.append(time.perf_counter() - t0)
            codes[int(res.code)] = codes.get(int(res.code), 0) + 1
            if until():
                return

    async def phase(until):
        lat, codes = [], {}
        t0 = time.perf_counter()
        await defer.gatherResults([defer.ensureDeferred(drive(lat, codes, until))
                                   for _ in range(a.concurrency)])
        return sorted(lat), codes, time.perf_counter() - t0

    async def main():
        runner.start()
        await started(runner)             # as a started node: writer up, heap settled
        base_n = [0]

        def base_done():
            base_n[0] += 1
            return base_n[0] >= a.baseline
        out["base"] = await phase(base_done)
        job = keeper.run("expire")
        t0 = time.perf_counter()
        job.addCallback(lambda r: out.__setitem__("job", (r, time.perf_counter() - t0)))
        out["during"] = await phase(lambda: "job" in out)
        out["ran_out"] = "job" not in out
        await job
        await runner.stop()

    run_on_reactor(main)
    return out


def _line(name, lat, codes, elapsed):
    return ("%-22s %6d activations in %6.1f s (%5.0f/s)  p50 %6.1f  p99 %7.1f  max %7.1f ms  %s"
            % (name, len(lat), elapsed, len(lat) / elapsed, percentile(lat, 50) * 1000,
               percentile(lat, 99) * 1000, lat[-1] * 1000 if lat else float("nan"), codes))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expiring", type=int, default=1_000_000)
    ap.add_argument("--vouchers", type=int, default=150_000, help="real vouchers to activate")
    ap.add_argument("--baseline", type=int, default=20_000, help="activations without the job")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--chunk-pause", type=float, default=0.05)
    a = ap.parse_args()
    inst = Instance("sqlite")
    try:
        t0 = time.perf_counter()
        raw_fill(inst, a.expiring, state="available", expires_at=int(time.time() * 1000) - 1000)
        t1 = time.perf_counter()
        hrns = stock(inst, a.vouchers, expires_in_days=30)
        t2 = time.perf_counter()
        print("fill: %d expiring vouchers in %.1f s; %d vouchers to activate generated in %.1f s"
              % (a.expiring, t1 - t0, a.vouchers, t2 - t1))
        out = run(inst, hrns, a)
        res, secs = out["job"]
        print("backend: sqlite (synchronous=FULL), one writer (%s); concurrency %d; chunk %d, "
              "pause %.3f s" % ("a process" if writer_process(inst.store) else "a thread",
                                a.concurrency, a.chunk_size, a.chunk_pause))
        print(_line("without the job:", *out["base"]))
        print(_line("during the expiry job:", *out["during"]))
        print("expiry job:             %s, %d rows in %.1f s (%.0f rows/s): %s"
              % (res.outcome, res.rows, secs, res.rows / secs, res.message))
        if out["ran_out"]:
            print("NOTE: the activation vouchers ran out before the job ended; raise --vouchers")
        b, d = out["base"][0], out["during"][0]
        print("p99 ratio (during / without): %.2f" % (percentile(d, 99) / percentile(b, 99)))
        print("peak RSS: %.0f MB" % peak_rss_mb())
    finally:
        inst.close()


if __name__ == "__main__":
    main()
