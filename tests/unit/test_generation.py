"""Batch generation (core.generation) on SQLite and PostgreSQL: serials, uniqueness,
encryption at rest, HRN collisions, atomicity of a failed batch."""
from __future__ import annotations

import glob
import time

import pytest
from sqlalchemy import func, select, update

from core import generation
from core.generation import GenerationError, generate, recover_interrupted
from core.schema import batch, counter, voucher, voucher_history
from core.timeutil import DAY_MS, now_ms
from core.vouchers import Selection, set_state
from tests.helpers import VType, make_batch, make_store, reveal_all

SHORT = VType(code="S8", name="Short 8", hrn_length=8)


def _future(days=30):
    return now_ms() + days * DAY_MS


def _gen(store, cipher, count, vt=VType(), chunk_size=None, **kw):
    return generate(store, cipher, vt, count, _future(), requested_by="test",
                    serial_start=1000, chunk_size=chunk_size or max(1, count), **kw)


def _q(store, stmt):
    return store.run_sync(lambda tx: tx.execute(stmt).rows, read_only=True)


def _batch_row(store, batch_id):
    rows = _q(store, select(batch.c.state, batch.c.count, batch.c.generated, batch.c.message,
                            batch.c.first_serial, batch.c.last_serial)
              .where(batch.c.id == batch_id))
    assert len(rows) == 1
    return dict(zip(("state", "count", "generated", "message", "first", "last"), rows[0]))


def _voucher_count(store, batch_id=None):
    q = select(func.count()).select_from(voucher)
    if batch_id is not None:
        q = q.where(voucher.c.batch_id == batch_id)
    return _q(store, q)[0][0]


def _all_batches(store):
    return _q(store, select(batch.c.id, batch.c.state).order_by(batch.c.id))


# -- serials and uniqueness --------------------------------------------------------
def test_serial_ranges_unique_and_ordered_across_batches(env):
    store, cipher = env
    a = _gen(store, cipher, 25, chunk_size=7)
    b = _gen(store, cipher, 40, chunk_size=16)
    assert (a.first_serial, a.last_serial, a.count) == (1000, 1024, 25)
    assert (b.first_serial, b.last_serial, b.count) == (1025, 1064, 40)
    assert b.batch_id > a.batch_id
    for info in (a, b):
        serials = [r[0] for r in _q(store, select(voucher.c.serial)
                                     .where(voucher.c.batch_id == info.batch_id)
                                     .order_by(voucher.c.serial))]
        assert serials == list(range(info.first_serial, info.last_serial + 1))
        row = _batch_row(store, info.batch_id)
        assert row["state"] == "ready"
        assert (row["count"], row["generated"]) == (info.count, info.count)
        assert (row["first"], row["last"]) == (info.first_serial, info.last_serial)
    states = {r[0] for r in _q(store, select(voucher.c.state).distinct())}
    assert states == {"generated"}   # nothing is usable until made available
    assert _q(store, select(counter.c.value).where(counter.c.name == "serial")) == [(1064,)]


def test_every_hrn_unique_and_of_the_type_length(env):
    store, cipher = env
    vt = VType(code="L20", hrn_length=20)
    infos = [_gen(store, cipher, 300, chunk_size=128), _gen(store, cipher, 200, vt=vt, chunk_size=64)]
    hrns = {}
    for info in infos:
        hrns.update(reveal_all(store, cipher, info))
    assert len(hrns) == 500
    assert len(set(hrns.values())) == 500
    assert all(len(h) == 14 for s, h in hrns.items() if s <= infos[0].last_serial)
    assert all(len(h) == 20 for s, h in hrns.items() if s >= infos[1].first_serial)
    assert all(h.isdigit() for h in hrns.values())
    # never sequential: consecutive serials do not get HRNs a fixed step apart
    steps = {int(hrns[s + 1]) - int(hrns[s]) for s in range(1000, 1299)}
    assert len(steps) > 250
    idx = [bytes(r[0]) for r in _q(store, select(voucher.c.blind_index))]
    assert len(set(idx)) == 500
    assert set(idx) == {cipher.blind_index(h) for h in hrns.values()}


