"""Admin GUI housekeeping: find vouchers, detail with history, masked HRN and audited reveal,
block / unblock / make available / extend expiry on one voucher or a range with a preview."""
from __future__ import annotations

import datetime as dt
import json

import pytest_twisted
from sqlalchemy import func, select

from core.schema import audit_log, voucher
from tests.admin_helpers import admin_node  # noqa: F401
from tests.helpers import make_batch


def gen(node, count=20, available=False):
    return make_batch(node.store, node.node.cipher, count=count,
                      vt=node.config.voucher_type("EUR10"), available=available)


def states(node):
    return dict(node.store.run_sync(lambda tx: tx.execute(
        select(voucher.c.state, func.count()).group_by(voucher.c.state)).rows))


def audits(node, action):
    return node.store.run_sync(lambda tx: tx.execute(
        select(audit_log.c.actor, audit_log.c.target, audit_log.c.detail)
        .where(audit_log.c.action == action)).rows)


@pytest_twisted.ensureDeferred
async def test_find_by_serial_range_batch_state_and_msisdn(admin_node):
    info, _ = gen(admin_node, 20, available=True)
    first = info.first_serial
    admin_node.store.run_sync(lambda tx: tx.execute(
        voucher.update().where(voucher.c.serial == first + 3).values(state="used", used_by="381641234567")))
    c = await admin_node.logged_in("hk")
    r = await c.get("/vouchers?serial=%d" % first)
    assert r.status == 200 and r.text.count('href="/vouchers/') == 1
    r = await c.get("/vouchers?range=%d-%d" % (first, first + 4))
    assert r.text.count('<a href="/vouchers/') == 5
    r = await c.get("/vouchers?batch=%d" % info.batch_id)
    assert r.text.count('<a href="/vouchers/') == 20
    r = await c.get("/vouchers?batch=%d&state=used" % info.batch_id)
    assert r.text.count('<a href="/vouchers/') == 1
    r = await c.get("/vouchers?msisdn=0641234567")                 # national form, normalised
    assert r.text.count('<a href="/vouchers/') == 1 and str(first + 3) in r.text
    assert (await c.get("/vouchers?msisdn=12")).status == 400
    assert (await c.get("/vouchers?range=abc")).status == 400
    assert (await c.get("/vouchers?serial=1")).status == 200


@pytest_twisted.ensureDeferred
async def test_detail_masks_the_hrn_and_only_an_administrator_reveals_it(admin_node):
    info, hrns = gen(admin_node, 3)
    serial = info.first_serial
    hrn = hrns[serial]
    hk = await admin_node.logged_in("hk")
    r = await hk.get("/vouchers/%d" % serial)
    assert r.status == 200 and hrn not in r.text and "•" * 14 in r.text
    assert "Reveal" not in r.text and "generated" in r.text
    assert (await hk.post("/vouchers/%d/reveal" % serial)).status == 403
    assert (await hk.get("/vouchers/1")).status == 404
    adm = await admin_node.logged_in("admin")
    r = await adm.get("/vouchers/%d" % serial)
    assert "Reveal" in r.text and hrn not in r.text
    r = await adm.post("/vouchers/%d/reveal" % serial)
    assert r.status == 200 and hrn in r.text and r.header("cache-control") == "no-store"
    assert [(a, t) for a, t, _ in audits(admin_node, "voucher.reveal")] == [("admin", str(serial))]
    assert all(hrn not in (d or "") for *_, d in admin_node.store.run_sync(
        lambda tx: tx.execute(select(audit_log.c.detail)).rows))


@pytest_twisted.ensureDeferred
async def test_range_block_with_preview_then_unblock(admin_node):
    info, _ = gen(admin_node, 20, available=True)
    first = info.first_serial
    rng = "%d-%d" % (first + 5, first + 14)
    c = await admin_node.logged_in("hk")
    await c.get("/vouchers")
    form = {"range": rng, "batch": "", "action": "block", "reason": "stolen", "note": "box 7",
            "expires": ""}
    r = await c.post("/vouchers/change/preview", form)
    assert r.status == 200 and "<strong>10</strong> of 10 selected vouchers will change" in r.text
    assert states(admin_node) == {"available": 20}                    # preview changes nothing
    r = await c.post("/vouchers/change/apply", {**form, "expected": "10"})
    assert r.status == 303 and r.header("location") == "/vouchers?range=" + rng
    assert states(admin_node) == {"available": 10, "blocked": 10}
    r = await c.get(r.header("location"))
    assert "10 changed, 0 skipped" in r.text and "stolen: box 7" in r.text
    (actor, target, detail), = audits(admin_node, "voucher.block")
    assert actor == "hk" and target == "serials %d-%d" % (first + 5, first + 14)
    assert json.loads(detail) == {"action": "block", "changed": 10, "skipped": 0,
                                  "reason": "stolen: box 7"}
    # history of one of them
    r = await c.get("/vouchers/%d" % (first + 5))
    assert "blocked" in r.text and "stolen: box 7" in r.text and "hk" in r.text
    # unblock the whole batch: only the 10 blocked change
    form = {"range": "", "batch": str(info.batch_id), "action": "unblock", "reason": "stolen",
            "note": "", "expires": ""}
    r = await c.post("/vouchers/change/preview", form)
    assert "<strong>10</strong> of 20 selected vouchers will change" in r.text
    r = await c.post("/vouchers/change/apply", {**form, "expected": "10"})
    assert r.status == 303 and states(admin_node) == {"available": 20}


