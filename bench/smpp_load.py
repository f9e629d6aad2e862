"""Benchmark: end-to-end SMS activations through the SMPP server-mode listener.

A load generator (a separate process, our own codec on a bare Twisted
client) binds B transceivers to the listener and keeps W MOs in flight on
each (default 4 x 10): it sends C{RECHARGE <hrn>} as submit_sm, and the
next one on a slot only when that slot's reply (deliver_sm) arrived.  The
listener runs the real core (ActivationService, embedded ledger, a fresh
SQLite store).  In the same run, the core alone (ActivationService.activate
with the same B x W concurrency, same store shape) gives the reference
rate.  Prints activations/s, p50/p99 from MO sent to MT reply received, the
core-only rate and the ratio; and, to show where the time goes, the CPU per
activation of the listener process, the load generator and the core alone,
and the average number of units per group commit in each phase.

    python bench/smpp_load.py [--count N] [--binds B] [--window W]
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    Instance, build_core, drive_clients, load_summary, measure_core, parse_bench_args, started,
    run_generator, stock, writer_cpu)

from core.requests import ActivationRequest  # noqa: E402

SHORT_CODE = "1555"


def msisdn(bind: int, slot: int) -> str:
    return "38164%03d%04d" % (bind, slot)


# -- the server side ------------------------------------------------------------

def run(args) -> None:
    from twisted.internet import defer, reactor

    from protocols.smpp.config import (
        AccountSettings, ServerSettings, SessionSettings, SmppSettings)
    from protocols.smpp.service import make_smpp_service

    core_inst, smpp_inst = Instance("sqlite"), Instance("sqlite")
    print("generating 2 x %d vouchers ..." % (args.count,), flush=True)
    core_hrns = stock(core_inst, args.count)
    smpp_hrns = stock(smpp_inst, args.count)
    out = {}

    @defer.inlineCallbacks
    def main():
        try:
            # 1. core only
            c0 = time.process_time()
            out["core"] = yield measure_core(
                core_inst, reactor, core_hrns, args.binds * args.window,
                lambda s, i, h: ActivationRequest(msisdn(s // args.window, s % args.window), h,
                                                  "sms", channel_ref="bench"))
            out["core"]["cpu"] = time.process_time() - c0
            # 2. through SMPP
            runner, service = build_core(smpp_inst, reactor)
            yield started(runner)
            settings = SmppSettings(
                server=ServerSettings(enabled=True, endpoint="tcp:0:interface=127.0.0.1",
                                      accounts=[AccountSettings(system_id="bench",
                                                                password="bench",
                                                                max_binds=args.binds)]),
                session=SessionSettings(window=max(10, args.window)))
            smpp = make_smpp_service(settings, service, reactor, hrn_lengths=[14], runner=runner)
            smpp.startService()
            port = yield smpp.server.when_listening()
            with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
                f.write("\n".join(smpp_hrns))
                hrn_file = f.name
            c0, w0 = time.process_time(), writer_cpu(runner)
            proc = yield _generator(reactor, port.getHost().port, hrn_file, args)
            os.unlink(hrn_file)
            out["smpp"] = proc
            proc["generator_cpu"] = proc.pop("cpu")
            proc["cpu"] = time.process_time() - c0
            proc["writer_cpu"] = writer_cpu(runner) - w0
            out["smpp"]["channel"] = dict(smpp.channel.counters)
            yield smpp.stopService()
            yield runner.stop()
            proc["batch"] = runner.units / max(1, runner.batches)
        finally:
            reactor.stop()

    reactor.callWhenRunning(main)
    reactor.run()
    core_inst.close()
    smpp_inst.close()
    report(out, args)


def _generator(reactor, port: int, hrn_file: str, args):
    """Run the load generator process; a Deferred firing with its JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--generator", "--port", str(port),
           "--hrn-file", hrn_file, "--binds", str(args.binds), "--window", str(args.window),
           "--timeout", str(args.timeout - 5)]

    return run_generator(cmd, args.timeout)


