"""Benchmark: SOAP ActivateVoucher calls per second, with p50/p99, on loopback.

The listener (this process) serves the SOAP channel over the real core
(ActivationService, embedded ledger, a fresh SQLite store) with one client
account using HTTP Basic (a plain secret, so authentication costs
microseconds).  A load generator in a separate process keeps C HTTP/1.1
keep-alive connections busy, each posting the next ActivateVoucher envelope
when the previous answer arrived.  Every call also writes its audit row.
In the same run, the core alone (ActivationService.activate with the same
concurrency on its own store) gives the reference rate.  Bounded: N calls,
and a timeout after which the generator gives up.

    python bench/soap_load.py [--count N] [--concurrency C] [--timeout S]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    Instance, build_core, measure_core, parse_bench_args, started, peak_rss_mb, percentile, stock,
    writer_cpu)
from core.requests import ActivationRequest  # noqa: E402

USER, PASSWORD = "bench", "bench-secret"
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:t="urn:ivoms:soap:1"><s:Body><t:ActivateVoucher>'
            '<t:msisdn>%s</t:msisdn><t:hrn>%s</t:hrn><t:channelReference>%s</t:channelReference>'
            '</t:ActivateVoucher></s:Body></s:Envelope>')


def msisdn(slot: int, i: int) -> str:
    return "38165%03d%04d" % (slot, i % 10000)


def run(args) -> None:
    from twisted.internet import defer, reactor, threads
    from twisted.web import resource, server

    from core.queries import TransactionQueries
    from gateway.http import LimitedRequest
    from protocols.soap.config import SoapClient, SoapSettings
    from protocols.soap.resource import build_resource

    core_inst, soap_inst = Instance("sqlite"), Instance("sqlite")
    print("generating 2 x %d vouchers ..." % (args.count,), flush=True)
    core_hrns = stock(core_inst, args.count)
    soap_hrns = stock(soap_inst, args.count)
    out = {}

    @defer.inlineCallbacks
    def main():
        try:
            c0 = time.process_time()
            out["core"] = yield measure_core(core_inst, reactor, core_hrns, args.concurrency,
                                             lambda s, i, h: ActivationRequest(msisdn(s, i), h, "soap", channel_ref="bench", source=USER))
            out["core"]["cpu"] = time.process_time() - c0

            runner, service = build_core(soap_inst, reactor)
            yield started(runner)
            res = build_resource(service, TransactionQueries(runner), SoapSettings(
                clients=[SoapClient(USER, password=PASSWORD)]), clock=reactor)
            root = resource.Resource()
            root.putChild(b"soap", res)
            site = server.Site(root)
            site.requestFactory = LimitedRequest    # the node's requests (gateway.http)
            site.log = lambda request: None          # no access log in the measurement
            port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=256)
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
                f.write("\n".join(soap_hrns))
            cmd = [sys.executable, os.path.abspath(__file__), "--generator",
                   "--port", str(port.getHost().port), "--hrn-file", f.name,
                   "--concurrency", str(args.concurrency), "--timeout", str(args.timeout)]
            c0, w0 = time.process_time(), writer_cpu(runner)
            proc = yield threads.deferToThread(subprocess.run, cmd, capture_output=True,
                                               text=True, timeout=args.timeout + 30)
            listener_cpu = time.process_time() - c0
            spent = writer_cpu(runner) - w0
            os.unlink(f.name)
            if proc.returncode != 0:
                raise RuntimeError("generator failed: %s" % proc.stderr[-2000:])
            out["soap"] = json.loads(proc.stdout.strip().splitlines()[-1])
            out["soap"]["listener_cpu"] = listener_cpu
            out["soap"]["writer_cpu"] = spent
            yield port.stopListening()
            yield runner.stop()
            out["soap"]["batch"] = runner.units / max(1, runner.batches)
        except Exception as e:  # noqa: BLE001 - reported, then the run stops
            out["error"] = repr(e)
        finally:
            reactor.stop()

    reactor.callWhenRunning(main)
    reactor.run()
    core_inst.close()
    soap_inst.close()
    report(out, args)


def report(out, args) -> None:
    if "error" in out:
        print("ERROR:", out["error"])
        sys.exit(1)
    c, s = out["core"], out["soap"]
    print("SOAP ActivateVoucher load: %d calls, %d connections, SQLite (%s), embedded ledger"
          % (args.count, args.concurrency, c.get("writer", "?")))
    print("  core only : %7.1f activations/s  p50 %6.1f ms  p99 %6.1f ms  %s"
          % (c["rate"], c["p50"] * 1000, c["p99"] * 1000, c["codes"]))
    print("  via SOAP  : %7.1f calls/s        p50 %6.1f ms  p99 %6.1f ms  %s"
          % (s["rate"], s["p50"] * 1000, s["p99"] * 1000, s["codes"]))
    calls = sum(s["codes"].values()) or 1
    core_calls = sum(c["codes"].values()) or 1
    print("  CPU per call: listener %.0f us + writer process %.0f us, load generator %.0f us; "
          "core only %.0f + %.0f us"
          % (s["listener_cpu"] / calls * 1e6, s["writer_cpu"] / calls * 1e6,
             s["cpu"] / calls * 1e6, c["cpu"] / core_calls * 1e6,
             c["writer_cpu"] / core_calls * 1e6))
    print("  average group commit: core only %.1f units, via SOAP %.1f units"
          % (c["batch"], s["batch"]))
    print("  SOAP / core: %.2f   listener peak RSS %.0f MB   errors %d   (target >= 1500/s "
          "and >= 0.3)" % (s["rate"] / c["rate"], peak_rss_mb(), s["errors"]))


def generator(args) -> None:
    """The load generator process: C keep-alive connections, one call in flight on each."""
    import http.client
    import re
    import threading
    with open(args.hrn_file) as f:
        hrns = f.read().split()
    auth = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
    queues = [hrns[i::args.concurrency] for i in range(args.concurrency)]
    latencies, codes, errors = [], {}, [0]
    lock = threading.Lock()
    deadline = time.monotonic() + args.timeout
    code_re = re.compile(rb"<tns:resultName>([A-Z_]+)</tns:resultName>")

    def worker(slot):
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
        for i, hrn in enumerate(queues[slot]):
            if time.monotonic() > deadline:
                break
            body = (ENVELOPE % (msisdn(slot, i), hrn, "b-%d-%d" % (slot, i))).encode()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/soap", body, {"Content-Type": "text/xml; charset=utf-8",
                                                     "Authorization": auth,
                                                     "SOAPAction": '"ActivateVoucher"'})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
                continue
            dt = time.perf_counter() - t0
            m = code_re.search(data)
            name = m.group(1).decode() if m and resp.status == 200 else "HTTP_%d" % resp.status
            with lock:
                latencies.append(dt)
                codes[name] = codes.get(name, 0) + 1
        conn.close()

    threads_ = [threading.Thread(target=worker, args=(s,)) for s in range(args.concurrency)]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    latencies.sort()
    print(json.dumps(dict(rate=len(latencies) / dt, p50=percentile(latencies, 50),
                          p99=percentile(latencies, 99), codes=codes, errors=errors[0],
                          seconds=dt, cpu=cpu)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="calls (and vouchers) per part")
    ap.add_argument("--concurrency", type=int, default=16, help="connections / calls in flight")
    ap.add_argument("--timeout", type=float, default=120.0, help="give up after this many s")
    args = parse_bench_args(ap)
    (generator if args.generator else run)(args)


if __name__ == "__main__":
    main()
