"""The GUI's home page (dashboard): today's activations by channel and result, failure
ratio, stock by type and state, billing peers, housekeeping runs; result codes drawn in
their outcome's colour on every page; the favicon."""
from __future__ import annotations

import html
import re
import time

import pytest
import pytest_twisted
from twisted.internet import defer, task

from admin import dashboard, web
from core.housekeeping import runs
from core.requests import ActivationRequest
from core.results import FAILURE, SUCCESS, TEMPORARY, ResultCode, outcome
from core.schema import txn
from core.timeutil import DAY_MS
from tests.admin_helpers import AdminNode, init_instance, write_conf
from tests.helpers import make_batch


@pytest.fixture
def fresh_node(conf_dir, reactor):
    """A GUI node whose dashboard reads the store on every view."""
    path = write_conf(conf_dir, dashboard_cache_seconds="0")
    init_instance(path)
    n = AdminNode(path, reactor)
    yield n
    n.close()


def table(page: str, table_id: str) -> list[list[str]]:
    """The text of each data row's cells of table C{table_id} in C{page}."""
    m = re.search(r'<table id="%s">(.*?)</table>' % table_id, page, re.S)
    assert m, table_id
    rows = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), re.S)[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def kpi(page: str, name: str) -> str:
    return re.search(r'id="kpi-%s">([^<]*)<' % name, page).group(1)


async def activate(node, channel, msisdn, hrn):
    res = await node.ctx.activation.activate(ActivationRequest(msisdn=msisdn, hrn=hrn,
                                                               channel=channel))
    return int(res.code)


def test_every_result_code_has_an_outcome_class():
    assert outcome(0) == SUCCESS
    assert {c for c in ResultCode if outcome(c) == TEMPORARY} == {
        ResultCode.SYSTEM_ERROR, ResultCode.SUBSCRIBER_BARRED, ResultCode.VOUCHER_PENDING,
        ResultCode.BILLING_UNAVAILABLE, ResultCode.DATABASE_UNAVAILABLE, ResultCode.SOURCE_THROTTLED}
    assert outcome(119) == outcome(108) == outcome(115) == outcome(999) == FAILURE
    assert web.result_outcome("119 INVALID_HRN") == FAILURE
    assert web.result_outcome("151 BILLING_UNAVAILABLE") == TEMPORARY
    assert web.result_outcome(0) == web.result_outcome("0 SUCCESS") == SUCCESS
    assert web.result_outcome("channel") == FAILURE
    assert web.percent(4 / 7) == "57.1 %" and web.percent(None) == "-"


def test_summary_counts_per_channel_and_outcome():
    s = dashboard.summarise([("sms", 0, 5), ("sms", 119, 3), ("ussd", 151, 2), ("ussd", 0, 0)])
    assert s["total"].attempts == 10 and s["total"].by_outcome == {SUCCESS: 5, TEMPORARY: 2, FAILURE: 3}
    assert s["total"].failure_ratio == 0.5
    ch = dict(s["channels"])
    assert ch["sms"].failure_ratio == 3 / 8 and ch["ussd"].failure_ratio == 1.0
    assert s["results"] == [(0, "SUCCESS", SUCCESS, 5), (119, "INVALID_HRN", FAILURE, 3),
                            (151, "BILLING_UNAVAILABLE", TEMPORARY, 2)]
    assert dashboard.summarise([])["total"].failure_ratio is None
    st = dashboard.stock_table([("EUR5", "available", 3), ("EUR10", "used", 2), ("EUR10", "odd", 1)])
    assert st["states"][-1] == "odd" and st["total"] == 6
    assert st["rows"][0] == ("EUR10", [0, 0, 0, 2, 0, 0, 1], 3)


@pytest_twisted.ensureDeferred
async def test_dashboard_after_known_activations(fresh_node):
    node = fresh_node
    cipher = node.node.cipher
    info, hrns = make_batch(node.store, cipher, count=5, vt=node.config.voucher_type("EUR10"))
    make_batch(node.store, cipher, count=4, vt=node.config.voucher_type("EUR5"), available=False)
    s = [info.first_serial + i for i in range(5)]
    codes = [
        await activate(node, "sms", "0641000001", hrns[s[0]]),
        await activate(node, "sms", "0641000002", hrns[s[1]]),
        await activate(node, "sms", "0641000003", "1" * len(hrns[s[2]])),     # no such HRN
        await activate(node, "ussd", "0641000004", hrns[s[2]]),
        await activate(node, "ussd", "0641000005", hrns[s[0]]),               # used by another
        await activate(node, "soap", "0641000001", hrns[s[0]]),               # used by you
    ]
    assert codes == [0, 0, 119, 0, 108, 107]
    now = int(time.time() * 1000)

    def more(tx):
        # an activation still pending (billing did not answer): it holds 151, as the saga writes it
        tx.insert(txn, {"id": "pending1", "kind": "activation", "msisdn": "381641000009",
                        "channel": "web", "state": "pending", "result_code": 151, "started_at": now})
        # yesterday's activation and today's loyalty reward are not today's activations
        tx.insert(txn, {"id": "old1", "kind": "activation", "msisdn": "381641000009",
                        "channel": "web", "state": "failed", "result_code": 119,
                        "started_at": now // DAY_MS * DAY_MS - 1})
        tx.insert(txn, {"id": "loy1", "kind": "loyalty", "msisdn": "381641000009", "channel": "sms",
                        "state": "success", "result_code": 0, "amount": 5, "started_at": now})
        ok = runs.start(tx, "expire", "node-a", now - 5000)
        runs.finish(tx, ok, now - 4000, runs.OK, 12, "12 vouchers expired")
        bad = runs.start(tx, "purge", "node-a", now - 3000)
        runs.finish(tx, bad, now - 2000, runs.FAILED, 0, "disk full")
    node.store.run_sync(more)

    c = await node.logged_in("rv")
    r = await c.get("/")
    assert r.status == 200, r.text[:300]
    page = r.text
    assert (kpi(page, "attempts"), kpi(page, "success"), kpi(page, "temporary"),
            kpi(page, "failure"), kpi(page, "ratio")) == ("7", "3", "1", "3", "57.1 %")
    assert table(page, "by-channel") == [
        ["sms", "3", "2", "0", "1", "33.3 %"],
        ["soap", "1", "0", "0", "1", "100.0 %"],
        ["ussd", "2", "1", "0", "1", "50.0 %"],
        ["web", "1", "0", "1", "0", "100.0 %"],
    ]
    assert table(page, "by-result") == [
        ["0 SUCCESS", "success", "3"], ["107 VOUCHER_ALREADY_USED_BY_YOU", "failure", "1"],
        ["108 VOUCHER_USED_BY_OTHER", "failure", "1"], ["119 INVALID_HRN", "failure", "1"],
        ["151 BILLING_UNAVAILABLE", "temporary", "1"]]
    # codes in their outcome's colour, in the table and in the chart
    assert '<span class="rc failure">119 INVALID_HRN</span>' in page
    assert '<span class="rc success">0 SUCCESS</span>' in page
    assert '<span class="rc temporary">151 BILLING_UNAVAILABLE</span>' in page
    assert page.count('fill="#b3261e"') == 3 and page.count('fill="#c77c02"') == 1
    # stock by type and state (3 EUR10 used, 2 available; 4 EUR5 generated)
    stock = table(page, "stock")
    assert stock[0] == ["EUR10", "0", "2", "0", "3", "0", "0", "5"]
    assert stock[1] == ["EUR5", "4", "0", "0", "0", "0", "0", "4"]
    assert stock[2] == ["All types", "4", "2", "0", "3", "0", "0", "9"]
    # the embedded ledger is the billing peer; runs newest first, failures in failure colour
    assert table(page, "billing") == [["ledger", "embedded", "up"]]
    got = table(page, "runs")
    assert [(row[1], row[2], row[3], row[4]) for row in got[:2]] == \
        [("purge", "failed", "0", "disk full"), ("expire", "ok", "12", "12 vouchers expired")]
    assert '<span class="rc failure">failed</span>' in page

    # a peer down is drawn as a failure
    node.ctx.billing_peers = lambda: ("diameter", [("ocs-a", 1), ("ocs-b", 0)])
    page = (await c.get("/")).text
    assert table(page, "billing") == [["diameter", "ocs-a", "up"], ["diameter", "ocs-b", "down"]]
    assert '<span class="rc failure">down</span>' in page

    # failed codes have the failure class on the reports and customer-care pages too
    page = (await c.get("/reports")).text
    assert '<span class="rc failure">119 INVALID_HRN</span>' in page
    assert '<span class="rc success">0 SUCCESS</span>' in page
    care = await node.logged_in("care")
    page = (await care.get("/care?msisdn=0641000003")).text
    assert '<span class="rc failure">119</span>' in page
    assert 'class="rc success"' not in page


def test_todays_reading_is_cached_for_its_ttl():
    clock = task.Clock()
    reads = []

    class Ctx:
        def read(self, fn, start, end, limit):
            reads.append((start, end))
            return defer.succeed({"activations": [("sms", 0, len(reads))], "runs": []})
    ctx = Ctx()
    ctx.clock = clock
    cache = dashboard.TodayCache(ctx, 10)

    def get(start):
        d = defer.ensureDeferred(cache.get(start, start + DAY_MS))
        return d.result if not isinstance(d.result, Exception) else None
    assert get(0)["activations"] == [("sms", 0, 1)]
    clock.advance(9)
    assert get(0)["activations"] == [("sms", 0, 1)] and len(reads) == 1
    clock.advance(1)
    assert get(0)["activations"] == [("sms", 0, 2)]
    assert get(DAY_MS)["activations"] == [("sms", 0, 3)]        # a new day reads at once


@pytest_twisted.ensureDeferred
async def test_favicon_without_login(fresh_node):
    c = fresh_node.client()
    r = await c.get("/favicon.ico")
    assert r.status == 200 and r.header("content-type") == "image/x-icon"
    assert r.body[:4] == b"\x00\x00\x01\x00" and b"PNG" in r.body[:64]
    page = (await c.get("/login")).text
    assert '<link rel="icon" href="/favicon.ico"' in page
    r = await c.get("/static/favicon.svg")
    assert r.status == 200 and r.body.startswith(b"<svg")


def test_gui_shares_the_metrics_stock_reading(conf_dir, reactor):
    """With metrics on, the dashboard reads the very StoreFigures the scrapes refresh."""
    from gateway.adapters import admin_context
    from gateway.config import load_config
    from gateway.metrics.wiring import install
    from gateway.node import Node
    path = write_conf(conf_dir)
    init_instance(path)
    node = Node(load_config(path), reactor)
    try:
        assert node.config.metrics.enabled
        res, _svc = install(node, None)
        ctx = admin_context(node, node.config.admin, reactor)
        assert ctx.stock_figures is res.figures is node.store_figures
        assert ctx.billing_peers() == ("ledger", [("embedded", 1)])
    finally:
        node.store.dispose()