def report(out, args) -> None:
    core, smpp = out.get("core"), out.get("smpp")
    print("SMPP load: %d activations each, %d binds x window %d, SQLite (%s), embedded ledger"
          % (args.count, args.binds, args.window, (core or {}).get("writer", "?")))
    if core:
        print("  core only : %8.0f activations/s   p50 %6.1f ms  p99 %6.1f ms   %s"
              % (core["rate"], core["p50"] * 1000, core["p99"] * 1000, core["codes"]))
    if smpp:
        print("  via SMPP  : %8.0f activations/s   p50 %6.1f ms  p99 %6.1f ms   (MO sent -> "
              "MT reply received; %d replies, %d errors)"
              % (smpp["rate"], smpp["p50"] * 1000, smpp["p99"] * 1000, smpp["replies"],
                 smpp["errors"]))
        print("  reply texts: %s" % (smpp["texts"],))
        n = smpp["replies"] or 1
        print("  CPU per activation: listener %.0f us + writer process %.0f us, load generator "
              "%.0f us%s"
              % (smpp["cpu"] / n * 1e6, smpp["writer_cpu"] / n * 1e6,
                 smpp["generator_cpu"] / n * 1e6,
                 ("; core only %.0f + %.0f us" % (core["cpu"] / args.count * 1e6,
                                                  core["writer_cpu"] / args.count * 1e6))
                 if core else ""))
    if core and smpp:
        print("  average group commit: core only %.1f units, via SMPP %.1f units"
              % (core["batch"], smpp["batch"]))
        print("  ratio SMPP / core: %.2f   (target >= 2500/s and >= 0.6)"
              % (smpp["rate"] / core["rate"],))


# -- the load generator (child process) --------------------------------------------

