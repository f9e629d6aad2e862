"""Two nodes' housekeeping schedulers on one PostgreSQL database: each firing runs once."""
from __future__ import annotations

import pytest
import pytest_twisted
from sqlalchemy import func, select

from core.housekeeping.cron import parse
from core.housekeeping.scheduler import Plan, Scheduler
from core.schema import voucher_history
from tests.helpers import make_batch, make_store
from tests.housekeeping_helpers import clock_at, make_keeper, run_rows, set_vouchers, settings, states
from tests.unit.test_housekeeping_cron import ts

pytestmark = pytest.mark.integration

START = ts("2030-01-01 00:00")


def _recording(keeper):
    started = []
    real = keeper.run

    def run(job, **kw):
        d = real(job, **kw)
        started.append(d)
        return d
    keeper.run = run
    return started


@pytest_twisted.ensureDeferred
async def test_two_schedulers_on_one_postgresql_run_each_firing_once(pg_url, tmp_path, reactor):
    store1, cipher = make_store(pg_url, str(tmp_path))
    from core.db import Store
    store2 = Store(pg_url)                       # the second node: its own connections
    make_batch(store1, cipher, count=300, expires_in_days=30)
    set_vouchers(store1, 1000, 1299, expires_at=(START + 86400) * 1000)
    clock = clock_at(START)                      # one clock: both nodes fire in the same turn
    k1, r1 = make_keeper(store1, reactor, clock, node="node1", hk=settings(chunk_size=25))
    k2, r2 = make_keeper(store2, reactor, clock, node="node2", hk=settings(chunk_size=25))
    started1, started2 = _recording(k1), _recording(k2)
    plans = {"expire": Plan(parse("*/5 * * * *"))}
    s1, s2 = Scheduler(k1, plans, clock), Scheduler(k2, plans, clock)
    s1.startService()
    s2.startService()
    await s1.armed
    await s2.armed
    try:
        outcomes = []
        for firing in range(4):
            # vouchers 1000+75k .. +74 reach their expiry before this firing
            lo = 1000 + 75 * firing
            set_vouchers(store1, lo, lo + 74, expires_at=(START + 300 * firing + 1) * 1000)
            clock.advance(300)
            assert len(started1) == len(started2) == firing + 1       # both nodes fired
            a = await started1[-1]
            b = await started2[-1]
            outcomes.append(sorted([a.outcome, b.outcome]))
            ok = a if a.outcome == "ok" else b
            assert ok.rows == 75, (a, b)
        assert outcomes == [["ok", "skipped"]] * 4
        rows = run_rows(store1, "expire")
        assert [r["outcome"] for r in rows] == ["ok"] * 4                # one row per firing
        assert sum(r["rows"] for r in rows) == 300
        st = states(store1)
        assert list(st.values()).count("expired") == 300
        n_hist = store1.run_sync(lambda tx: tx.execute(select(func.count()).select_from(
            voucher_history).where(voucher_history.c.to_state == "expired")).scalar())
        assert n_hist == 300                      # no voucher expired twice
    finally:
        await s1.stopService()
        await s2.stopService()
        await r1.stop()
        await r2.stop()
        store1.dispose()
        store2.dispose()
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_concurrent_on_demand_runs_on_two_nodes_never_overlap(pg_url, tmp_path, reactor):
    store1, cipher = make_store(pg_url, str(tmp_path))
    from core.db import Store
    store2 = Store(pg_url)
    make_batch(store1, cipher, count=200, expires_in_days=1)
    clock = clock_at(START + 10 * 86400)
    k1, r1 = make_keeper(store1, reactor, clock, node="node1", hk=settings(chunk_size=10))
    k2, r2 = make_keeper(store2, reactor, clock, node="node2", hk=settings(chunk_size=10))
    try:
        results = [await d for d in [k1.run("expire"), k2.run("expire"), k1.run("expire"),
                                     k2.run("expire")]]
        ran = [r for r in results if r.outcome == "ok"]
        assert ran and sum(r.rows for r in ran) == 200
        rows = run_rows(store1, "expire")
        # run intervals never overlap
        spans = sorted((r["started_at"], r["finished_at"]) for r in rows)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    finally:
        await r1.stop()
        await r2.stop()
        store1.dispose()
        store2.dispose()
