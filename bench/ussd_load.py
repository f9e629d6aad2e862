"""Benchmark: USSD direct-code dialogues per second through the HTTP bridge (POST /ussd).

The bridge runs in this process on a 127.0.0.1 listener (the node's
L{gateway.http.channel_site}, without its access log) with the real core
(ActivationService, embedded ledger, a fresh SQLite store). A load generator (a
separate process: a bare Twisted HTTP/1.1 client on keep-alive connections) opens C
connections and keeps one dialogue in flight on each: a C{*123*HRN#} begin, answered
by an end carrying the result -- one whole USSD dialogue per request. Request bodies
are encoded before the clock starts. The C{--form} chooses the envelope: C{tcap} (a
whole TCAP Begin as BER, answered by a TCAP End; the default), C{map} (a bare
USSD-Arg) or C{text} (JSON with plain text). In the same run, the core alone
(ActivationService.activate at the same concurrency, same store shape) gives the
reference rate. Prints dialogues/s, p50/p99 from request sent to answer received,
the core-only rate and the ratio. Everything stays on 127.0.0.1 and stops by itself.

    python bench/ussd_load.py [--count N] [--connections C] [--form tcap|map|text]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    BenchType, Instance, build_core, drive_clients, load_summary, measure_core, writer_cpu,
    parse_bench_args, started, peak_rss_mb, run_generator, stock)
from core.requests import ActivationRequest  # noqa: E402

SERVICE_CODE = "123"


def msisdn(connection: int) -> str:
    return "38164%07d" % (connection,)


# -- the server side ------------------------------------------------------------

def successes(inst) -> int:
    """USSD transactions that ended in SUCCESS."""
    from sqlalchemy import func, select

    from core.schema import txn
    return inst.store.run_sync(lambda tx: tx.execute(
        select(func.count()).select_from(txn)
        .where(txn.c.channel == "ussd", txn.c.result_code == 0)).scalar())


def thread_cpu() -> dict:
    """CPU seconds used so far by each live thread of this process, by thread name:
    C{(user, system)}."""
    import threading
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for t in threading.enumerate():
        try:
            with open("/proc/self/task/%d/stat" % t.native_id) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, TypeError):
            continue
        out[t.name] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return out


def _spent(before: dict, after: dict) -> dict:
    """CPU seconds each thread used between two L{thread_cpu} readings (threads
    that started in between count from zero)."""
    return {name: (user - before.get(name, (0.0, 0.0))[0], system - before.get(name, (0.0, 0.0))[1])
            for name, (user, system) in after.items()}


def run(args) -> None:
    from twisted.internet import defer, reactor
    from twisted.web import resource

    from gateway.http import channel_site
    from protocols.common.peers import PeerSettings
    from protocols.ussd.config import UssdSettings
    from protocols.ussd.resource import build_resource

    core_inst, ussd_inst = Instance("sqlite"), Instance("sqlite")
    print("generating 2 x %d vouchers ..." % (args.count,), flush=True)
    core_hrns = stock(core_inst, args.count)
    ussd_hrns = stock(ussd_inst, args.count)
    out = {}

    @defer.inlineCallbacks
    def main():
        try:
            # 1. core only
            c0, t0 = time.process_time(), thread_cpu()
            out["core"] = yield measure_core(core_inst, reactor, core_hrns, args.connections,
                                             lambda s, i, h: ActivationRequest(msisdn(s), h, "ussd", channel_ref="bench"))
            out["core"]["cpu"] = time.process_time() - c0
            out["core"]["threads"] = _spent(t0, thread_cpu())
            # 2. through the HTTP bridge
            runner, service = build_core(ussd_inst, reactor)
            yield started(runner)
            gateway = PeerSettings(name="bench-gateway", networks=["127.0.0.1"])
            bridge = build_resource(service, UssdSettings(peers=[gateway]), clock=reactor,
                                    hrn_lengths={BenchType.hrn_length})
            # the node's listener (gateway.http), without its access log
            site = channel_site(resource.Resource(), [(b"ussd", bridge)], max_body=1 << 20)
            site.log = lambda request: None
            port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=256)
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
                f.write("\n".join(ussd_hrns))
                hrn_file = f.name
            try:
                c0, t0, w0 = time.process_time(), thread_cpu(), writer_cpu(runner)
                out["ussd"] = yield _generator(port.getHost().port, hrn_file, args)
                out["ussd"]["cpu"] = time.process_time() - c0
                out["ussd"]["writer_cpu"] = writer_cpu(runner) - w0
                out["ussd"]["threads"] = _spent(t0, thread_cpu())
            finally:
                os.unlink(hrn_file)
            bridge.dialogues.stop()
            yield port.stopListening()
            yield runner.stop()
            out["ussd"]["batch"] = runner.units / max(1, runner.batches)
            out["ussd"]["credited"] = successes(ussd_inst)
        finally:
            reactor.stop()

    reactor.callWhenRunning(main)
    reactor.callLater(args.timeout + 30, reactor.stop)       # never hang
    reactor.run()
    core_inst.close()
    ussd_inst.close()
    report(out, args)


def _generator(port: int, hrn_file: str, args):
    """Run the load generator process; a Deferred firing with its JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--generator", "--port", str(port),
           "--hrn-file", hrn_file, "--connections", str(args.connections),
           "--form", args.form, "--timeout", str(args.timeout - 5)]

    return run_generator(cmd, args.timeout)