def generator(args) -> None:
    from twisted.internet import reactor
    from twisted.internet.protocol import Protocol

    from protocols.smpp.codec import (
        BindTransceiver, DeliverSm, DeliverSmResp, EnquireLink, EnquireLinkResp,
        SubmitSm, SubmitSmResp, decode_pdu, encode_pdu, split_frames)

    with open(args.hrn_file) as f:
        hrns = f.read().split()
    slots = args.binds * args.window
    # every MO encoded before the clock starts: the generator's own CPU stays
    # small beside the listener it measures on the same cores
    queues = []
    for i in range(slots):
        b, s = divmod(i, args.window)
        number = msisdn(b, s // args.per_number)
        queues.append([(number, encode_pdu(SubmitSm(
            source_addr=number, source_addr_ton=1, source_addr_npi=1,
            destination_addr=SHORT_CODE, short_message=b"RECHARGE " + h.encode())))
            for h in hrns[i::slots]])
    latencies: list[float] = []
    SUBMIT_SM_RESP_ID = SubmitSmResp.command_id.to_bytes(4, "big")
    DELIVER_SM_RESP = encode_pdu(DeliverSmResp())
    texts: dict[str, int] = {}
    error_statuses: dict[str, int] = {}   # submit_sm_resp command_status -> count
    by_port: dict[int, int] = {}       # replies per listener port (several nodes)
    state = {"errors": 0, "stale": 0, "open": slots, "t0": None, "bound": 0, "closed": 0}
    seen_refs: set[bytes] = set()      # "Ref <txn_id>" of the replies counted

    def stop():
        if not state.get("stopping"):
            state["stopping"] = True
            reactor.stop()

    class Load(Protocol):
        def __init__(self, bind: int) -> None:
            self.bind = bind
            self.buf = b""
            self.seq = 1
            # number -> (slot, time sent) of its MOs in flight, oldest first
            self.sent_at: dict[str, collections.deque] = {}
            self.next_index = {}

        def connectionMade(self):
            self.transport.setTcpNoDelay(True)
            self.write(BindTransceiver(system_id="bench", password="bench"))

        def connectionLost(self, reason):
            state["closed"] += 1
            if state["open"] == 0 and state["closed"] == len(protocols):
                stop()

        def write(self, pdu):
            self.seq += 1
            self.transport.write(encode_pdu(dataclasses.replace(pdu, sequence_number=self.seq)))

        def write_encoded(self, frame: bytes):
            """Send a PDU encoded in advance, with this session's next sequence number."""
            self.seq += 1
            self.transport.write(frame[:12] + self.seq.to_bytes(4, "big") + frame[16:])

        def send(self, slot: int):
            i = slot + self.bind * args.window
            queue = queues[i]
            k = self.next_index.get(slot, 0)
            if k >= len(queue) or (args.seconds and time.perf_counter() - state["t0"] > args.seconds):
                state["open"] -= 1
                if state["open"] == 0:
                    state["t1"] = time.perf_counter()
                    state["c1"] = time.process_time()
                    # close cleanly: the last deliver_sm_resp still in the
                    # write buffers reach the nodes (a reactor.stop() here
                    # dropped them, and the nodes sent those replies again)
                    for p in protocols:
                        p.transport.loseConnection()
                    reactor.callLater(5, stop)
                return
            self.next_index[slot] = k + 1
            number, frame = queue[k]
            self.sent_at.setdefault(number, collections.deque()).append(
                (slot, time.perf_counter()))
            self.write_encoded(frame)

        def dataReceived(self, data):
            frames, self.buf = split_frames(self.buf + data)
            for frame in frames:
                if frame[4:8] == SUBMIT_SM_RESP_ID:     # header only: its status
                    if frame[8:12] != b"\0\0\0\0":
                        state["errors"] += 1
                        status = "0x%08x" % int.from_bytes(frame[8:12], "big")
                        error_statuses[status] = error_statuses.get(status, 0) + 1
                    continue
                pdu = decode_pdu(frame)
                kind = type(pdu)
                if kind is DeliverSm:
                    self.transport.write(DELIVER_SM_RESP[:12] + frame[12:16] + DELIVER_SM_RESP[16:])
                    number = pdu.destination_addr
                    ref = pdu.short_message.rpartition(b"Ref ")[2]
                    if ref in seen_refs:
                        # a reply received before, sent again (its confirmation
                        # was lost): not the answer to this number's MO in flight
                        state["stale"] += 1
                        continue
                    in_flight = self.sent_at.get(number)
                    if not in_flight:   # a reply resent for an earlier run's MO
                        state["stale"] += 1
                        continue
                    seen_refs.add(ref)
                    slot, sent = in_flight.popleft()
                    latencies.append(time.perf_counter() - sent)
                    port = self.transport.getPeer().port
                    by_port[port] = by_port.get(port, 0) + 1
                    key = pdu.short_message[:24].decode("latin-1")
                    texts[key] = texts.get(key, 0) + 1
                    self.send(slot)
                elif kind is EnquireLink:
                    self.transport.write(encode_pdu(EnquireLinkResp(
                        sequence_number=pdu.sequence_number)))
                elif pdu.command_id == 0x80000009:          # bind_transceiver_resp
                    assert pdu.command_status == 0, pdu
                    state["bound"] += 1
                    if state["bound"] == args.binds:
                        state["t0"] = time.perf_counter()
                        state["c0"] = time.process_time()
                        for p in protocols:
                            for slot in range(args.window):
                                p.send(slot)

    protocols = []
    from twisted.logger import globalLogBeginner, textFileLogObserver
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    ports = [int(p) for p in args.ports.split(",")] if args.ports else args.port
    drive_clients(reactor, ports, args.binds, Load, protocols, args.timeout - 5)
    print(json.dumps(dict(load_summary(latencies, state), replies=len(latencies),
                          errors=state["errors"], stale=state["stale"], texts=texts,
                          error_statuses=error_statuses,
                          by_port=by_port,
                          cpu=state.get("c1", time.process_time()) - state.get("c0", 0.0))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20000, help="activations per phase")
    ap.add_argument("--binds", type=int, default=4)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=600.0)
    # generator only (bench/cluster.py): binds spread over these ports, and
    # no new MO once this many seconds have passed (0: until the HRNs run out)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    # MOs in flight per subscriber number (1: each slot of a bind its own number)
    ap.add_argument("--per-number", type=int, default=1, help=argparse.SUPPRESS)
    args = parse_bench_args(ap)
    (generator if args.generator else run)(args)


if __name__ == "__main__":
    main()
