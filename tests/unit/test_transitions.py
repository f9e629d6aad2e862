"""Voucher state transitions (core.vouchers.set_state) on SQLite and PostgreSQL:
counts, block/unblock, history, expiry, and concurrent conflicting transitions."""
from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

import pytest
from sqlalchemy import select, update

from core.schema import voucher, voucher_history
from core.timeutil import DAY_MS, now_ms
from core.vouchers import (
    Selection, SelectionError, count_by_state, extend_expiry, get_voucher, set_state,
)
from tests.foundation_helpers import race_set_state
from tests.helpers import make_batch, make_store


def _set(store, sel, target, *, actor="alice", reason=None, now=None, **kw):
    return store.run_sync(set_state, sel, target, actor=actor, reason=reason,
                          now=now if now is not None else now_ms(), **kw)


def _states(store, first, last):
    rows = store.run_sync(lambda tx: tx.execute(
        select(voucher.c.serial, voucher.c.state).where(voucher.c.serial.between(first, last))
        .order_by(voucher.c.serial)).rows, read_only=True)
    return dict(rows)


def _history(store, serial=None):
    q = select(voucher_history.c.serial, voucher_history.c.at, voucher_history.c.actor,
               voucher_history.c.from_state, voucher_history.c.to_state,
               voucher_history.c.reason).order_by(voucher_history.c.id)
    if serial is not None:
        q = q.where(voucher_history.c.serial == serial)
    return store.run_sync(lambda tx: tx.execute(q).rows, read_only=True)


def _expire_date(store, first, last, at):
    store.run_sync(lambda tx: tx.execute(update(voucher).where(voucher.c.serial.between(first, last))
                                         .values(expires_at=at)))


# -- single, range, batch --------------------------------------------------------------
def test_single_serial(env):
    store, cipher = env
    info, _ = make_batch(store, cipher, count=5, available=False)
    res = _set(store, Selection.serial(1002), "available")
    assert (res.changed, res.skipped, res.by_source) == (1, 0, {"generated": 1})
    assert _states(store, 1000, 1004) == {1000: "generated", 1001: "generated", 1002: "available",
                                          1003: "generated", 1004: "generated"}
    again = _set(store, Selection.serial(1002), "available")
    assert (again.changed, again.skipped) == (0, 1)      # already available: skipped
    missing = _set(store, Selection.serial(99999), "available")
    assert (missing.changed, missing.skipped) == (0, 0)


def test_range_counts_changed_and_skipped(env):
    store, cipher = env
    info, _ = make_batch(store, cipher, count=20, available=False)
    _set(store, Selection.range(1000, 1004), "available")
    _set(store, Selection.range(1005, 1007), "blocked", reason="damaged")
    # generated -> available for the 12 untouched ones; 5 available and 3 blocked skipped
    res = _set(store, Selection.range(1000, 1019), "available")
    assert (res.changed, res.skipped) == (12, 8)
    # a range reaching past the batch counts only vouchers that exist
    res = _set(store, Selection.range(1015, 1050), "blocked", reason="stolen")
    assert (res.changed, res.skipped, res.by_source) == (5, 0, {"available": 5})
    assert Counter(_states(store, 1000, 1019).values()) == {"available": 12, "blocked": 8}


def test_range_larger_than_one_chunk(env, monkeypatch):
    import core.vouchers as v
    monkeypatch.setattr(v, "CHUNK", 7)
    store, cipher = env
    make_batch(store, cipher, count=30, available=False)
    res = _set(store, Selection.range(1003, 1026), "available")
    assert (res.changed, res.skipped) == (24, 0)
    assert len(_history(store)) == 24
    assert Counter(_states(store, 1000, 1029).values()) == {"available": 24, "generated": 6}


def test_batch_selection_touches_only_that_batch(env):
    store, cipher = env
    a, _ = make_batch(store, cipher, count=10, available=False)
    b, _ = make_batch(store, cipher, count=15, available=False)
    res = _set(store, Selection.of_batch(b.batch_id), "available")
    assert (res.changed, res.skipped) == (15, 0)
    assert set(_states(store, a.first_serial, a.last_serial).values()) == {"generated"}
    assert set(_states(store, b.first_serial, b.last_serial).values()) == {"available"}
    res = _set(store, Selection.of_batch(b.batch_id), "expired")
    assert (res.changed, res.skipped, res.by_source) == (15, 0, {"available": 15})
    res = _set(store, Selection.of_batch(b.batch_id), "generated")
    assert (res.changed, res.skipped) == (0, 15)         # only available -> generated


