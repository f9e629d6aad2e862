"""Load test of the per-source throttle: a guessing attack beside legitimate recharges.

A node's core (ActivationService, embedded ledger, a fresh store, the shipped
fraud settings with C{source_failures_per_minute} = C{--limit}) runs in this
process.  Legitimate subscribers recharge valid vouchers at C{--legit-rate}
per second, spread over C{--legit-sources} sources (SMSC binds), each request
its own subscriber.  Two phases of the same run:

1. legitimate load alone, for C{--alone} seconds;
2. the same legitimate load while one source (C{smpp:attacker}) sends random
   HRNs from rotating MSISDNs at C{--attack-rate} per second, for
   C{--attack} seconds;
3. legitimate load alone again, for C{--alone} seconds: phases 1 and 3 show
   how much the figures move without an attack (the noise).

Prints, for each phase, the legitimate p50/p99 latency (request to answer)
and success rate; and for the attacker, its attempts, how many were refused
with 153 SOURCE_THROTTLED before any lookup, and how many reached voucher
evaluation, per one-minute window of the throttle (from its first attempt),
against the limit.  Evaluated guesses are counted twice: from the answers
(every answer but 153) and from the database (the attacker's failed
transaction rows: a 153 writes none).

Both loads are generated in this process, on the node's reactor: the
attacker's own cost (making requests) is charged to the node, so the
latency figure is pessimistic.

    python bench/throttle_attack.py [--alone S] [--attack S] [--limit N]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import Instance, build_core, percentile, run_on_reactor, stock  # noqa: E402

ATTACKER = "smpp:attacker"
THROTTLED = 153


def fraud_settings(limit: int):
    """The shipped fraud settings (MSISDN bar tiers included), C{limit} failures
    per minute per source."""
    from gateway.config import FraudSettings
    return FraudSettings(source_failures_per_minute=limit)


def paced(reactor, rate: float, seconds: float, fire):
    """Call C{fire(i)} C{rate} times a second for C{seconds}, open loop (whatever
    the answers take); a Deferred firing when the last call was made."""
    from twisted.internet import defer, task
    done = defer.Deferred()
    state = {"t0": time.perf_counter(), "n": 0}

    def tick():
        elapsed = time.perf_counter() - state["t0"]
        if elapsed >= seconds:
            loop.stop()
            done.callback(state["n"])
            return
        due = int(elapsed * rate)
        while state["n"] < due:
            fire(state["n"])
            state["n"] += 1
    loop = task.LoopingCall(tick)
    loop.clock = reactor
    loop.start(0.005)
    return done


class Legit:
    """Legitimate recharges: valid vouchers, one subscriber each, several sources."""

    def __init__(self, service, hrns: list[str], sources: int):
        self.service, self.hrns, self.sources = service, hrns, sources
        self.next = 0
        self.pending = set()

    def phase(self):
        """Start a new phase's record: [latencies], {code: count}."""
        self.latencies, self.codes = [], {}

    def fire(self, _i) -> None:
        from core.requests import ActivationRequest
        k = self.next
        self.next += 1
        req = ActivationRequest("38165%07d" % k, self.hrns[k], "sms",
                                channel_ref="legit-%d" % k,
                                source="smpp:smsc-%d" % (k % self.sources))
        t0 = time.perf_counter()
        latencies, codes = self.latencies, self.codes
        d = self.service.activate(req)
        self.pending.add(d)

        def answered(result):
            self.pending.discard(d)
            latencies.append(time.perf_counter() - t0)
            codes[int(result.code)] = codes.get(int(result.code), 0) + 1
        d.addCallback(answered)


class Attacker:
    """Random HRNs from rotating MSISDNs, all from one source."""

    def __init__(self, service):
        self.service = service
        self.rng = random.Random(19)
        self.answers = []            # (sent, seconds after the first attempt; code)
        self.pending = set()
        self.t0 = None

    def fire(self, i) -> None:
        from core.requests import ActivationRequest
        if self.t0 is None:
            self.t0 = time.perf_counter()
        req = ActivationRequest("38166%07d" % i, "%014d" % self.rng.randrange(10 ** 14), "sms",
                                channel_ref="guess-%d" % i, source=ATTACKER)
        sent = time.perf_counter() - self.t0
        d = self.service.activate(req)
        self.pending.add(d)

        def answered(result):
            self.pending.discard(d)
            self.answers.append((sent, int(result.code)))
        d.addCallback(answered)


async def drain(reactor, *groups) -> None:
    """Wait until every request of C{groups} was answered."""
    from twisted.internet import task
    while any(g.pending for g in groups):
        await task.deferLater(reactor, 0.05, lambda: None)


def summary(legit: Legit) -> dict:
    """Requests, successes, success rate, p50/p99 and result codes of a phase."""
    lat = sorted(legit.latencies)
    n = len(lat)
    ok = legit.codes.get(0, 0)
    return dict(n=n, ok=ok, rate=ok / n if n else float("nan"), p50=percentile(lat, 50),
                p99=percentile(lat, 99), codes=dict(sorted(legit.codes.items())))


