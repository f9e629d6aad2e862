"""Benchmark: activations through ActivationService + embedded ledger against a raw sqlite3 loop.

Pre-generates vouchers, runs C concurrent activations through the real
ActivationService (group-committed units of work on SQLite, synchronous=FULL),
prints activations/s and p50/p99 latency, then runs in the same process a raw
stdlib sqlite3 loop of the same statements with the same durability and the
same commit grouping (the mean number of units per commit observed in the
service run), and prints the ratio.  On PostgreSQL the baseline is raw psycopg
sending the service's one statement per group (C{ivoms_activate_many}) with the
same grouping, durability and number of connections (C{IVOMS_BENCH_PG_WORKERS},
default 2, the runner's workers).

    python bench/activate.py [--vouchers 100000] [--activations 20000] [--concurrency 64]
                             [--filler 0] [--backend sqlite|postgresql]

C{--filler N} first adds N extra stored vouchers (random blind indexes,
realistic rows); C{--grow-by N} measures, adds N filler rows, and measures
again in the same run, so a small and a large store compare fairly.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (  # noqa: E402
    run_on_reactor, Instance, NoBars, make_runner, peak_rss_mb, started, percentile, raw_fill, stock)



def pg_workers() -> int:
    """Worker threads (connections) of the unit runner on PostgreSQL."""
    return int(os.environ.get("IVOMS_BENCH_PG_WORKERS", "2"))


def prepare(inst, count, filler):
    """C{count} available vouchers (their HRNs), after C{filler} used filler rows."""
    if filler:
        raw_fill(inst, filler, state="used", expires_at=int(time.time() * 1000) + 10 ** 10)
    return stock(inst, count, expires_in_days=30)


def run_service(inst, hrns, n, concurrency, one_unit=True, grow_by=0, metrics=False):
    """Drive the real service on the real reactor.

    With C{grow_by}, a second phase runs in the same process on the second half
    of C{hrns} after C{grow_by} filler rows were added to the store.

    @return: one (elapsed, sorted latencies, units/commit, result codes) per phase.
    """
    from twisted.internet import defer, reactor, threads

    from billing.ledger import EmbeddedLedger
    from core.activation import ActivationService
    from core.normalise import MsisdnRules
    from core.requests import ActivationRequest
    workers = 1 if inst.store.is_sqlite else pg_workers()
    phases = []

    async def phase(part):
        runner = make_runner(inst.store, reactor, workers=workers)
        billing = EmbeddedLedger(runner, clock=reactor, in_transaction=one_unit)
        observer = None
        if metrics:     # the node's Prometheus instrumentation, as gateway/node.py wires it
            from gateway.metrics.registry import PrometheusMetrics
            from gateway.metrics.wrappers import MeteredBilling
            observer = runner.metrics = PrometheusMetrics(reactor)
            billing = MeteredBilling(billing, observer, connector="ledger", peer="embedded",
                                     clock=reactor)
        service = ActivationService(
            runner, billing, inst.cipher,
            clock=reactor, msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]),
            hrn_lengths={14}, fraud_settings=NoBars(), metrics=observer)
        lat: list[float] = []
        codes: dict = {}
        it = iter(range(n))

        async def worker():
            for i in it:
                t0 = time.perf_counter()
                req = ActivationRequest(msisdn="38164%07d" % (i % 50_000), hrn=part[i], channel="cli")
                res = await service.activate(req)
                lat.append(time.perf_counter() - t0)
                codes[int(res.code)] = codes.get(int(res.code), 0) + 1
        runner.start()
        await started(runner)             # as a started node: writer up, heap settled
        t0 = time.perf_counter()
        await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(concurrency)])
        elapsed = time.perf_counter() - t0
        await runner.stop()
        phases.append((elapsed, sorted(lat), runner.units / max(1, runner.batches), codes))

    async def main():
        await phase(hrns[:n])
        if grow_by:
            await threads.deferToThread(raw_fill, inst, grow_by, state="used",
                                        expires_at=int(time.time() * 1000) + 10 ** 10)
            await phase(hrns[n:2 * n])

    run_on_reactor(main)
    return phases


def run_raw(path, hrns, cipher, group, one_unit):
    """The same statements as the service ran, stdlib sqlite3, same durability
    (WAL, synchronous=FULL) and the same commit grouping: with C{one_unit} every
    activation of a group in one transaction (the embedded ledger credits inside
    the activation's unit), otherwise three commits per group (reserve, credit,
    conclude), as the saga does for external billing."""
    import sqlite3
    import uuid
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    now = int(time.time() * 1000)
    terms = db.execute("SELECT face_value, currency, account_validity_days FROM batch "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    bis = [cipher.blind_index(h) for h in hrns]
    n = len(hrns)

    def boundary():
        if not one_unit:
            db.execute("COMMIT")
            db.execute("BEGIN IMMEDIATE")

    t0 = time.perf_counter()
    for lo in range(0, n, group):
        items = []
        db.execute("BEGIN IMMEDIATE")
        for i in range(lo, min(n, lo + group)):
            msisdn, txn_id = "38165%07d" % (i % 50_000), uuid.uuid4().hex
            db.execute("SELECT barred_until FROM fraud_counter WHERE subject = ?", ("msisdn:" + msisdn,))
            serial, _ = db.execute(
                "UPDATE voucher SET state='reserved', txn_id=?, used_by=?, used_at=? WHERE blind_index=? "
                "AND state='available' AND expires_at > ? RETURNING serial, batch_id",
                (txn_id, msisdn, now, bis[i], now)).fetchone()
            db.execute("INSERT INTO txn (id, kind, msisdn, account, channel, state, result_code, "
                       "started_at, serial, amount, currency, validity_days, reserved_at) "
                       "VALUES (?, 'activation', ?, ?, 'cli', 'pending', 151, ?, ?, ?, ?, ?, ?)",
                       (txn_id, msisdn, msisdn, now, serial, terms[0], terms[1], terms[2], now))
            db.execute("INSERT INTO voucher_history (serial, at, actor, from_state, to_state, reason) "
                       "VALUES (?, ?, ?, 'available', 'reserved', ?)", (serial, now, "cli:" + msisdn, txn_id))
            items.append((msisdn, txn_id, serial))
        boundary()
        for msisdn, txn_id, serial in items:
            db.execute("INSERT INTO ledger_entry (idempotency_key, msisdn, amount, currency, "
                       "validity_days, outcome, result_code, at) VALUES (?, ?, ?, ?, ?, 'credited', 0, ?) "
                       "ON CONFLICT DO NOTHING", (txn_id, msisdn, terms[0], terms[1], terms[2], now))
            row = db.execute("UPDATE ledger_account SET balance = balance + ?, expires_at = CASE WHEN "
                             "expires_at > ? THEN expires_at ELSE ? END, updated_at = ? WHERE msisdn = ? "
                             "AND currency = ? RETURNING balance, expires_at",
                             (terms[0], now, now, now, msisdn, terms[1])).fetchone()
            if row is None:
                db.execute("SELECT currency FROM ledger_account WHERE msisdn = ?", (msisdn,))
                db.execute("INSERT INTO ledger_account VALUES (?, ?, ?, ?, ?, ?)",
                           (msisdn, terms[0], terms[1], now, now, now))
        boundary()
        for msisdn, txn_id, serial in items:
            db.execute("UPDATE txn SET state='success', result_code=0, finished_at=?, billing_ms=?, "
                       "detail=? WHERE id=? AND state='pending'", (now, 1, "{}", txn_id))
            db.execute("UPDATE voucher SET state='used', used_at=? WHERE serial=? AND state='reserved' "
                       "AND txn_id=?", (now, serial, txn_id))
            db.execute("INSERT INTO voucher_history (serial, at, actor, from_state, to_state, reason) "
                       "VALUES (?, ?, ?, 'reserved', 'used', ?)", (serial, now, "cli:" + msisdn, txn_id))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


def run_raw_pg(url, hrns, cipher, group, connections):
    """The statement the service sends on PostgreSQL (C{ivoms_activate_many} over a
    group of units, one group per commit), raw psycopg, the same durability
    (the server's C{synchronous_commit}, untouched) and grouping, over as many
    connections as the service has workers, each taking the next group.

    @return: elapsed seconds.
    """
    import threading
    import uuid

    import psycopg

    from core.db_activate import CALL_MANY
    from core.fraud import msisdn_subject
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    bis = [cipher.blind_index(h) for h in hrns]
    groups = iter(range(0, len(bis), group))
    lock = threading.Lock()
    conns = [psycopg.connect(dsn) for _ in range(connections)]

    def work(conn):
        cur = conn.cursor()
        while True:
            with lock:
                lo = next(groups, None)
            if lo is None:
                return
            part = range(lo, min(len(bis), lo + group))
            now = int(time.time() * 1000)
            msisdns = ["38166%07d" % (i % 50_000) for i in part]
            cur.execute(CALL_MANY, ([uuid.uuid4().hex for _ in part], msisdns, msisdns,
                                    [bis[i] for i in part], ["cli"] * len(part),
                                    [None] * len(part), [None] * len(part), [None] * len(part),
                                    [now] * len(part), [True] * len(part), [True] * len(part),
                                    [msisdn_subject(m) for m in msisdns]))
            cur.fetchall()
            conn.commit()

    threads = [threading.Thread(target=work, args=(c,)) for c in conns]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vouchers", type=int, default=100_000)
    ap.add_argument("--activations", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--filler", type=int, default=0)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--grow-by", type=int, default=0,
                    help="then add N filler rows and measure again in the same run")
    ap.add_argument("--metrics", action="store_true",
                    help="with the Prometheus metrics a node records (activations, billing, commits)")
    ap.add_argument("--saga", action="store_true",
                    help="credit the ledger as a separate step (three commits), as external billing")
    a = ap.parse_args()
    n = min(a.activations, a.vouchers // 2)
    inst = Instance(a.backend)
    try:
        hrns = prepare(inst, a.vouchers, a.filler)
        phases = run_service(inst, hrns, n, a.concurrency, one_unit=not a.saga, grow_by=a.grow_by,
                             metrics=a.metrics)
        elapsed, lat, per_commit, codes = phases[0]
        rate = n / elapsed
        print("backend:              %s (%s)" % (a.backend, "saga, three commits" if a.saga
                                                 else "ledger in the activation's transaction"))
        print("stored vouchers:      %d (+%d filler)" % (a.vouchers, a.filler))
        print("activations:          %d, concurrency %d, results %s" % (n, a.concurrency, codes))
        print("ivoms activations/s:  %.0f" % rate)
        print("latency p50/p99:      %.1f / %.1f ms" % (percentile(lat, 50) * 1000, percentile(lat, 99) * 1000))
        print("units per commit:     %.1f" % per_commit)
        if a.grow_by:
            e2, lat2, _, codes2 = phases[1]
            print("after +%d rows:   %.0f activations/s, p50/p99 %.1f / %.1f ms, results %s"
                  % (a.grow_by, n / e2, percentile(lat2, 50) * 1000, percentile(lat2, 99) * 1000, codes2))
            print("large / small store:  %.2f" % ((n / e2) / rate))
        print("peak RSS:             %.0f MB" % peak_rss_mb())
        if a.backend == "sqlite" and not a.no_baseline and not a.grow_by:
            group = max(1, round(per_commit))
            raw = run_raw(inst.url.split("///", 1)[1], hrns[n:2 * n], inst.cipher, group,
                          one_unit=not a.saga)
            print("raw sqlite3 loop:     %.0f activations/s (same statements, group of %d)" % (n / raw, group))
            print("ratio:                %.2f (ivoms / raw)" % (rate / (n / raw)))
        if a.backend == "postgresql" and not a.no_baseline and not a.grow_by and not a.saga:
            group = max(1, round(per_commit))
            raw = run_raw_pg(inst.url, hrns[n:2 * n], inst.cipher, group, pg_workers())
            print("raw psycopg loop:     %.0f activations/s (ivoms_activate_many, group of %d, "
                  "%d connections)" % (n / raw, group, pg_workers()))
            print("ratio:                %.2f (ivoms / raw)" % (rate / (n / raw)))
    finally:
        inst.close()


if __name__ == "__main__":
    main()