def test_vouchers_are_stored_only_encrypted(env, db_url, tmp_path):
    store, cipher = env
    info = _gen(store, cipher, 200, chunk_size=50)
    hrns = reveal_all(store, cipher, info)
    secrets_ = [h.encode() for h in hrns.values()]
    # no column of any voucher row holds an HRN, as text or bytes
    rows = _q(store, select(voucher))
    assert len(rows) == 200
    for row in rows:
        for value in row:
            blob = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
            assert not any(h in blob for h in secrets_)
    key_ids = {r[0] for r in _q(store, select(voucher.c.key_id).distinct())}
    assert key_ids == {"d1"}
    if db_url.startswith("sqlite"):
        store.dispose()   # checkpoint the WAL, then scan every file SQLite wrote
        files = glob.glob(str(tmp_path / "ivoms.db*"))
        assert str(tmp_path / "ivoms.db") in files
        data = b"".join(open(f, "rb").read() for f in files)
        assert len(data) > 200 * 40
        leaked = [h for h in secrets_ if h in data]
        assert leaked == []
        # sanity: the scan would see a plaintext value (the batch's requester is stored as text)
        assert b"test" in data


# -- HRN collisions -------------------------------------------------------------------
def test_hrn_collisions_are_retried(env, monkeypatch):
    store, cipher = env
    first = _gen(store, cipher, 60, vt=SHORT)
    existing = list(reveal_all(store, cipher, first).values())
    real = generation.random_hrns
    calls = []

    def colliding(count, length):
        calls.append(count)
        if len(calls) == 1:
            # the first chunk: every other HRN already stored, the rest duplicated in the chunk
            out = []
            for i in range(count):
                out.append(existing[i % len(existing)] if i % 2 == 0 else "00000001")
            return out
        return real(count, length)

    monkeypatch.setattr(generation, "random_hrns", colliding)
    info = _gen(store, cipher, 40, vt=SHORT, chunk_size=20)
    assert len(calls) > 2          # the colliding rows were drawn again
    row = _batch_row(store, info.batch_id)
    assert row["state"] == "ready" and row["generated"] == 40
    hrns = reveal_all(store, cipher, info)
    assert sorted(hrns) == list(range(info.first_serial, info.last_serial + 1))
    assert all(len(h) == 8 for h in hrns.values())
    assert len(set(hrns.values())) == 40
    assert not set(hrns.values()) & set(existing)
    assert list(hrns.values()).count("00000001") <= 1
    idx = [bytes(r[0]) for r in _q(store, select(voucher.c.blind_index))]
    assert len(idx) == 100 and len(set(idx)) == 100
    # the first batch is untouched
    assert reveal_all(store, cipher, first) == dict(zip(range(first.first_serial, first.last_serial + 1),
                                                        existing))


def test_collision_with_an_earlier_chunk_of_the_same_batch(env, monkeypatch):
    store, cipher = env
    real = generation.random_hrns
    calls = []
    first_chunk = []

    def repeat_first_chunk(count, length):
        calls.append(count)
        if len(calls) == 1:
            first_chunk.extend(real(count, length))
            return list(first_chunk)
        if len(calls) == 2:      # the second chunk draws the first chunk's HRNs again
            return first_chunk[:count]
        return real(count, length)

    monkeypatch.setattr(generation, "random_hrns", repeat_first_chunk)
    info = _gen(store, cipher, 30, vt=SHORT, chunk_size=15)
    assert len(calls) > 2            # the colliding chunk was drawn again
    hrns = reveal_all(store, cipher, info)
    assert set(first_chunk) <= set(hrns.values())     # chunk 1 stays as stored
    assert len(hrns) == 30 and len(set(hrns.values())) == 30
    assert _batch_row(store, info.batch_id)["state"] == "ready"


def test_unique_blind_index_is_enforced_by_the_database(env):
    store, cipher = env
    info, hrns = make_batch(store, cipher, count=2, available=False)
    s1, s2 = sorted(hrns)
    with pytest.raises(Exception) as ei:
        store.run_sync(lambda tx: tx.execute(update(voucher).where(voucher.c.serial == s2)
                                             .values(blind_index=cipher.blind_index(hrns[s1]))))
    assert generation.is_unique_violation(ei.value)


