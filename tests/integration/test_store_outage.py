"""The database going away (issue 19, point 4): PostgreSQL connections killed
under load, a read-only SQLite file, a full SQLite disk.

Every unit then fails fast with 152 (DATABASE_UNAVAILABLE), counted on the
unit runner; nothing is half-applied (a voucher is used if and only if it
was credited exactly once and its transaction succeeded); the node
reconnects by itself and serves again.
"""
from __future__ import annotations

import os

import pytest
import pytest_twisted
from sqlalchemy import event, select
from twisted.internet import defer, threads

from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.schema import ledger_entry, txn, voucher
from tests.helpers import FraudSettings, build_service, make_batch, make_store

pytestmark = pytest.mark.integration

NO_BARS = FraudSettings(tiers=((10 ** 6, 1),))


def _req(hrn, i):
    return ActivationRequest(msisdn="3816400%05d" % i, hrn=hrn, channel="sms")


def _consistent(store):
    """Nothing half-applied: used vouchers = credited entries = successful
    transactions, one each; no transaction left pending."""
    def unit(tx):
        used = {r[0] for r in tx.execute(select(voucher.c.txn_id).where(voucher.c.state == "used")).rows}
        credited = [r[0] for r in tx.execute(select(ledger_entry.c.idempotency_key)
                                             .where(ledger_entry.c.outcome == "credited")).rows]
        ok = {r[0] for r in tx.execute(select(txn.c.id).where(txn.c.state == "success")).rows}
        pending = tx.execute(select(txn.c.id).where(txn.c.state == "pending")).rows
        return used, credited, ok, pending
    used, credited, ok, pending = store.run_sync(unit)
    assert used == set(credited) == ok and len(credited) == len(set(credited))
    assert pending == []
    return len(used)


