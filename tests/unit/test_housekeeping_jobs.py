"""Each housekeeping job's effect on SQLite and PostgreSQL, dry runs that change nothing,
and the lease units of work."""
from __future__ import annotations

import csv
import os

import pytest
import pytest_twisted
from sqlalchemy import func, select, update

from core.housekeeping import leases
from core.reconcile import Reconciler
from core.schema import (
    fraud_counter, txn, voucher, voucher_archive, voucher_history, voucher_history_archive,
)
from core.timeutil import DAY_MS, fmt_day, now_ms
from tests.fakes import FakeBilling
from tests.helpers import VType, make_batch
from tests.housekeeping_helpers import (
    clock_at, history_count, make_keeper, run_rows, set_vouchers, settings, states,
)


def _count(store, table):
    return store.run_sync(lambda tx: tx.execute(select(func.count()).select_from(table)).scalar())


def _snapshot(store):
    """Everything a dry run must leave alone."""
    return (states(store), history_count(store), _count(store, voucher_archive),
            _count(store, fraud_counter), _count(store, txn))


# -- expire -------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_expire_changes_only_unused_vouchers_past_their_date(env, reactor):
    store, cipher = env
    a, _ = make_batch(store, cipher, count=12, expires_in_days=10)            # 1000-1011 available
    g, _ = make_batch(store, cipher, count=5, available=False, expires_in_days=10)  # 1012-1016
    later, _ = make_batch(store, cipher, count=3, expires_in_days=60)         # 1017-1019
    set_vouchers(store, 1000, 1000, state="used", used_by="381641234567", used_at=now_ms())
    set_vouchers(store, 1001, 1001, state="blocked", prev_state="available", reason="stolen")
    set_vouchers(store, 1002, 1002, state="reserved")
    clock = clock_at()
    clock.advance(11 * 86400)                  # batches a and g are past their date
    keeper, runner = make_keeper(store, reactor, clock, hk=settings(chunk_size=4))
    try:
        before = _snapshot(store)
        dry = await keeper.run("expire", dry_run=True)
        assert (dry.outcome, dry.rows) == ("dry-run", 14)
        assert dry.message == "would expire 14 voucher(s) (available 9, generated 5)"
        assert _snapshot(store) == before
        res = await keeper.run("expire")
        assert (res.outcome, res.rows) == ("ok", 14)
        assert res.message == "expired 14 voucher(s) (available 9, generated 5)"
        st = states(store)
        assert [s for s in range(1000, 1020) if st[s] == "expired"] == \
            list(range(1003, 1017))
        assert (st[1000], st[1001], st[1002]) == ("used", "blocked", "reserved")
        assert all(st[s] == "available" for s in range(1017, 1020))
        hist = store.run_sync(lambda tx: tx.execute(
            select(voucher_history.c.serial, voucher_history.c.from_state, voucher_history.c.actor,
                   voucher_history.c.at).where(voucher_history.c.to_state == "expired")).rows)
        assert sorted(h[0] for h in hist) == list(range(1003, 1017))
        assert {(h[1], h[2]) for h in hist if h[0] >= 1012} == {("generated", "housekeeping")}
        assert {h[3] for h in hist} == {int(clock.seconds() * 1000)}
        again = await keeper.run("expire")
        assert (again.outcome, again.rows) == ("ok", 0)
        assert [(r["outcome"], r["rows"]) for r in run_rows(store, "expire")] == \
            [("dry-run", 14), ("ok", 14), ("ok", 0)]
    finally:
        await runner.stop()