def test_sources_restrict_the_transition(env):
    store, cipher = env
    make_batch(store, cipher, count=6, available=False)
    _set(store, Selection.range(1000, 1002), "available")
    res = _set(store, Selection.range(1000, 1005), "blocked", reason="suspect", sources=["available"])
    assert (res.changed, res.skipped) == (3, 3)
    res = _set(store, Selection.range(1000, 1005), "blocked", reason="x", sources=["used"])
    assert (res.changed, res.skipped) == (0, 6)           # not an allowed source: ignored


def test_used_and_reserved_vouchers_are_never_changed_by_admin(env):
    store, cipher = env
    make_batch(store, cipher, count=2)
    store.run_sync(lambda tx: tx.execute(update(voucher).where(voucher.c.serial == 1000)
                                         .values(state="used")))
    store.run_sync(lambda tx: tx.execute(update(voucher).where(voucher.c.serial == 1001)
                                         .values(state="reserved")))
    for target in ("available", "blocked", "expired", "generated", "unblock"):
        res = _set(store, Selection.range(1000, 1001), target, reason="r")
        assert (res.changed, res.skipped) == (0, 2), target
    assert _states(store, 1000, 1001) == {1000: "used", 1001: "reserved"}


def test_bad_selection():
    with pytest.raises(SelectionError, match="empty"):
        Selection.range(10, 9)
    assert Selection.range(5, 5).describe() == "serial 5"
    assert Selection.range(5, 9).describe() == "serials 5-9"
    assert Selection.of_batch(3).describe() == "batch 3"


def test_unknown_target_is_refused(env):
    store, cipher = env
    make_batch(store, cipher, count=2)
    # 'used' and 'reserved' are reached only through activation; nonsense is not a state
    for target in ("used", "reserved", "stolen"):
        with pytest.raises((ValueError, KeyError)):
            _set(store, Selection.serial(1000), target)
    assert set(_states(store, 1000, 1001).values()) == {"available"}
    assert len(_history(store)) == 2                     # only make_batch's transitions


# -- block / unblock ------------------------------------------------------------------------
def test_block_with_reason_then_unblock_returns_to_previous_state(env):
    store, cipher = env
    make_batch(store, cipher, count=9, available=False)
    _set(store, Selection.range(1003, 1005), "available")
    _set(store, Selection.range(1006, 1008), "expired")
    res = _set(store, Selection.range(1000, 1008), "blocked", reason="stolen", actor="bob")
    assert (res.changed, res.skipped) == (9, 0)
    assert res.by_source == {"generated": 3, "available": 3, "expired": 3}
    v = store.run_sync(get_voucher, 1004, read_only=True)
    assert (v["state"], v["prev_state"], v["reason"]) == ("blocked", "available", "stolen")
    # blocking again does nothing
    again = _set(store, Selection.range(1000, 1008), "blocked", reason="damaged")
    assert (again.changed, again.skipped) == (0, 9)
    assert store.run_sync(get_voucher, 1004, read_only=True)["reason"] == "stolen"
    res = _set(store, Selection.range(1000, 1008), "unblock", actor="carol", reason="found")
    assert (res.changed, res.skipped) == (9, 0)
    assert res.by_source == {"blocked->generated": 3, "blocked->available": 3,
                             "blocked->expired": 3}
    assert _states(store, 1000, 1008) == {
        1000: "generated", 1001: "generated", 1002: "generated",
        1003: "available", 1004: "available", 1005: "available",
        1006: "expired", 1007: "expired", 1008: "expired"}
    v = store.run_sync(get_voucher, 1004, read_only=True)
    assert (v["prev_state"], v["reason"]) == (None, None)
    assert _history(store, 1004)[-1][2:] == ("carol", "blocked", "available", "found")
    again = _set(store, Selection.range(1000, 1008), "unblock")
    assert (again.changed, again.skipped) == (0, 9)


def test_blocked_voucher_cannot_be_made_available_directly(env):
    store, cipher = env
    make_batch(store, cipher, count=1, available=False)
    _set(store, Selection.serial(1000), "blocked", reason="suspect")
    res = _set(store, Selection.serial(1000), "available")
    assert (res.changed, res.skipped) == (0, 1)
    assert _states(store, 1000, 1000) == {1000: "blocked"}