def _admin(pg_server, sql, *args):
    import psycopg
    with psycopg.connect(pg_server.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as c:
        return c.execute(sql, args).fetchone()


def _terminate(pg_server, url):
    """Kill every server process of the test database (what a restart does)."""
    return _admin(pg_server, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE datname = %s AND pid <> pg_backend_pid()", url.rsplit("/", 1)[1])[0]


def _down(pg_server, url, down: bool):
    """Refuse (or allow again) new connections to the test database, as a
    server that is shutting down or starting up does, and kill the open ones."""
    import psycopg
    db = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as c:
        c.execute("ALTER DATABASE %s ALLOW_CONNECTIONS %s" % (db, "false" if down else "true"))
    if down:
        _terminate(pg_server, url)


def _tally(codes, failed, part, results):
    for i, r in zip(part, results):
        codes[r.code] = codes.get(r.code, 0) + 1
        if r.code == R.DATABASE_UNAVAILABLE:
            failed.append(i)


@pytest_twisted.ensureDeferred
async def test_postgresql_going_away_under_load(pg_server, pg_url, tmp_path, reactor):
    store, cipher = make_store(pg_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 500)
    hrns = list(hrns.values())
    runner, svc, _ = build_service(store, cipher, reactor=reactor, fraud=NO_BARS, workers=4)
    codes, failed = {}, []
    try:
        # 1. connections killed between groups (a quick restart): each worker
        # finds its connection dead, nothing was sent, the group runs again on
        # a new connection: no request fails
        for k in range(3):
            part = range(k * 60, k * 60 + 60)
            _tally(codes, failed, part,
                   await defer.gatherResults([svc.activate(_req(hrns[i], i)) for i in part]))
            killed = await threads.deferToThread(_terminate, pg_server, pg_url)
            assert killed >= 1
        assert codes == {R.SUCCESS: 180} and runner.db_unavailable == 0
        # 2. the server refuses connections (down): units fail fast with 152
        await threads.deferToThread(_down, pg_server, pg_url, True)
        started = reactor.seconds()
        part = range(180, 220)
        _tally(codes, failed, part,
               await defer.gatherResults([svc.activate(_req(hrns[i], i)) for i in part]))
        assert codes[R.DATABASE_UNAVAILABLE] == 40 and reactor.seconds() - started < 5
        assert runner.db_unavailable == 40
        # 3. back up: the node reconnects by itself; then killed and refused
        # while units are in flight: each unit succeeds or fails whole
        await threads.deferToThread(_down, pg_server, pg_url, False)
        part = range(220, 480)
        pending = [svc.activate(_req(hrns[i], i)) for i in part]
        await threads.deferToThread(_down, pg_server, pg_url, True)
        _tally(codes, failed, part, await defer.gatherResults(pending))
        await threads.deferToThread(_down, pg_server, pg_url, False)
        assert set(codes) <= {R.SUCCESS, R.DATABASE_UNAVAILABLE}, codes
        assert runner.db_unavailable == codes[R.DATABASE_UNAVAILABLE] == len(failed)
        # what failed succeeds now (or was used: a COMMIT cut off by the kill
        # may have committed, whole), and so does the rest
        again = await defer.gatherResults([svc.activate(_req(hrns[i], i)) for i in failed])
        assert {r.code for r in again} <= {R.SUCCESS, R.VOUCHER_ALREADY_USED_BY_YOU}
        rest = await defer.gatherResults([svc.activate(_req(hrns[i], i)) for i in range(480, 500)])
        assert {r.code for r in rest} == {R.SUCCESS}
    finally:
        await runner.stop()
        _down(pg_server, pg_url, False)
    assert _consistent(store) == 500
    store.dispose()


def _sqlite_pragma(store, sql):
    """Run C{sql} on every new connection of C{store} (after closing the pooled ones)."""
    store.engine.dispose()

    def on_connect(dbapi_conn, _record):
        dbapi_conn.execute(sql)
    event.listen(store.engine, "connect", on_connect)
    return lambda: (event.remove(store.engine, "connect", on_connect), store.engine.dispose())


def _integrity(path):
    import sqlite3
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_read_only_database(tmp_path, reactor):
    path = str(tmp_path / "ivoms.db")
    store, cipher = make_store("sqlite:///" + path, str(tmp_path))
    _, hrns = make_batch(store, cipher, 5)
    hrns = list(hrns.values())
    if os.geteuid() == 0:
        # root writes through file modes: make the connections read-only instead
        undo = _sqlite_pragma(store, "PRAGMA query_only = ON")
    else:
        store.engine.dispose()
        os.chmod(path, 0o444)
        undo = lambda: (os.chmod(path, 0o644), store.engine.dispose())   # noqa: E731
    runner, svc, _ = build_service(store, cipher, reactor=reactor, fraud=NO_BARS)
    try:
        r = await svc.activate(_req(hrns[0], 0))
        assert r.code == R.DATABASE_UNAVAILABLE
        assert runner.db_unavailable == 1
        undo()
        assert (await svc.activate(_req(hrns[0], 0))).code == R.SUCCESS
    finally:
        await runner.stop()
    assert _integrity(path) == "ok"
    assert _consistent(store) == 1
    store.dispose()


@pytest_twisted.ensureDeferred
async def test_sqlite_full_disk(tmp_path, reactor):
    """A full disk, simulated with SQLite's max_page_count (the file cannot grow)."""
    import sqlite3
    path = str(tmp_path / "ivoms.db")
    store, cipher = make_store("sqlite:///" + path, str(tmp_path))
    _, hrns = make_batch(store, cipher, 300)
    hrns = list(hrns.values())
    store.engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    undo = _sqlite_pragma(store, "PRAGMA max_page_count = %d" % pages)
    runner, svc, _ = build_service(store, cipher, reactor=reactor, fraud=NO_BARS)
    codes = {}
    try:
        for i in range(250):
            r = await svc.activate(_req(hrns[i], i))
            codes[r.code] = codes.get(r.code, 0) + 1
        assert set(codes) <= {R.SUCCESS, R.DATABASE_UNAVAILABLE}, codes
        assert codes.get(R.DATABASE_UNAVAILABLE, 0) > 0
        assert runner.db_unavailable == codes[R.DATABASE_UNAVAILABLE]
        undo()
        assert (await svc.activate(_req(hrns[299], 299))).code == R.SUCCESS
    finally:
        await runner.stop()
    assert _integrity(path) == "ok"
    assert _consistent(store) == codes.get(R.SUCCESS, 0) + 1
    store.dispose()
