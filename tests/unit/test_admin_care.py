"""Admin GUI customer care: activation on a subscriber's behalf, transactions, bars and unbar."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import pytest_twisted
from sqlalchemy import select

from core.schema import audit_log, fraud_counter
from tests.admin_helpers import admin_node  # noqa: F401
from tests.helpers import make_batch, txn_rows, voucher_row

MSISDN = "381641234567"


def gen(node, count=5):
    return make_batch(node.store, node.node.cipher, count=count,
                      vt=node.config.voucher_type("EUR10"), available=True)


@pytest_twisted.ensureDeferred
async def test_activation_on_a_subscribers_behalf(admin_node):
    info, hrns = gen(admin_node)
    serial = info.first_serial
    hrn = hrns[serial]
    c = await admin_node.logged_in("care")
    await c.get("/care")
    r = await c.post("/care/activate", {"msisdn": "064 123 4567", "hrn": hrn[:7] + "-" + hrn[7:]})
    assert r.status == 200 and "0 SUCCESS" in r.text and "10.00 EUR" in r.text
    assert hrn not in r.text
    assert voucher_row(admin_node.store, serial)[:2] == ("used", MSISDN)
    (t,) = txn_rows(admin_node.store)
    assert (t["channel"], t["operator_user"], t["msisdn"], t["state"]) == \
        ("customer_care", "care", MSISDN, "success")
    assert t["source"] == "gui:127.0.0.1"
    # again: already used by this subscriber
    r = await c.post("/care/activate", {"msisdn": MSISDN, "hrn": hrn})
    assert "107 VOUCHER_ALREADY_USED_BY_YOU" in r.text
    r = await c.post("/care/activate", {"msisdn": "12", "hrn": hrn})
    assert "150 INVALID_MSISDN" in r.text
    r = await c.post("/care/activate", {"msisdn": MSISDN, "hrn": ""})
    assert r.status == 400
    entries = admin_node.store.run_sync(lambda tx: tx.execute(
        select(audit_log.c.actor, audit_log.c.target, audit_log.c.detail)
        .where(audit_log.c.action == "care.activate")).rows)
    assert [json.loads(d)["result"] for *_, d in entries] == [0, 107, 150]
    assert all(hrn not in d for *_, d in entries)
    # the transactions of this subscriber, with status and result text
    r = await c.get("/care?msisdn=%2B" + MSISDN)
    assert r.status == 200 and t["id"] in r.text
    assert "Your account was credited." in r.text and "You have already used this voucher." in r.text
    assert "Not barred" in r.text
    r = await c.get("/care?serial=%d" % serial)
    assert t["id"] in r.text and "used by %s" % MSISDN in r.text
    today = dt.date.today()
    r = await c.get("/care?msisdn=%s&from=%s&to=%s" % (MSISDN, today, today))
    assert t["id"] in r.text
    old = today - dt.timedelta(days=10)
    r = await c.get("/care?msisdn=%s&from=%s&to=%s" % (MSISDN, old, old))
    assert t["id"] not in r.text and "No transactions" in r.text
    assert (await c.get("/care?from=%s&to=%s" % (today, old))).status == 400
    assert (await c.get("/care?msisdn=abc")).status == 400


def bar(node, until_ms, failures=5):
    node.store.run_sync(lambda tx: tx.insert(fraud_counter, {
        "subject": "msisdn:" + MSISDN, "failures": failures, "window_start": 1,
        "barred_until": until_ms, "last_failure_at": 1}))


@pytest_twisted.ensureDeferred
async def test_barred_status_and_unbar_by_the_supervisor_only(admin_node):
    info, hrns = gen(admin_node)
    until = admin_node.ctx.now() + 600_000
    bar(admin_node, until)
    c = await admin_node.logged_in("care")
    r = await c.get("/care?msisdn=" + MSISDN)
    assert "Barred until" in r.text and "5 failed attempts" in r.text
    assert 'id="unbar"' not in r.text and "supervisor" in r.text
    r = await c.post("/care/unbar", {"msisdn": MSISDN})
    assert r.status == 403
    r = await c.post("/care/activate", {"msisdn": MSISDN, "hrn": hrns[info.first_serial]})
    assert "103 SUBSCRIBER_BARRED" in r.text and "Barred until" in r.text
    a = await admin_node.logged_in("admin")
    r = await a.get("/care?msisdn=" + MSISDN)
    assert 'id="unbar"' in r.text
    r = await a.post("/care/unbar", {"msisdn": "0641234567"})
    assert r.status == 303
    r = await a.get(r.header("location"))
    assert "unbarred" in r.text and "no failed attempts" in r.text
    (actor, target, detail), = admin_node.store.run_sync(lambda tx: tx.execute(
        select(audit_log.c.actor, audit_log.c.target, audit_log.c.detail)
        .where(audit_log.c.action == "fraud.unbar")).rows)
    assert (actor, target, json.loads(detail)["barred_until"]) == ("admin", MSISDN, until)
    r = await c.post("/care/activate", {"msisdn": MSISDN, "hrn": hrns[info.first_serial]})
    assert "0 SUCCESS" in r.text
    assert (await a.post("/care/unbar", {"msisdn": "x"})).status == 400


@pytest.fixture
def loyal_admin_node(conf_dir, reactor):
    """An admin node whose copied conf has the monthly loyalty plan enabled."""
    from tests.admin_helpers import AdminNode, init_instance, write_conf
    loyalty = conf_dir / "loyalty.toml"
    loyalty.write_text(loyalty.read_text().replace(
        'id = "monthly"\nname = "Monthly recharger"\nenabled = false',
        'id = "monthly"\nname = "Monthly recharger"\nenabled = true', 1))
    path = write_conf(conf_dir)
    init_instance(path)
    node = AdminNode(path, reactor)
    yield node
    node.close()


@pytest_twisted.ensureDeferred
async def test_care_page_shows_loyalty_progress_and_rewards(loyal_admin_node):
    """Issue 9: the subscriber's counters, progress and rewards are in the GUI too."""
    node = loyal_admin_node
    _, hrns = gen(node, count=6)
    c = await node.logged_in("care")
    await c.get("/care")
    for hrn in list(hrns.values())[:5]:
        r = await c.post("/care/activate", {"msisdn": MSISDN, "hrn": hrn})
        assert "0 SUCCESS" in r.text
    r = await c.get("/care?msisdn=" + MSISDN)
    assert r.status == 200 and 'id="loyalty"' in r.text
    assert "Monthly recharger" in r.text and "rewarded" in r.text   # Silver at 5
    assert "5 recharges / 0 to go" in r.text                          # Gold needs 10
    assert "2.00 EUR" in r.text                                       # the Silver bonus


@pytest_twisted.ensureDeferred
async def test_bars_on_single_sources_show_and_an_unbar_lifts_them(admin_node):
    now = admin_node.ctx.now()
    admin_node.store.run_sync(lambda tx: tx.insert(fraud_counter, {
        "subject": "msisdn:%s@web:203.0.113.9" % MSISDN, "failures": 5, "window_start": 1,
        "barred_until": now + 600_000, "last_failure_at": 1}))
    a = await admin_node.logged_in("admin")
    r = await a.get("/care?msisdn=" + MSISDN)
    assert "Not barred; no failed attempts counted." in r.text      # not barred everywhere
    assert "web:203.0.113.9: 5 failed attempts, barred there until" in r.text
    assert 'id="unbar"' in r.text
    r = await a.get("/fraud")
    assert "web:203.0.113.9" in r.text and MSISDN in r.text
    r = await a.post("/care/unbar", {"msisdn": MSISDN})
    assert r.status == 303
    r = await a.get("/care?msisdn=" + MSISDN)
    assert "scoped-bars" not in r.text
    assert admin_node.store.run_sync(lambda tx: tx.execute(select(fraud_counter)).rows) == []