@pytest_twisted.ensureDeferred
async def test_make_available_and_extend_expiry_of_one_voucher(admin_node):
    info, _ = gen(admin_node, 3)
    serial = info.first_serial
    c = await admin_node.logged_in("admin")
    await c.get("/vouchers/%d" % serial)
    form = {"range": str(serial), "action": "available", "reason": "stolen", "note": "",
            "expires": ""}
    r = await c.post("/vouchers/change/preview", form)
    assert "<strong>1</strong> of 1" in r.text
    r = await c.post("/vouchers/change/apply", form)
    assert r.status == 303 and r.header("location") == "/vouchers/%d" % serial
    assert states(admin_node) == {"available": 1, "generated": 2}
    day = dt.date.today() + dt.timedelta(days=400)
    form = {"range": str(serial), "action": "extend", "expires": day.isoformat(), "reason": "x"}
    r = await c.post("/vouchers/change/preview", form)
    assert r.status == 200 and day.isoformat() in r.text
    r = await c.post("/vouchers/change/apply", form)
    r = await c.get("/vouchers/%d" % serial)
    assert day.isoformat() in r.text
    # the preview warns when nothing would change
    r = await c.post("/vouchers/change/preview", {"range": str(serial), "action": "unblock"})
    assert "Nothing to change" in r.text


@pytest_twisted.ensureDeferred
async def test_change_forms_are_validated(admin_node):
    c = await admin_node.logged_in("hk")
    await c.get("/vouchers")
    past = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    cases = [
        ({"action": "block", "reason": "stolen"}, "either a serial"),
        ({"range": "1-2", "batch": "3", "action": "block", "reason": "stolen"}, "either a serial"),
        ({"range": "5-1", "action": "block", "reason": "stolen"}, "empty"),
        ({"range": "1-2", "action": "explode"}, "choose an action"),
        ({"range": "1-2", "action": "block", "reason": "bored"}, "needs a reason"),
        ({"range": "1-2", "action": "extend"}, "new expiry"),
        ({"range": "1-2", "action": "extend", "expires": past}, "past"),
    ]
    for form, text in cases:
        for path in ("/vouchers/change/preview", "/vouchers/change/apply"):
            r = await c.post(path, form)
            assert r.status == 400 and text in r.text, (form, path, r.text[-300:])


@pytest_twisted.ensureDeferred
async def test_housekeeping_runs_are_listed(admin_node):
    from core.schema import housekeeping_run
    admin_node.store.run_sync(lambda tx: tx.insert(housekeeping_run, {
        "job": "expire", "node": "node1", "started_at": 1, "finished_at": 2, "rows": 7,
        "outcome": "ok", "message": "7 vouchers expired"}))
    c = await admin_node.logged_in("hk")
    r = await c.get("/vouchers")
    assert "7 vouchers expired" in r.text


@pytest_twisted.ensureDeferred
async def test_run_a_housekeeping_job_on_demand(admin_node):
    from core.schema import housekeeping_run
    info, _ = gen(admin_node, 3)
    # the Deferred of each run the GUI starts: the test waits for the run
    # itself instead of polling the store against a wall-clock timeout
    keeper = admin_node.ctx.keeper()
    started, run = [], keeper.run

    def watched_run(job, **kw):
        started.append(run(job, **kw))
        return started[-1]
    keeper.run = watched_run
    admin_node.store.run_sync(lambda tx: tx.execute(
        voucher.update().values(expires_at=1)))                   # all past their expiry
    c = await admin_node.logged_in("hk")
    r = await c.get("/vouchers")
    assert 'id="run-job"' in r.text and "expire" in r.text
    r = await c.post("/housekeeping/run", {"job": "expire", "dry_run": "1"})
    assert r.status == 303
    assert (await c.post("/housekeeping/run", {"job": "nope"})).status == 400
    assert len(started) == 1
    await started[0]
    runs = admin_node.store.run_sync(lambda tx: tx.execute(
        select(housekeeping_run.c.job, housekeeping_run.c.outcome)).rows)
    assert [tuple(r) for r in runs] == [("expire", "dry-run")]
    assert states(admin_node) == {"generated": 3}
    r = await c.post("/housekeeping/run", {"job": "expire"})
    assert len(started) == 2
    await started[1]
    assert states(admin_node) == {"expired": 3}
    assert [(a, t) for a, t, _ in audits(admin_node, "housekeeping.run")] == [("hk", "expire")] * 2