def attacker_rows(inst) -> int:
    """Transaction rows the attacker's attempts left (one per evaluated guess)."""
    from sqlalchemy import func, select

    from core.schema import txn
    return inst.store.run_sync(lambda tx: tx.execute(
        select(func.count()).select_from(txn).where(txn.c.source == ATTACKER)).scalar())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alone", type=float, default=20.0, help="seconds of legitimate load alone")
    ap.add_argument("--attack", type=float, default=65.0,
                    help="seconds of legitimate load with the attack")
    ap.add_argument("--legit-rate", type=float, default=200.0, help="legitimate recharges/s")
    ap.add_argument("--legit-sources", type=int, default=4)
    ap.add_argument("--attack-rate", type=float, default=1000.0, help="guesses/s sent")
    ap.add_argument("--limit", type=int, default=30, help="fraud.source_failures_per_minute")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    a = ap.parse_args()
    inst = Instance(a.backend)
    try:
        n = int(a.legit_rate * (2 * a.alone + a.attack) * 1.05) + 100
        print("generating %d vouchers ..." % n, flush=True)
        hrns = stock(inst, n)
        out = {}

        async def run():
            from twisted.internet import defer, reactor
            runner, service = build_core(inst, reactor, fraud_settings=fraud_settings(a.limit))
            legit, attacker = Legit(service, hrns, a.legit_sources), Attacker(service)
            for key in ("alone", "attack", "after"):
                legit.phase()
                c0, t0 = time.process_time(), time.perf_counter()
                if key == "attack":
                    await defer.gatherResults([
                        paced(reactor, a.legit_rate, a.attack, legit.fire),
                        paced(reactor, a.attack_rate, a.attack, attacker.fire)])
                else:
                    await paced(reactor, a.legit_rate, a.alone, legit.fire)
                await drain(reactor, legit, attacker)
                out[key] = summary(legit)
                out[key]["cpu"] = (time.process_time() - c0) / (time.perf_counter() - t0)
            out["attacker"] = attacker.answers
            await runner.stop()
        run_on_reactor(run)
        report(a, out, attacker_rows(inst))
    finally:
        inst.close()


def report(a, out, rows: int) -> None:
    print("throttle load test: %s, limit %d failed attempts/min per source; legitimate "
          "%.0f/s over %d sources; attacker %.0f guesses/s from one source, rotating MSISDNs"
          % (a.backend, a.limit, a.legit_rate, a.legit_sources, a.attack_rate))
    for label, key in (("legitimate alone, before", "alone"), ("legitimate under attack ", "attack"),
                       ("legitimate alone, after ", "after")):
        s = out[key]
        print("  %s: %6d requests  success %.4f  p50 %6.1f ms  p99 %6.1f ms  %s"
              % (label, s["n"], s["rate"], s["p50"] * 1000, s["p99"] * 1000, s["codes"]))
    answers = out["attacker"]
    windows: dict = {}
    for t, code in answers:
        w = windows.setdefault(int(t // 60), [0, 0])
        w[0 if code == THROTTLED else 1] += 1
    evaluated = sum(w[1] for w in windows.values())
    codes: dict = {}
    for _, code in answers:
        codes[code] = codes.get(code, 0) + 1
    print("  attacker: %d guesses sent, %d refused with 153 unevaluated, %d evaluated "
          "(%d transaction rows in the database); answers %s"
          % (len(answers), len(answers) - evaluated, evaluated, rows, dict(sorted(codes.items()))))
    for k in sorted(windows):
        span = min(60.0, a.attack - 60 * k)
        print("    throttle minute %d (%2.0f s of attack): %4d evaluated (limit %d), %6d refused"
              % (k + 1, span, windows[k][1], a.limit, windows[k][0]))
    worst = max((w[1] for w in windows.values()), default=0)
    print("  most guesses evaluated in one minute: %d (target <= %d): %s"
          % (worst, a.limit, "OK" if worst <= a.limit else "OVER"))
    before, attack, after = out["alone"], out["attack"], out["after"]
    quiet = (before["cpu"] + after["cpu"]) / 2
    print("  this process's CPU (node and both loads): %.0f %% and %.0f %% of a core alone, "
          "%.0f %% under attack: about %.0f us per guess sent"
          % (before["cpu"] * 100, after["cpu"] * 100, attack["cpu"] * 100,
             max(0.0, attack["cpu"] - quiet) / a.attack_rate * 1e6))
    print("  legitimate p99: alone %.1f and %.1f ms (the noise), under attack %.1f ms; "
          "success %.4f / %.4f / %.4f"
          % (before["p99"] * 1000, after["p99"] * 1000, attack["p99"] * 1000, before["rate"],
             attack["rate"], after["rate"]))


if __name__ == "__main__":
    main()
