"""Benchmark: end-to-end activations with Diameter or UCIP billing to the simulator in another process.

Pre-generates vouchers in a fresh SQLite store, starts C{python -m
billing.sim} on 127.0.0.1 (its own process), and runs C concurrent
activations through the real ActivationService whose billing port is
DiameterBilling (CCR EVENT_REQUEST per activation over one TCP peer
connection).  Prints activations/s, activation p50/p99, CCR p50/p99
(credit call to CCA, measured in the gateway process) and the CPU each
process used per activation over the timed phase.

    python bench/billing.py [--vouchers 20000] [--activations 20000]
                            [--concurrency 128] [--window 512] [--latency 0]
                            [--connector diameter|ucip]

With C{--connector ucip} each activation is one UpdateBalanceAndDate POST
over persistent HTTP/1.1 connections (C{--window} of them) to the
simulator's AIR role.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.activate import prepare  # noqa: E402
from bench.common import NoBars  # noqa: E402
from bench.common import cpu_seconds, run_on_reactor, Instance, peak_rss_mb, percentile  # noqa: E402


class TimedBilling:
    """Wraps a billing port and records each credit's duration."""

    def __init__(self, inner):
        self.inner = inner
        self.ccr: list[float] = []

    def credit(self, *args, **kw):
        t0 = time.perf_counter()
        d = self.inner.credit(*args, **kw)

        def done(r):
            self.ccr.append(time.perf_counter() - t0)
            return r
        return d.addBoth(done)

    def lookup(self, key, **kw):
        return self.inner.lookup(key, **kw)


def run(inst, hrns, n, concurrency, port, window, connector="diameter", sim_pid=None):
    from twisted.internet import defer, reactor

    from billing.diameter.node.client import DiameterClient
    from billing.diameter.config import from_mapping
    from billing.diameter.node.connector import DiameterBilling
    from core.activation import ActivationService
    from core.normalise import MsisdnRules
    from core.requests import ActivationRequest
    from core.units import UnitRunner

    local, credit, ts, _ = from_mapping({
        "origin_host": "ivoms.bench.localdomain", "origin_realm": "localdomain",
        "peers": [{"host": "127.0.0.1", "port": port}], "window": window,
        "validity_avps": [{"vendor_id": 32473, "code": 1}], "request_timeout": 10.0})
    if connector == "ucip":
        from bench.billing_ucip import UcipBench
        client = UcipBench(port, reactor, window)
        billing = TimedBilling(client.billing)
    else:
        client = DiameterClient(local, ts, reactor=reactor)
        billing = TimedBilling(DiameterBilling(client, local, credit, clock=reactor))
    runner = UnitRunner(inst.store, reactor, workers=1)
    service = ActivationService(
        runner, billing, inst.cipher, clock=reactor,
        msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]), hrn_lengths={14},
        fraud_settings=NoBars(), billing_timeout=15.0)
    lat: list[float] = []
    codes: dict = {}
    it = iter(range(n))
    out = {}

    async def worker():
        for i in it:
            t0 = time.perf_counter()
            req = ActivationRequest(msisdn="38164%07d" % (i % 50_000), hrn=hrns[i], channel="cli")
            res = await service.activate(req)
            lat.append(time.perf_counter() - t0)
            codes[int(res.code)] = codes.get(int(res.code), 0) + 1

    async def main():
        runner.start()
        client.startService()
        if not await client.when_open(10):
            raise RuntimeError("simulator peer did not open")
        cpu0 = cpu_seconds(), cpu_seconds(sim_pid) if sim_pid else 0.0
        t0 = time.perf_counter()
        await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(concurrency)])
        out["elapsed"] = time.perf_counter() - t0
        out["cpu"] = (cpu_seconds() - cpu0[0],
                      cpu_seconds(sim_pid) - cpu0[1] if sim_pid else float("nan"))
        await client.stopService()
        await runner.stop()

    run_on_reactor(main)
    return out["elapsed"], sorted(lat), sorted(billing.ccr), codes, client.stats, out["cpu"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vouchers", type=int, default=20_000)
    p.add_argument("--activations", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--window", type=int, default=None,
                   help="Diameter: outstanding requests (512); UCIP: HTTP connections per AIR "
                        "(16, the shipped pool_size)")
    p.add_argument("--latency", type=float, default=0.0, help="simulator answer latency (s)")
    p.add_argument("--connector", choices=("diameter", "ucip"), default="diameter")
    a = p.parse_args(argv)
    if a.window is None:
        a.window = 16 if a.connector == "ucip" else 512
    n = min(a.activations, a.vouchers)
    from billing.sim.process import SimProcess
    inst = Instance("sqlite")
    sim = None
    try:
        print("preparing %d vouchers ..." % a.vouchers, flush=True)
        hrns = prepare(inst, a.vouchers, 0)
        sim = SimProcess.spawn("--latency", str(a.latency), ucip=a.connector == "ucip")
        port = sim.ucip_port if a.connector == "ucip" else sim.diameter_port
        elapsed, lat, ccr, codes, stats, cpu = run(inst, hrns, n, a.concurrency, port,
                                                   a.window, a.connector, sim.proc.pid)
    finally:
        if sim is not None:
            sim.stop()
        inst.close()
    ms = lambda v: v * 1000  # noqa: E731
    print("activations: %d in %.2f s = %.0f activations/s (concurrency %d, SQLite, "
          "%s to billing-sim in another process)" % (n, elapsed, n / elapsed, a.concurrency,
                                              "UCIP" if a.connector == "ucip" else "Diameter"))
    print("activation latency: p50 %.1f ms  p99 %.1f ms" % (ms(percentile(lat, 50)),
                                                             ms(percentile(lat, 99))))
    print("credit round trip:  p50 %.1f ms  p99 %.1f ms  (%d credits)" % (
        ms(percentile(ccr, 50)), ms(percentile(ccr, 99)), len(ccr)))
    print("CPU per activation: gateway %.0f us, simulator %.0f us (%.0f%% and %.0f%% of one "
          "core over the run; load average %.1f)" % (
              cpu[0] / n * 1e6, cpu[1] / n * 1e6, 100 * cpu[0] / elapsed, 100 * cpu[1] / elapsed,
              os.getloadavg()[0]))
    print("result codes: %s" % dict(sorted(codes.items())))
    print("client stats: %s" % dict(stats))
    print("peak RSS: %.0f MB" % peak_rss_mb())


if __name__ == "__main__":
    main()
