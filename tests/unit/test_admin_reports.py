"""Admin GUI reports: recharges, stock, near expiry, distribution, loyalty; SVG charts and CSV."""
from __future__ import annotations

import csv
import io
import time

import pytest_twisted

from admin import charts
from admin.reports import CSV
from core import export as ex
from core.schema import txn
from tests.admin_helpers import admin_node, partner_cert  # noqa: F401
from tests.helpers import make_batch


def seed(node, tmp_path):
    cipher = node.node.cipher
    vt = node.config.voucher_type("EUR10")
    used, _ = make_batch(node.store, cipher, count=4, vt=vt, available=True, expires_in_days=200)
    make_batch(node.store, cipher, count=6, vt=node.config.voucher_type("EUR5"), available=True,
               expires_in_days=10)
    fresh, _ = make_batch(node.store, cipher, count=5, vt=vt, available=False, expires_in_days=200)
    now = int(time.time() * 1000)

    def rows(tx):
        for i, (code, state, channel) in enumerate([(0, "success", "sms"), (0, "success", "ussd"),
                                                    (119, "failed", "sms")]):
            tx.insert(txn, {"id": "t%d" % i, "kind": "activation", "msisdn": "381641234567",
                            "serial": used.first_serial + i, "channel": channel, "state": state,
                            "result_code": code, "amount": 1000 if code == 0 else None,
                            "currency": "EUR", "started_at": now - i})
        tx.insert(txn, {"id": "l1", "kind": "loyalty", "msisdn": "381641234567", "channel": "sms",
                        "state": "success", "result_code": 0, "amount": 250, "currency": "EUR",
                        "plan_id": "gold", "started_at": now})
    node.store.run_sync(rows)
    pem, *_ = partner_cert(tmp_path, "R")
    pid, _ = node.store.run_sync(ex.save_partner, "Retail", pem.encode(), actor="t", origin="t", now=1)
    node.store.run_sync(ex.export_vouchers, cipher, ex.ExportFilter(batch_id=fresh.batch_id, count=3),
                        partner_id=pid, actor="t", origin="t", now=now, target_state="available",
                        export_dir=node.config.admin.export_dir, max_count=100)


@pytest_twisted.ensureDeferred
async def test_reports_page_and_csv(admin_node, tmp_path):
    seed(admin_node, tmp_path)
    c = await admin_node.logged_in("rv")
    r = await c.get("/reports")
    assert r.status == 200 and r.text.count("<svg") == 6
    for text in ("Recharge attempts per day", "sms", "ussd", "119 INVALID_HRN", "Retail", "gold"):
        assert text in r.text, text

    async def table(name, q=""):
        r = await c.get("/reports/%s.csv%s" % (name, q))
        assert r.status == 200 and r.header("content-type").startswith("text/csv")
        return list(csv.reader(io.StringIO(r.text)))

    assert (await table("recharges-channel"))[1:] == [["sms", "2", "1", "1000"], ["ussd", "1", "1", "1000"]]
    assert (await table("recharges-type"))[1:] == [["EUR10", "3", "2", "2000"]]
    assert (await table("recharges-result"))[1:] == [["0 SUCCESS", "2", "2", "2000"],
                                                     ["119 INVALID_HRN", "1", "0", "0"]]
    day = await table("recharges-day")
    assert len(day) == 2 and day[1][1:] == ["3", "2", "2000"]
    stock = await table("stock")
    assert ["EUR10", "available", "7"] in stock and ["EUR10", "generated", "2"] in stock
    assert ["EUR5", "available", "6"] in stock
    assert (await table("near-expiry"))[1:] == [["EUR5", "available", "6"]]
    dist = await table("distribution")
    assert dist[1][:3] == ["Retail", "1", "3"]
    assert (await table("loyalty"))[1:] == [["gold", "success", "1", "250", "EUR"]]
    # an old period has no recharges
    assert len(await table("recharges-day", "?from=2001-01-01&to=2001-01-31")) == 1
    assert set(CSV) == {"recharges-day", "recharges-channel", "recharges-type", "recharges-result",
                        "stock", "near-expiry", "distribution", "loyalty"}
    assert (await c.get("/reports/nope.csv")).status == 404
    assert (await c.get("/reports?from=2020-02-02&to=2020-01-01")).status == 400


def test_charts_escape_labels_and_handle_no_data():
    svg = charts.hbar([("<b>x</b>", 3), ("y", 0)], title="T & U")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "T &amp; U" in svg
    assert "no data" in charts.hbar([], title="t") and "no data" in charts.vbar([], title="t")
    assert svg.count("<rect") == 2


def test_queries_run_on_both_databases(db_url, tmp_path):
    """The core queries behind the GUI's pages are portable (SQLite and PostgreSQL)."""
    from core import batches, queries, reports, users, voucher_admin
    from core.audit import audit, entries
    from core.vouchers import Selection
    from tests.helpers import make_store
    store, cipher = make_store(db_url, str(tmp_path))
    try:
        info, _ = make_batch(store, cipher, count=5, available=True)
        now = int(time.time() * 1000)
        store.run_sync(lambda tx: tx.insert(txn, {
            "id": "a1", "kind": "activation", "msisdn": "381641234567", "serial": info.first_serial,
            "channel": "sms", "state": "success", "result_code": 0, "amount": 1000,
            "currency": "EUR", "started_at": now}))
        store.run_sync(lambda tx: audit(tx, at=now, actor="x", action="voucher.block",
                                        target="serial 1", origin="t"))
        d = store.run_sync(reports.gather, now - 86400000, now + 86400000, now, 60)
        assert d["recharges"]["channel"] == [("sms", 1, 1, 1000)]
        assert d["stock"]["near"] == [("T10", "available", 5)]
        found = store.run_sync(lambda tx: voucher_admin.search(
            tx, rng=(info.first_serial, info.last_serial), state="available"))
        assert len(found.vouchers) == 5 and not found.more
        pv = store.run_sync(voucher_admin.preview_change, Selection.of_batch(info.batch_id),
                            "available", now)
        assert pv["will_change"] == 0 and pv["total"] == 5
        assert [t["id"] for t in store.run_sync(lambda tx: queries.transactions(
            tx, msisdn="381641234567", start=now - 1, end=now + 1))] == ["a1"]
        assert len(store.run_sync(lambda tx: entries(tx, action="voucher.",
                                                     target="serial"))) == 1
        assert store.run_sync(lambda tx: entries(tx, action="voucher_")) == []
        assert store.run_sync(voucher_admin.summary, info.first_serial)["state"] == "available"
        assert [b["id"] for b in store.run_sync(batches.list_batches, None, 10)] == [info.batch_id]
        assert store.run_sync(batches.batch_detail, info.batch_id)["states"] == {"available": 5}
        assert store.run_sync(users.list_users) == []
    finally:
        store.dispose()