def report(out, args) -> None:
    core, ussd = out.get("core"), out.get("ussd")
    print("USSD load: %d direct-code dialogues each, %d connections, form %s, SQLite (%s), "
          "embedded ledger, %d CPUs" % (args.count, args.connections, args.form,
                                        (core or {}).get("writer", "?"), os.cpu_count() or 0))
    if core:
        print("  core only  : %8.0f activations/s  p50 %6.1f ms  p99 %6.1f ms   %s"
              % (core["rate"], core["p50"] * 1000, core["p99"] * 1000, core["codes"]))
    if ussd:
        print("  via /ussd  : %8.0f dialogues/s    p50 %6.1f ms  p99 %6.1f ms   "
              "(request sent -> answer received; %d answers, %d errors, %d credited)"
              % (ussd["rate"], ussd["p50"] * 1000, ussd["p99"] * 1000, ussd["answers"],
                 ussd["errors"], ussd["credited"]))
        n = max(1, ussd["answers"])
        print("  CPU per dialogue: node %.0f us + writer process %.0f us, load generator %.0f us%s"
              % (ussd["cpu"] / n * 1e6, ussd["writer_cpu"] / n * 1e6,
                 ussd["generator_cpu"] / n * 1e6,
                 ("; core only %.0f + %.0f us" % (core["cpu"] / args.count * 1e6,
                                                  core["writer_cpu"] / args.count * 1e6))
                 if core else ""))
        print("  node CPU by thread: %s%s" % (_by_thread(ussd["threads"], n), (
            "; core only %s" % _by_thread(core["threads"], args.count)) if core else ""))
        if ussd.get("error_samples"):
            print("  error samples: %s" % (ussd["error_samples"],))
    if core and ussd:
        print("  average group commit: core only %.1f units, via /ussd %.1f units"
              % (core["batch"], ussd["batch"]))
        print("  ratio /ussd / core: %.2f   (target >= 2000/s and >= 0.35)"
              % (ussd["rate"] / core["rate"],))
    print("  server peak RSS %.0f MB" % (peak_rss_mb(),))


def _by_thread(threads: dict, n: int) -> str:
    return ", ".join("%s %.0f us (system %.0f)" % (name, (user + system) / n * 1e6,
                                                   system / n * 1e6)
                     for name, (user, system) in sorted(threads.items()) if user + system > 0)


# -- the load generator (child process) --------------------------------------------

def request_bodies(hrns, connections, form):
    """Pre-encoded HTTP requests, one per HRN: C{(raw request bytes, dialogue id)}."""
    from protocols.ussd.map import encode_ussd_arg
    from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as AC
    from protocols.ussd.tcap import Dialogue, Invoke, TcapMessage, encode_tcap
    out = []
    for i, hrn in enumerate(hrns):
        number = "+" + msisdn(i % connections)
        text = "*%s*%s#" % (SERVICE_CODE, hrn)
        did = "bench-%d" % i
        if form == "tcap":
            body = encode_tcap(TcapMessage(
                "begin", otid=(i + 1).to_bytes(4, "big"),
                dialogue=Dialogue("request", application_context=AC),
                components=(Invoke(1, 59, encode_ussd_arg(text, msisdn=number)),)))
            headers = "Content-Type: application/octet-stream\r\nX-USSD-Dialogue-Id: %s\r\n" \
                % did
        elif form == "map":
            body = encode_ussd_arg(text, msisdn=number)
            headers = ("Content-Type: application/octet-stream\r\nX-USSD-Dialogue-Id: %s\r\n"
                       "X-USSD-Operation: begin\r\n" % did)
        else:
            body = json.dumps({"dialogue_id": did, "operation": "begin", "msisdn": number,
                               "text": text}).encode()
            headers = "Content-Type: application/json\r\n"
        head = ("POST /ussd HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %d\r\n\r\n"
                % (headers, len(body))).encode()
        out.append(head + body)
    return out