# -- refused requests ------------------------------------------------------------------
def test_count_not_positive_leaves_nothing(env):
    store, cipher = env
    for count in (0, -1, -1000):
        with pytest.raises(GenerationError, match="count must be at least 1"):
            generate(store, cipher, VType(), count, _future(), requested_by="t", serial_start=1000)
    assert _all_batches(store) == []
    assert _voucher_count(store) == 0
    assert _q(store, select(counter.c.value).where(counter.c.name == "serial")) == []


def test_expiry_not_in_future_leaves_nothing(env):
    store, cipher = env
    for offset_ms in (0, -1, -DAY_MS):
        with pytest.raises(GenerationError, match="in the past"):
            generate(store, cipher, VType(), 10, int(time.time() * 1000) + offset_ms,
                     requested_by="t", serial_start=1000)
    assert _all_batches(store) == []
    assert _voucher_count(store) == 0
    # the serial counter did not move: the next batch starts at serial_start
    assert _gen(store, cipher, 3).first_serial == 1000


# -- failures mid-generation ------------------------------------------------------------
def test_failure_in_second_chunk_leaves_failed_batch_and_no_vouchers(env, monkeypatch):
    store, cipher = env
    good = _gen(store, cipher, 5)
    real = generation.insert_chunk
    calls = []
    committed_before_failure = []

    def flaky(tx, rows, batch_id, done, now):
        calls.append(done)
        if len(calls) == 2:
            committed_before_failure.append(_voucher_count(store, batch_id))
            raise RuntimeError("disk full")
        return real(tx, rows, batch_id, done, now)

    monkeypatch.setattr(generation, "insert_chunk", flaky)
    with pytest.raises(GenerationError, match="disk full") as ei:
        _gen(store, cipher, 30, chunk_size=10)
    assert calls == [10, 20]
    assert committed_before_failure == [10]     # the first chunk had really been committed
    bid = _all_batches(store)[-1][0]
    assert "batch %d failed" % bid in str(ei.value)
    row = _batch_row(store, bid)
    assert row["state"] == "failed"
    assert "disk full" in row["message"]
    assert _voucher_count(store, bid) == 0
    # the earlier batch is untouched, and the failed batch's serials are never reused
    assert _voucher_count(store, good.batch_id) == 5
    assert _batch_row(store, good.batch_id)["state"] == "ready"
    monkeypatch.setattr(generation, "insert_chunk", real)
    nxt = _gen(store, cipher, 2)
    assert nxt.first_serial == row["last"] + 1


def test_failure_while_encrypting_leaves_failed_batch(env, monkeypatch):
    store, cipher = env
    real = generation.make_rows
    calls = []

    def boom(*a):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("out of memory")
        return real(*a)

    monkeypatch.setattr(generation, "make_rows", boom)
    with pytest.raises(GenerationError):
        _gen(store, cipher, 50, chunk_size=10)
    ((bid, state),) = _all_batches(store)
    assert state == "failed"
    assert _voucher_count(store) == 0


def test_keyboard_interrupt_still_fails_the_batch(env, monkeypatch):
    store, cipher = env

    def interrupted(done, total):
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _gen(store, cipher, 30, chunk_size=10, progress=interrupted)
    ((bid, state),) = _all_batches(store)
    assert state == "failed"
    assert _voucher_count(store) == 0


def test_batch_failed_by_someone_else_while_generating(env):
    store, cipher = env

    def failed_meanwhile(done, total):
        if done == 10:
            bid = _all_batches(store)[0][0]
            store.run_sync(generation.fail_batch, bid, "marked failed by recovery", now_ms())

    with pytest.raises(GenerationError, match="marked failed while it was generating"):
        _gen(store, cipher, 30, chunk_size=10, progress=failed_meanwhile)
    ((bid, state),) = _all_batches(store)
    assert state == "failed"
    assert _voucher_count(store) == 0