# -- history ------------------------------------------------------------------------------
def test_history_row_for_each_change(env):
    store, cipher = env
    make_batch(store, cipher, count=3, available=False)
    t0 = now_ms() + 3_600_000
    _set(store, Selection.range(1000, 1002), "available", actor="alice", now=now_ms())
    base = len(_history(store))
    assert base == 3
    _set(store, Selection.serial(1001), "blocked", actor="bob", reason="stolen", now=now_ms() + 5)
    _set(store, Selection.serial(1001), "unblock", actor="carol", reason="recovered",
         now=now_ms() + 10)
    _set(store, Selection.range(1000, 1002), "blocked", actor="dave", reason="damaged", now=t0)
    rows = _history(store, 1001)
    assert [r[2:] for r in rows] == [
        ("alice", "generated", "available", None),
        ("bob", "available", "blocked", "stolen"),
        ("carol", "blocked", "available", "recovered"),
        ("dave", "available", "blocked", "damaged"),
    ]
    assert rows[-1][1] == t0                       # when: the 'now' of the unit of work
    assert all(r[0] == 1001 for r in rows)
    assert len(_history(store)) == 3 + 1 + 1 + 3
    # skipped vouchers leave no history
    _set(store, Selection.range(1000, 1002), "blocked", actor="eve", reason="again")
    assert len(_history(store)) == 8
    # get_voucher shows the same history in order
    v = store.run_sync(get_voucher, 1001, read_only=True)
    assert [(h["actor"], h["to_state"]) for h in v["history"]] == [
        ("alice", "available"), ("bob", "blocked"), ("carol", "available"), ("dave", "blocked")]


def test_history_is_rolled_back_with_the_unit_of_work(env):
    store, cipher = env
    make_batch(store, cipher, count=4, available=False)

    def unit(tx):
        set_state(tx, Selection.range(1000, 1003), "available", actor="x", reason=None, now=now_ms())
        raise RuntimeError("later step failed")

    with pytest.raises(RuntimeError):
        store.run_sync(unit)
    assert set(_states(store, 1000, 1003).values()) == {"generated"}
    assert _history(store) == []


# -- expiry -----------------------------------------------------------------------------------
def test_available_refused_for_expired_date(env):
    store, cipher = env
    make_batch(store, cipher, count=6, available=False)
    now = now_ms()
    _expire_date(store, 1000, 1002, now - 1)
    _expire_date(store, 1003, 1003, now)             # expiring exactly now is not usable either
    res = _set(store, Selection.range(1000, 1005), "available", now=now)
    assert (res.changed, res.skipped) == (2, 4)
    assert _states(store, 1000, 1005) == {1000: "generated", 1001: "generated", 1002: "generated",
                                          1003: "generated", 1004: "available", 1005: "available"}
    # an expired voucher whose date was extended can be made available again
    _set(store, Selection.range(1000, 1001), "expired", now=now)
    res = _set(store, Selection.range(1000, 1001), "available", now=now)
    assert (res.changed, res.skipped) == (0, 2)
    ext = store.run_sync(extend_expiry, Selection.range(1000, 1001), now + 10 * DAY_MS,
                         actor="x", now=now)
    assert ext.changed == 2
    res = _set(store, Selection.range(1000, 1001), "available", now=now)
    assert (res.changed, res.skipped, res.by_source) == (2, 0, {"expired": 2})


def test_available_refused_when_now_passes_the_expiry(env):
    store, cipher = env
    make_batch(store, cipher, count=3, available=False, expires_in_days=1)
    res = _set(store, Selection.range(1000, 1002), "available", now=now_ms() + 2 * DAY_MS)
    assert (res.changed, res.skipped) == (0, 3)
    assert _history(store) == []


def test_count_by_state_preview(env):
    store, cipher = env
    make_batch(store, cipher, count=5, available=False)
    _set(store, Selection.range(1000, 1001), "available")
    assert store.run_sync(count_by_state, Selection.range(1000, 1004), read_only=True) == \
        {"available": 2, "generated": 3}