def _answer_ok(form, status, headers, body) -> bool:
    if status != 200:
        return False
    if form in ("tcap", "map"):
        return headers.get(b"x-ussd-operation") == b"end" and body[:1] in (b"\x64", b"\x30")
    return b'"operation": "end"' in body and b"credited" in body


def headers_chunked(lines) -> bool:
    return any(line.lower().startswith(b"transfer-encoding:") for line in lines[1:])


def generator(args) -> None:
    from twisted.internet import reactor
    from twisted.internet.protocol import Protocol

    with open(args.hrn_file) as f:
        hrns = f.read().split()
    requests = request_bodies(hrns, args.connections, args.form)
    queues = [list(range(i, len(requests), args.connections))
              for i in range(args.connections)]
    latencies: list[float] = []
    state = {"errors": 0, "open": args.connections, "t0": None, "connected": 0,
             "samples": []}

    class Load(Protocol):
        """One keep-alive connection: one request in flight, the next on its answer."""

        def __init__(self, index):
            self.index = index
            self.buf = b""
            self.sent_at = 0.0

        def connectionMade(self):
            self.transport.setTcpNoDelay(True)
            state["connected"] += 1
            if state["connected"] == args.connections:
                state["t0"] = time.perf_counter()
                state["c0"] = time.process_time()
                for p in protocols:
                    p.send()

        def send(self):
            queue = queues[self.index]
            if not queue:
                state["open"] -= 1
                self.transport.loseConnection()
                if state["open"] == 0:
                    state["t1"] = time.perf_counter()
                    state["c1"] = time.process_time()
                    reactor.stop()
                return
            self.sent_at = time.perf_counter()
            self.transport.write(requests[queue.pop(0)])

        def dataReceived(self, data):
            self.buf += data
            try:
                self._answers()
            except (ValueError, IndexError) as e:   # not HTTP we understand: give up here
                state["errors"] += 1
                state["samples"].append("unparsable answer: %s" % (e,))
                queues[self.index].clear()
                self.send()

        def _answers(self):
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = self.buf[:end].split(b"\r\n")
                if headers_chunked(lines):
                    raise ValueError("chunked answers are not expected")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0"))
                if len(self.buf) < end + 4 + length:
                    return
                body = self.buf[end + 4:end + 4 + length]
                self.buf = self.buf[end + 4 + length:]
                status = int(lines[0].split()[1])
                latencies.append(time.perf_counter() - self.sent_at)
                if not _answer_ok(args.form, status, headers, body):
                    state["errors"] += 1
                    if len(state["samples"]) < 3:
                        state["samples"].append("%d %r" % (status, body[:120]))
                self.send()

    protocols = []
    drive_clients(reactor, args.port, args.connections, Load, protocols, args.timeout - 5)
    print(json.dumps(dict(load_summary(latencies, state), answers=len(latencies),
                          errors=state["errors"], error_samples=state["samples"],
                          generator_cpu=state.get("c1", time.process_time()) - state.get("c0", 0.0))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5000, help="dialogues per phase")
    ap.add_argument("--connections", type=int, default=16,
                    help="concurrent keep-alive connections (dialogues in flight)")
    ap.add_argument("--form", choices=("tcap", "map", "text"), default="tcap")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = parse_bench_args(ap)
    if args.count < 1 or args.connections < 1 or args.count > 1_000_000:
        ap.error("--count must be 1..1000000 and --connections at least 1")
    args.connections = min(args.connections, args.count)
    (generator if args.generator else run)(args)


if __name__ == "__main__":
    main()