# -- a generating batch is never usable ------------------------------------------------------
def test_vouchers_of_a_generating_batch_cannot_be_made_available(env):
    store, cipher = env
    seen = []

    def during(done, total):
        (bid, state), = _all_batches(store)
        assert state == "generating"
        now = now_ms()
        for sel in (Selection.of_batch(bid), Selection.range(1000, 1000 + total - 1),
                    Selection.serial(1000)):
            res = store.run_sync(set_state, sel, "available", actor="t", reason=None, now=now)
            seen.append((res.changed, res.skipped))
        states = {r[0] for r in _q(store, select(voucher.c.state).where(voucher.c.batch_id == bid))}
        assert states == {"generated"}

    info = _gen(store, cipher, 30, chunk_size=10, progress=during)
    assert seen == [(0, 10), (0, 10), (0, 1), (0, 20), (0, 20), (0, 1), (0, 30), (0, 30), (0, 1)]
    assert _q(store, select(func.count()).select_from(voucher_history)) == [(0,)]
    # once ready, the same request works
    res = store.run_sync(set_state, Selection.of_batch(info.batch_id), "available", actor="t",
                         reason=None, now=now_ms())
    assert (res.changed, res.skipped) == (30, 0)


def test_vouchers_of_a_failed_batch_cannot_come_back(env):
    store, cipher = env
    info = _gen(store, cipher, 10)
    # a batch forced into 'failed' with vouchers still present (e.g. before recovery ran)
    store.run_sync(lambda tx: tx.execute(update(batch).where(batch.c.id == info.batch_id)
                                         .values(state="failed")))
    res = store.run_sync(set_state, Selection.of_batch(info.batch_id), "available", actor="t",
                         reason=None, now=now_ms())
    assert (res.changed, res.skipped) == (0, 10)


# -- recovery of interrupted generations ---------------------------------------------------
def _start(store, cipher, owner, heartbeat_at):
    bid, first = store.run_sync(generation.start_batch, VType(), 5, _future(), "t", "d1", 1000,
                                heartbeat_at)
    store.run_sync(lambda tx: tx.execute(update(batch).where(batch.c.id == bid)
                                         .values(owner=owner, heartbeat_at=heartbeat_at)))
    rows = generation.make_rows(cipher, first, 5, 14, bid, _future())
    store.run_sync(lambda tx: generation.insert_chunk(tx, rows, bid, 5, heartbeat_at))
    return bid


def _dead_pid():
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_recover_interrupted(env):
    import socket
    store, cipher = env
    now = now_ms()
    host = socket.gethostname()
    dead = _start(store, cipher, "%s:%d" % (host, _dead_pid()), now)
    mine = _start(store, cipher, generation.owner_tag(), now)
    elsewhere_fresh = _start(store, cipher, "other-host:1", now - 60_000)
    elsewhere_stale = _start(store, cipher, "other-host:2", now - generation.STALE_MS - 1)
    failed = store.run_sync(recover_interrupted, now)
    assert sorted(failed) == sorted([dead, elsewhere_stale])
    states = dict(_all_batches(store))
    assert states == {dead: "failed", mine: "generating", elsewhere_fresh: "generating",
                      elsewhere_stale: "failed"}
    assert _voucher_count(store, dead) == 0 and _voucher_count(store, elsewhere_stale) == 0
    assert _voucher_count(store, mine) == 5 and _voucher_count(store, elsewhere_fresh) == 5
    assert "interrupted" in _batch_row(store, dead)["message"]
    assert store.run_sync(recover_interrupted, now) == []   # idempotent


@pytest.mark.integration
def test_generation_with_worker_processes(tmp_path, sqlite_url):
    # the CLI default (generation.workers = 1) encrypts in a spawned process
    store, cipher = make_store(sqlite_url, str(tmp_path))
    done = []
    info = _gen(store, cipher, 90, chunk_size=20, workers=1, progress=lambda d, t: done.append(d))
    assert done == [20, 40, 60, 80, 90]
    hrns = reveal_all(store, cipher, info)
    assert sorted(hrns) == list(range(1000, 1090))
    assert len(set(hrns.values())) == 90
    assert _batch_row(store, info.batch_id)["state"] == "ready"
    store.dispose()