# -- concurrency --------------------------------------------------------------------------------
def _race(store, jobs, *, unit=True):
    """Run C{jobs} at once, one thread each: units of work (each on its own connection
    through C{store.run_sync}), or with C{unit=False} plain callables."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        try:
            tx = store.tx()      # connect before the barrier so the race is on the UPDATE
            tx.close()
            barrier.wait(timeout=30)
            results[i] = store.run_sync(job) if unit else job()
        except BaseException as e:  # noqa: BLE001 - checked below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    return results


def _one_history_row_per_voucher(store, n):
    rows = _history(store)
    assert len(rows) == n
    assert len({r[0] for r in rows}) == n


@pytest.mark.parametrize("threads", [8])
def test_threads_racing_the_same_transition(env, threads):
    store, cipher = env
    n = 60
    info, _ = make_batch(store, cipher, count=n, available=False)
    jobs = [lambda tx, i=i: set_state(tx, Selection.of_batch(info.batch_id), "available",
                                      actor="t%d" % i, reason=None, now=now_ms())
            for i in range(threads)]
    results = _race(store, jobs)
    assert sum(r.changed for r in results) == n
    assert all(r.changed + r.skipped == n for r in results)
    _one_history_row_per_voucher(store, n)
    assert set(_states(store, info.first_serial, info.last_serial).values()) == {"available"}


def test_threads_racing_conflicting_transitions(env):
    # block, expire and make-unavailable, each only from 'available': each voucher goes one way
    store, cipher = env
    n = 40
    info, _ = make_batch(store, cipher, count=n)       # available
    base = len(_history(store))
    targets = ["blocked", "expired", "generated", "blocked", "expired", "generated"]
    jobs = [lambda tx, t=t, i=i: set_state(tx, Selection.range(info.first_serial, info.last_serial),
                                           t, actor="t%d" % i, reason="race", now=now_ms(),
                                           sources=["available"])
            for i, t in enumerate(targets)]
    results = _race(store, jobs)
    assert sum(r.changed for r in results) == n
    rows = _history(store)[base:]
    assert len(rows) == n and len({r[0] for r in rows}) == n
    final = _states(store, info.first_serial, info.last_serial)
    # each voucher's final state is the one its single history row says
    assert {r[0]: r[4] for r in rows} == final
    assert all(r[3] == "available" for r in rows)


def test_threads_racing_per_voucher_in_opposite_orders(env):
    # one unit of work per voucher, as two channels or nodes would do it
    store, cipher = env
    n = 30
    info, _ = make_batch(store, cipher, count=n)
    base = len(_history(store))
    serials = list(range(info.first_serial, info.last_serial + 1))

    def one_by_one(order, target, actor):
        def job():
            return sum(store.run_sync(set_state, Selection.serial(s), target, actor=actor,
                                      reason="race", now=now_ms(), sources=["available"]).changed
                       for s in order)
        return job

    results = _race(store, [one_by_one(serials, "blocked", "up"),
                            one_by_one(serials[::-1], "generated", "down"),
                            one_by_one(serials[::2] + serials[1::2], "generated", "odd")],
                    unit=False)
    assert sum(results) == n
    rows = _history(store)[base:]
    assert len(rows) == n and len({r[0] for r in rows}) == n
    assert {r[0]: r[4] for r in rows} == _states(store, info.first_serial, info.last_serial)


@pytest.mark.integration     # spawns Python processes
@pytest.mark.postgres
def test_processes_racing_on_postgresql(pg_url, tmp_path):
    store, cipher = make_store(pg_url, str(tmp_path))
    n = 50
    info, _ = make_batch(store, cipher, count=n, available=False)
    ctx = multiprocessing.get_context("spawn")
    procs_n = 4
    barrier = ctx.Barrier(procs_n)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_set_state,
                         args=(pg_url, info.batch_id, "available", None, barrier, results, "p%d" % i))
             for i in range(procs_n)]
    for p in procs:
        p.start()
    try:
        got = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    assert [g for g in got if g[1] == "error"] == []
    assert sum(g[1] for g in got) == n
    assert all(g[1] + g[2] == n for g in got)
    rows = _history(store)
    assert len(rows) == n and len({r[0] for r in rows}) == n
    assert {r[2] for r in rows} <= {"p%d" % i for i in range(procs_n)}
    assert set(_states(store, info.first_serial, info.last_serial).values()) == {"available"}
    store.dispose()