# -- lift bars ------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_lift_bars_forgets_only_counters_whose_bar_and_window_ended(env, reactor):
    store, _ = env
    clock = clock_at()
    now = int(clock.seconds() * 1000)
    hour = 3600_000

    def rows(tx):
        for subject, window_start, barred_until in [
            ("msisdn:1-bar-ended-window-passed", now - 2 * hour, now - hour),
            ("msisdn:2-still-barred", now - 2 * hour, now + hour),
            ("msisdn:3-never-barred-window-passed", now - 2 * hour, 0),
            ("msisdn:4-bar-ended-window-open", now - hour // 2, now - 1),
            ("source:sms:5-window-passed", now - 3 * hour, 0),
        ]:
            tx.insert(fraud_counter, {"subject": subject, "failures": 3,
                                      "window_start": window_start, "barred_until": barred_until,
                                      "last_failure_at": window_start})
    store.run_sync(rows)
    keeper, runner = make_keeper(store, reactor, clock, hk=settings(chunk_size=2),
                                 fraud_window_seconds=3600)
    try:
        before = _snapshot(store)
        dry = await keeper.run("lift_bars", dry_run=True)
        assert (dry.outcome, dry.rows) == ("dry-run", 3)
        assert dry.message == "would forget 3 fraud counter(s), 1 of them with an ended bar"
        assert _snapshot(store) == before
        res = await keeper.run("lift_bars")
        assert (res.outcome, res.rows) == ("ok", 3)
        left = store.run_sync(lambda tx: sorted(r[0] for r in tx.execute(
            select(fraud_counter.c.subject)).rows))
        assert left == ["msisdn:2-still-barred", "msisdn:4-bar-ended-window-open"]
    finally:
        await runner.stop()


# -- purge ------------------------------------------------------------------------------
def _purge_setup(store, cipher):
    """Serials 1000-1009: 1000-1003 used long ago, 1004 used recently, 1005-1006 expired
    long ago, 1007-1009 available.  Returns the clock (now) and the cutoff."""
    make_batch(store, cipher, count=10, expires_in_days=5)
    clock = clock_at()
    clock.advance(400 * 86400)
    now = int(clock.seconds() * 1000)
    old, recent = now - 200 * DAY_MS, now - 10 * DAY_MS
    set_vouchers(store, 1000, 1003, state="used", used_by="381641234567", used_at=old,
                 txn_id="t-old")
    set_vouchers(store, 1004, 1004, state="used", used_by="381641234567", used_at=recent)
    set_vouchers(store, 1005, 1006, state="expired", expires_at=old)
    set_vouchers(store, 1007, 1009, expires_at=now + DAY_MS)
    store.run_sync(lambda tx: tx.insert_many(voucher_history, [
        {"serial": s, "at": old, "actor": "t", "from_state": "available", "to_state": "used",
         "reason": None} for s in (1000, 1001, 1004)]))
    return clock


@pytest_twisted.ensureDeferred
async def test_purge_report_only_changes_nothing(env, reactor, tmp_path):
    store, cipher = env
    clock = _purge_setup(store, cipher)
    keeper, runner = make_keeper(store, reactor, clock, base_dir=str(tmp_path))
    try:
        before = _snapshot(store)
        res = await keeper.run("purge")           # the default mode is report-only
        assert (res.outcome, res.rows) == ("ok", 6)
        assert res.message.startswith("report only: would purge 6 voucher(s) used or expired before")
        assert "expired 2 (serials 1005-1006); used 4 (serials 1000-1003)" in res.message
        assert _snapshot(store) == before
        dry = await keeper.run("purge", dry_run=True)
        assert dry.outcome == "dry-run" and _snapshot(store) == before
    finally:
        await runner.stop()
    assert not os.path.exists(tmp_path / "var")


@pytest_twisted.ensureDeferred
async def test_purge_to_the_archive_tables(env, reactor):
    store, cipher = env
    clock = _purge_setup(store, cipher)
    keeper, runner = make_keeper(store, reactor, clock,
                                 hk=settings(chunk_size=2, purge={"mode": "table"}))
    try:
        before = _snapshot(store)
        dry = await keeper.run("purge", dry_run=True)
        assert dry.rows == 6 and dry.message.startswith("would archive 6 voucher(s)")
        assert _snapshot(store) == before
        res = await keeper.run("purge")
        assert (res.outcome, res.rows) == ("ok", 6)
        assert "(expired 2, used 4) to the archive tables" in res.message
        assert sorted(states(store)) == [1004, 1007, 1008, 1009]
        arch = store.run_sync(lambda tx: tx.execute(
            select(voucher_archive).order_by(voucher_archive.c.serial)).rows)
        assert [r[0] for r in arch] == [1000, 1001, 1002, 1003, 1005, 1006]
        a0 = dict(zip(voucher_archive.c.keys(), arch[0]))
        assert (a0["state"], a0["used_by"], a0["txn_id"]) == ("used", "381641234567", "t-old")
        assert len(bytes(a0["blind_index"])) == 32 and a0["archived_at"] == int(clock.seconds() * 1000)
        # history moved with its vouchers; the kept voucher keeps its own
        moved = store.run_sync(lambda tx: sorted(r[0] for r in tx.execute(
            select(voucher_history_archive.c.serial)).rows))
        assert moved.count(1000) == 2 and moved.count(1001) == 2 and 1004 not in moved
        kept = store.run_sync(lambda tx: sorted({r[0] for r in tx.execute(
            select(voucher_history.c.serial)).rows}))
        assert 1000 not in kept and 1004 in kept
        again = await keeper.run("purge")
        assert again.rows == 0
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_purge_to_files(env, reactor, tmp_path):
    store, cipher = env
    clock = _purge_setup(store, cipher)
    keeper, runner = make_keeper(store, reactor, clock, base_dir=str(tmp_path),
                                 hk=settings(chunk_size=4, purge={"mode": "file",
                                                                  "folder": "var/archive"}))
    try:
        res = await keeper.run("purge")
        assert (res.outcome, res.rows) == ("ok", 6)
        folder = tmp_path / "var" / "archive"
        files = sorted(os.listdir(folder))
        assert len(files) == 2 and files[0].endswith("-history.csv")
        with open(folder / files[1], newline="") as f:
            rows = list(csv.DictReader(f))
        assert [int(r["serial"]) for r in rows] == [1000, 1001, 1002, 1003, 1005, 1006]
        assert rows[0]["state"] == "used" and len(rows[0]["blind_index"]) == 64
        assert "hrn_ct" not in rows[0]
        with open(folder / files[0], newline="") as f:
            hist = list(csv.DictReader(f))
        assert sorted(int(h["serial"]) for h in hist) == [1000, 1000, 1001, 1001, 1002, 1003, 1005, 1006]
        assert sorted(states(store)) == [1004, 1007, 1008, 1009]
        assert _count(store, voucher_archive) == 0
        # nothing to do: no empty file left behind
        clock.advance(1)
        again = await keeper.run("purge")
        assert again.rows == 0 and len(os.listdir(folder)) == 2
    finally:
        await runner.stop()


def test_append_sink_rewrites_a_chunk_run_twice(tmp_path):
    from core.housekeeping.files import AppendSink
    sink = AppendSink(str(tmp_path / "a.csv"), ("x", "y")).create()
    off = sink.append([[1, 2]])
    assert sink.append([[1, 2]]) == off          # a retried unit writes the chunk once
    off2 = sink.at(off).append([[3, 4]])
    assert open(tmp_path / "a.csv").read() == "x,y\n1,2\n3,4\n"
    assert off2 == len("x,y\n1,2\n3,4\n")
    with pytest.raises(FileExistsError):
        AppendSink(str(tmp_path / "a.csv"), ("x",)).create()


# -- reconcile ---------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_reconcile_job_concludes_old_pending_activations(env, reactor):
    store, cipher = env
    make_batch(store, cipher, count=3)
    clock = clock_at()
    old = int(clock.seconds() * 1000) - 3600_000

    def pending(tx):
        for i, serial in enumerate((1000, 1001)):
            tid = "t-%d" % i
            tx.execute(update(voucher).where(voucher.c.serial == serial)
                       .values(state="reserved", txn_id=tid, used_by="381641234567"))
            tx.insert(txn, {"id": tid, "kind": "activation", "msisdn": "381641234567",
                            "account": "381641234567", "serial": serial, "channel": "sms",
                            "state": "pending", "result_code": 151, "amount": 1000,
                            "currency": "EUR", "validity_days": 30, "started_at": old,
                            "reserved_at": old})
    store.run_sync(pending)
    billing = FakeBilling()
    billing.credits["t-0"] = ("381641234567", 1000, "EUR", 30)     # t-0 was credited
    keeper, runner = make_keeper(store, reactor, clock)
    keeper.reconciler = Reconciler(runner, billing, clock=clock, older_than_seconds=120)
    try:
        before = _snapshot(store)
        dry = await keeper.run("reconcile", dry_run=True)
        assert (dry.outcome, dry.rows) == ("dry-run", 2)
        assert _snapshot(store) == before
        res = await keeper.run("reconcile")
        assert (res.outcome, res.rows) == ("ok", 2)
        assert res.message == "examined 2, committed 1, released 1, left pending 0"
        st = states(store)
        assert (st[1000], st[1001]) == ("used", "available")
    finally:
        await runner.stop()


# -- daily report -------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_daily_report_files(env, reactor, tmp_path):
    store, cipher = env
    make_batch(store, cipher, count=4)                                          # T10
    make_batch(store, cipher, count=2, vt=VType(code="T20", face_value=2000), available=False)
    clock = clock_at()
    now = int(clock.seconds() * 1000)
    yesterday = now - now % DAY_MS - DAY_MS + 3600_000
    set_vouchers(store, 1000, 1001, state="used")

    def txns(tx):
        for i, (serial, channel, state, code, at) in enumerate([
            (1000, "sms", "success", 0, yesterday),
            (1001, "sms", "success", 0, yesterday + 1),
            (1002, "ussd", "failed", 115, yesterday + 2),
            (None, "sms", "failed", 119, yesterday + 3),
            (1003, "sms", "success", 0, now),                    # today: not in the report
        ]):
            tx.insert(txn, {"id": "t%d" % i, "kind": "activation", "msisdn": "381641234567",
                            "serial": serial, "channel": channel, "state": state,
                            "result_code": code, "amount": 1000 if serial else None,
                            "currency": "EUR" if serial else None, "started_at": at})
    store.run_sync(txns)
    keeper, runner = make_keeper(store, reactor, clock, base_dir=str(tmp_path))
    try:
        day = fmt_day(now - now % DAY_MS)
        dry = await keeper.run("daily_report", dry_run=True)
        assert dry.outcome == "dry-run" and "would write" in dry.message
        assert not os.path.exists(tmp_path / "var")
        res = await keeper.run("daily_report")
        assert res.outcome == "ok"
        folder = tmp_path / "var" / "reports"
        with open(folder / ("recharges-%s.csv" % day), newline="") as f:
            rec = list(csv.reader(f))
        assert rec[0] == ["day", "channel", "voucher_type", "state", "result_code", "result",
                          "count", "amount_minor", "currency"]
        assert rec[1:] == [
            [day, "sms", "-", "failed", "119", "INVALID_HRN", "1", "0", ""],
            [day, "sms", "T10", "success", "0", "SUCCESS", "2", "2000", "EUR"],
            [day, "ussd", "T10", "failed", "115", "BILLING_REJECTED", "1", "0", "EUR"],
        ]
        with open(folder / ("stock-%s.csv" % day), newline="") as f:
            stock = list(csv.reader(f))
        assert [r[1:] for r in stock[1:]] == [
            ["T10", "available", "2", "2000", "EUR"], ["T10", "used", "2", "2000", "EUR"],
            ["T20", "generated", "2", "4000", "EUR"]]
        assert res.rows == 6
        # a second run replaces the files
        assert (await keeper.run("daily_report")).outcome == "ok"
        assert sorted(os.listdir(folder)) == ["recharges-%s.csv" % day, "stock-%s.csv" % day]
    finally:
        await runner.stop()


# -- near expiry ----------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_near_expiry_warns_per_type_over_the_threshold(env, reactor):
    store, cipher = env
    make_batch(store, cipher, count=5, expires_in_days=10)                      # T10, soon
    make_batch(store, cipher, count=2, vt=VType(code="T20"), available=False, expires_in_days=10)
    make_batch(store, cipher, count=7, vt=VType(code="T30"), expires_in_days=90)   # not soon
    clock = clock_at()
    keeper, runner = make_keeper(store, reactor, clock,
                                 hk=settings(near_expiry={"days": 30, "threshold": 3}))
    try:
        res = await keeper.run("near_expiry")
        assert (res.outcome, res.rows) == ("ok", 7)
        assert res.message.startswith("WARNING unused stock expiring within 30 days: T10: 5 "
                                      "(available 5), first expiry ")
        assert "T20" not in res.message and "T30" not in res.message
        keeper.settings = settings(near_expiry={"days": 5, "threshold": 1})
        quiet = await keeper.run("near_expiry")
        assert quiet.rows == 0 and quiet.message.startswith("no voucher type has 1 or more")
    finally:
        await runner.stop()


# -- leases ---------------------------------------------------------------------------------
def test_lease_units(env):
    store, _ = env
    run = store.run_sync
    assert run(leases.current, "j") is None
    assert run(leases.acquire, "j", "a:1", 1000, 500)
    assert not run(leases.acquire, "j", "b:1", 1200, 500)             # held until 1500
    assert run(leases.renew, "j", "a:1", 1400, 500)                   # now until 1900
    assert not run(leases.acquire, "j", "b:1", 1600, 500)
    assert not run(leases.renew, "j", "b:1", 1600, 500)               # not b's
    assert run(leases.release, "j", "a:1", 1700)
    assert run(leases.current, "j") == ("a:1", 1700)
    # a scheduled firing at 1650 already ran (ended 1700): no second run of it
    assert not run(leases.acquire, "j", "b:2", 1800, 500, 1650)
    # the next firing runs; on demand runs too
    assert run(leases.acquire, "j", "b:2", 1800, 500, 1750)
    assert run(leases.release, "j", "b:2", 1800)
    assert run(leases.acquire, "j", "c:1", 1800, 500)                 # on demand, same ms
    # a lapsed lease (its node died) can be taken over; the old holder cannot renew
    assert run(leases.acquire, "j", "d:1", 2300, 500)
    assert not run(leases.renew, "j", "c:1", 2300, 500)
    assert not run(leases.release, "j", "c:1", 2300)


@pytest_twisted.ensureDeferred
async def test_a_restarted_node_ends_the_leases_its_killed_run_left(env, reactor):
    """Killed while a job ran, the node (same name, new run) must not skip that job
    as "running elsewhere" until the old lease lapses; other nodes' leases stay."""
    store, _ = env
    clock = clock_at()
    now = int(clock.seconds() * 1000)
    store.run_sync(leases.acquire, "near_expiry", "n1:dead0001", now - 1000, 600_000)
    store.run_sync(leases.acquire, "lift_bars", "n10:alive001", now - 1000, 600_000)
    store.run_sync(leases.acquire, "purge", "n_:other001", now - 1000, 600_000)   # LIKE-escaped
    keeper, runner = make_keeper(store, reactor, clock, node="n1")
    try:
        skipped = await keeper.run("near_expiry")
        assert skipped.outcome == "skipped" and "n1:dead0001" in skipped.message
        assert await keeper.reclaim() == 1
        ran = await keeper.run("near_expiry")
        assert ran.outcome == "ok"
        assert store.run_sync(leases.current, "lift_bars") == ("n10:alive001", now + 599_000)
        assert store.run_sync(leases.current, "purge") == ("n_:other001", now + 599_000)
        assert await keeper.reclaim() == 0
    finally:
        await runner.stop()


# -- forget requests --------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_forget_requests_drops_keys_past_the_replay_window_but_not_due_replies(env, reactor):
    from core.schema import request_inbox
    store, _ = env
    clock = clock_at()
    now = int(clock.seconds() * 1000)
    hour = 3600_000

    def rows(tx):
        for n, (age, state) in enumerate([(2 * hour, "none"), (2 * hour, "sent"),
                                          (2 * hour, "expired"), (3 * hour, "due"),
                                          (hour // 2, "none"), (hour // 2, "sent")]):
            tx.insert(request_inbox, {"key": bytes([n]) * 32, "txn_id": "t%d" % n,
                                      "channel": "sms", "received_at": now - age,
                                      "reply_state": state, "attempts": 0})
    store.run_sync(rows)
    keeper, runner = make_keeper(store, reactor, clock, hk=settings(chunk_size=2))
    keeper.replay_window_seconds = 3600
    try:
        dry = await keeper.run("forget_requests", dry_run=True)
        assert (dry.outcome, dry.rows) == ("dry-run", 3)
        assert _count(store, request_inbox) == 6
        res = await keeper.run("forget_requests")
        assert (res.outcome, res.rows) == ("ok", 3)
        assert res.message == "forgot 3 request key(s) older than 3600 s"
        left = store.run_sync(lambda tx: sorted(r[0] for r in tx.execute(
            select(request_inbox.c.txn_id)).rows))
        assert left == ["t3", "t4", "t5"]          # the due reply, and keys inside the window
        # a job-level older_than_seconds longer than the window wins
        keeper.settings = settings(forget_requests={"older_than_seconds": 4 * 3600})
        keeper.replay_window_seconds = 60
        assert (await keeper.run("forget_requests")).rows == 0
    finally:
        await runner.stop()
