"""The admin GUI in headless Chromium (Debian C{chromium}, driven by Playwright for Python)
against a real C{ivoms run} process: login, generation with live progress, export opened
with C{openssl cms -decrypt}, a range block with preview, a customer-care activation.
Screenshots of the main pages go to docs/screenshots/ when IVOMS_SCREENSHOTS=1
(C{IVOMS_SCREENSHOTS=1 ./test tests/integration/test_admin_browser.py}), otherwise to a
temporary folder, so an ordinary test run leaves the work tree alone.  At a 1280 px wide
window no page is wider than the window and no label is cut (L{LAYOUT_CHECK}).
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import types

import pytest

from tests.admin_helpers import PASSWORD, add_role_users, init_instance, partner_cert, write_conf

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("IVOMS_CHROMIUM", "/usr/bin/chromium")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.path.join(REPO, "docs", "screenshots") if os.environ.get("IVOMS_SCREENSHOTS") == "1" \
    else None
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A copied conf/ with users of every role, served by C{ivoms run} in a child process."""

    def __init__(self, folder):
        from core import keys
        from core.crypto import VoucherCipher
        from core.db import Store
        from gateway.config import load_config
        conf = os.path.join(str(folder), "conf")
        shutil.copytree(os.path.join(REPO, "conf"), conf, ignore=shutil.ignore_patterns("var"))
        self.port = _free_port()
        self.path = write_conf(conf, listen='"tcp:%d:interface=127.0.0.1"' % self.port,
                               dashboard_cache_seconds="0")
        self.http_port = _free_port()       # the HTTP channels too: the Web page is driven below
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        text, n = re.subn(r'(\[http\]\n(?:#.*\n)*)enabled = false\nlisten = "[^"]*"',
                          r'\1enabled = true\nlisten = "tcp:%d:interface=127.0.0.1"' % self.http_port,
                          text)
        assert n == 1
        # the dashboard's stock is the metrics' cached reading: read it at most 1 s old
        text, n = re.subn(r'^cache_seconds = 30$', 'cache_seconds = 1', text, flags=re.M)
        assert n == 1
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)
        init_instance(self.path)
        self.config = load_config(self.path)
        assert self.config.admin.listen.endswith(":%d:interface=127.0.0.1" % self.port)
        self.store = Store(self.config.database.url)
        add_role_users(self.store)
        self.cipher = VoucherCipher(keys.load(self.config.keys.file))
        self.log = open(os.path.join(str(folder), "node.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", self.path, "run"],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("ivoms run exited with %s" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the admin listener did not open")

    def hrns(self, batch_id) -> dict:
        from tests.helpers import reveal_all
        return reveal_all(self.store, self.cipher, types.SimpleNamespace(batch_id=batch_id))

    def make_available(self, batch_id):
        from core.timeutil import now_ms
        from core.vouchers import Selection, set_state
        self.store.run_sync(set_state, Selection.of_batch(batch_id), "available", actor="test",
                            reason=None, now=now_ms())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.store.dispose()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("gui"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser():
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = "Chromium not installed at %s (apt-get install chromium)" % CHROMIUM
    else:
        try:
            from playwright import sync_api
        except ImportError:
            problem = "Playwright for Python not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the browser tests need them in CI: " + problem)
        pytest.skip(problem)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page_as(browser, server):
    contexts = []

    def login(name):
        ctx = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True,
                                  base_url=server.base)
        contexts.append(ctx)
        page = ctx.new_page()
        page.goto("/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(server.base + "/")
        return page
    yield login
    for c in contexts:
        c.close()


_TMP_SHOTS = []


def shot(page, name):
    if SHOTS is None and not _TMP_SHOTS:
        import tempfile
        _TMP_SHOTS.append(tempfile.mkdtemp(prefix="ivoms-shots-"))
    folder = SHOTS or _TMP_SHOTS[0]
    os.makedirs(folder, exist_ok=True)
    page.screenshot(path=os.path.join(folder, name + ".png"), full_page=True)


def test_login_wrong_password_then_right(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, base_url=server.base)
    page = ctx.new_page()
    page.goto("/")
    assert page.url.endswith("/login")
    shot(page, "login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "Login failed" in page.inner_text("main")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.base + "/")
    assert "admin (administrator)" in page.inner_text("header")
    cookies = ctx.cookies()
    (c,) = [c for c in cookies if c["name"] == "ivoms_session"]
    assert c["httpOnly"] and c["sameSite"] == "Strict"
    page.click("text=Log out")
    page.wait_for_url(server.base + "/login")
    ctx.close()


def test_generation_with_live_progress(page_as, server):
    page = page_as("vm")
    page.goto("/generation")
    page.select_option("#type", "EUR10")
    page.fill("#count", "30000")
    page.click("button:has-text('Generate')")
    page.wait_for_url("**/generation/jobs/*")
    seen = set()
    shots_taken = []
    deadline = time.time() + 120
    while time.time() < deadline:
        if page.locator("text=vouchers in").count():
            break
        try:
            v = page.eval_on_selector("#bar", "b => b.value")
        except Exception:  # noqa: BLE001 - the page is reloading
            v = None
        if v:
            seen.add(int(v))
            if 0 < v < 30000 and not shots_taken:
                shot(page, "generation-progress")
                shots_taken.append(v)
        time.sleep(0.05)
    assert page.locator("text=vouchers in").count(), "generation did not finish"
    assert any(0 < v < 30000 for v in seen), "no intermediate progress seen: %s" % sorted(seen)
    page.click("#status a")
    assert "30000" in page.inner_text("main") and "ready" in page.inner_text("main")
    shot(page, "batch")
    page.goto("/batches")
    shot(page, "batches")


def _latest_batch(server):
    from sqlalchemy import func, select

    from core.schema import batch
    return server.store.run_sync(lambda tx: tx.execute(select(func.max(batch.c.id))).scalar())


def _generate(server, type_code="EUR10", count=50):
    from core.generation import generate
    from core.timeutil import DAY_MS, now_ms
    info = generate(server.store, server.cipher, server.config.voucher_type(type_code), count,
                    now_ms() + 300 * DAY_MS, requested_by="test",
                    serial_start=server.config.generation.serial_start, chunk_size=count)
    return info


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
def test_export_and_openssl_decrypt(page_as, server, tmp_path):
    info = _generate(server, "EUR20", 40)
    hrns = server.hrns(info.batch_id)
    pem, cert_path, key_path = partner_cert(tmp_path, "Printer")
    page = page_as("dist")
    page.goto("/partners")
    page.fill("#name", "City Printer")
    page.fill("#certificate", pem)
    page.click("button:has-text('Save partner')")
    assert "City Printer added" in page.inner_text("main")
    shot(page, "partners")
    page.goto("/distribution")
    page.select_option("#type", "EUR20")
    page.fill("#batch", str(info.batch_id))
    page.fill("#count", "25")
    page.click("#preview")
    assert "25 vouchers would be exported" in page.inner_text("#preview-count")
    shot(page, "distribution-preview")
    page.click("#export")
    page.wait_for_url("**/distribution/exports/*")
    shot(page, "export")
    with page.expect_download() as dl:
        page.click("#download")
    path = str(tmp_path / "export.p7m")
    dl.value.save_as(path)
    out = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", path,
                          "-recip", cert_path, "-inkey", key_path],
                         capture_output=True, check=True).stdout
    rows = list(csv.reader(io.StringIO(out.decode())))
    assert rows[0] == ["serial", "hrn", "type", "value", "currency", "expiry", "batch"]
    assert len(rows) == 26
    for r in rows[1:]:
        assert hrns[int(r[0])] == r[1] and r[2:5] == ["EUR20", "20.00", "EUR"]
    import hashlib
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == page.inner_text("#sha256")
    # the same vouchers cannot be exported again: the preview now counts the 15 left
    page.goto("/distribution?batch=%d" % info.batch_id)
    assert "15 vouchers would be exported" in page.inner_text("#preview-count")


def test_range_block_with_preview(page_as, server):
    info = _generate(server, "EUR5", 30)
    server.make_available(info.batch_id)
    first = info.first_serial
    page = page_as("hk")
    page.goto("/vouchers?batch=%d" % info.batch_id)
    shot(page, "housekeeping")
    page.fill("#chg-range", "%d-%d" % (first + 10, first + 19))
    page.fill("#chg-batch", "")
    page.select_option("#chg-action", "block")
    page.select_option("#chg-reason", "damaged")
    page.fill("#chg-note", "water")
    page.click("#chg-preview")
    assert "10 of 10 selected vouchers will change" in page.inner_text("#will-change")
    shot(page, "block-preview")
    page.click("#confirm")
    assert "10 changed, 0 skipped" in page.inner_text("main")
    page.goto("/vouchers/%d" % (first + 10))
    text = page.inner_text("main")
    assert "blocked" in text and "damaged: water" in text
    assert server.hrns(info.batch_id)[first + 10] not in text          # masked
    shot(page, "voucher")


def test_customer_care_activation(page_as, server):
    info = _generate(server, "EUR10", 3)
    server.make_available(info.batch_id)
    hrn = server.hrns(info.batch_id)[info.first_serial]
    page = page_as("care")
    page.goto("/care")
    page.fill("#act-msisdn", "0641112233")
    page.fill("#act-hrn", hrn)
    page.click("#activate")
    result = page.inner_text("#result")
    assert "0 SUCCESS" in result, result
    shot(page, "care-result")
    page.click("text=Transactions of this subscriber")
    text = page.inner_text("main")
    assert "customer_care" in text and "Your account was credited." in text and "care" in text
    shot(page, "care")


def test_admin_pages_screenshots(page_as, server):
    page = page_as("admin")
    for path, name in (("/users", "users"), ("/audit", "audit"), ("/generation", "generation")):
        page.goto(path)
        assert page.locator("h1").count() == 1
        shot(page, name)
    page.goto("/audit?action=voucher.")
    assert "voucher.block" in page.inner_text("#audit")


#: What a page must satisfy at the 1280 px window: nothing wider than the window (the
#: page scrolls only down), and no label, heading, table cell, button, link or result
#: badge whose text is cut (scrollWidth > clientWidth); SVG chart labels fit their chart.
LAYOUT_CHECK = """() => {
  const out = {pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth,
               wide: [], clipped: []};
  for (const t of document.querySelectorAll('table, svg.chart, form, .kpis, .cols'))
    if (t.getBoundingClientRect().right > window.innerWidth + 0.5)
      out.wide.push(t.tagName + '#' + t.id + ' ' + Math.round(t.getBoundingClientRect().right));
  const sel = 'label, th, td, h1, h2, button, a, .rc, .state, .kpi-label, .kpi-value, nav a';
  for (const e of document.querySelectorAll(sel))
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).display !== 'inline')
      out.clipped.push(e.tagName + ': ' + e.textContent.trim().slice(0, 40));
  for (const svg of document.querySelectorAll('svg.chart')) {
    const w = svg.viewBox.baseVal.width;
    for (const t of svg.querySelectorAll('text'))
      if (t.getBBox().x + t.getBBox().width > w + 0.5)
        out.clipped.push('svg text: ' + t.textContent.slice(0, 40));
  }
  return out;
}"""


def assert_fits(page):
    got = page.evaluate(LAYOUT_CHECK)
    assert got["viewport"] == 1280, got
    assert got["pageWidth"] <= 1280, (page.url, got)
    assert got["wide"] == [] and got["clipped"] == [], (page.url, got)


def _web_recharge(browser, server, msisdn, hrn):
    """One recharge on the subscribers' Web page of the HTTP listener; the result's text."""
    ctx = browser.new_context(viewport={"width": 420, "height": 800})
    page = ctx.new_page()
    page.goto("http://127.0.0.1:%d/web/?lang=en" % server.http_port)
    page.fill("#msisdn", msisdn)
    page.fill("#hrn", hrn)
    page.click("button[type=submit]")
    page.wait_for_selector("#result")
    text = page.inner_text("#result")
    ctx.close()
    return text


def _today_counts(server):
    """Today's activations as the store holds them: {(channel, result code): n}, read
    with SQL of the test's own (not the dashboard's query)."""
    from core.timeutil import DAY_MS, now_ms
    start = now_ms() // DAY_MS * DAY_MS
    from sqlalchemy import text
    rows = server.store.run_sync(lambda tx: tx.execute(text(
        "SELECT channel, result_code, count(*) FROM txn WHERE kind = 'activation' "
        "AND started_at >= %d GROUP BY channel, result_code" % start)).rows)
    return {(ch, int(code)): int(n) for ch, code, n in rows}


def test_dashboard_after_known_activations_and_layout(browser, page_as, server):
    info = _generate(server, "EUR10", 6)
    server.make_available(info.batch_id)
    hrns = list(server.hrns(info.batch_id).values())
    before = _today_counts(server)
    assert "credited" in _web_recharge(browser, server, "0641230001", hrns[0])
    assert "credited" in _web_recharge(browser, server, "0641230002", hrns[1])
    _web_recharge(browser, server, "0641230003", "9" * len(hrns[2]))      # no such HRN: 119
    _web_recharge(browser, server, "0641230004", hrns[0])                 # used by another: 108
    page = page_as("care")
    page.goto("/care")
    page.fill("#act-msisdn", "0641230005")
    page.fill("#act-hrn", hrns[2])
    page.click("#activate")
    assert "0 SUCCESS" in page.inner_text("#result")
    # the failed code is drawn in failure colour on the care page
    page.goto("/care?msisdn=0641230003")
    assert page.locator("#txns .rc.failure", has_text="119").count() == 1
    after = _today_counts(server)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert delta == {("web", 0): 2, ("web", 119): 1, ("web", 108): 1, ("customer_care", 0): 1}

    page = page_as("admin")                     # lands on the dashboard
    by_channel = {r[0]: r[1:] for r in (row.split("\t") for row in
                  page.locator("#by-channel tr").all_inner_texts()[1:])}
    web = [n for (ch, code), n in after.items() if ch == "web"]
    web_ok = after.get(("web", 0), 0)
    assert by_channel["web"][:4] == [str(sum(web)), str(web_ok), "0", str(sum(web) - web_ok)]
    total = sum(after.values())
    ok = sum(n for (_, code), n in after.items() if code == 0)
    assert page.inner_text("#kpi-attempts") == str(total)
    assert page.inner_text("#kpi-ratio") == "%.1f %%" % (100 * (total - ok) / total)
    assert page.locator("#by-result .rc.failure", has_text="119 INVALID_HRN").count() == 1
    assert page.locator("#by-result .rc.success", has_text="0 SUCCESS").count() == 1
    colour = page.eval_on_selector("#by-result .rc.failure", "e => getComputedStyle(e).color")
    assert colour == "rgb(140, 29, 24)", colour
    assert page.locator("#billing", has_text="embedded").count() == 1
    # the stock is the metrics' cached reading (at most 1 s old here): a view made
    # by an earlier test, before this one's vouchers, may still be shown at first
    for _ in range(20):
        if page.locator("#stock td", has_text="EUR10").count():
            break
        time.sleep(0.5)
        page.reload()
    assert page.locator("#stock td", has_text="EUR10").count() == 1
    assert page.evaluate("() => document.querySelector('link[rel=icon]').href").endswith("/favicon.ico")
    assert_fits(page)
    shot(page, "home")
    for path in ("/reports", "/care?msisdn=0641230003", "/vouchers", "/batches", "/generation",
                 "/distribution", "/partners", "/fraud", "/users", "/audit",
                 "/vouchers/%d" % info.first_serial):
        page.goto(path)
        assert page.locator("h1").count() == 1, path
        assert_fits(page)
        if path == "/reports":                  # after the activations above: every colour
            assert page.locator("#by-result .rc.failure", has_text="119 INVALID_HRN").count() == 1
            shot(page, "reports")


def test_the_layout_check_sees_a_violation(page_as):
    """L{LAYOUT_CHECK} would catch a table wider than the window and a cut label."""
    page = page_as("admin")
    page.evaluate("""() => {
      const t = document.createElement('table'); t.id = 'wide';
      t.innerHTML = '<tr><td><img width="1500" height="4" alt=""></td></tr>';
      document.querySelector('main').appendChild(t);
      const l = document.createElement('label');
      l.style.cssText = 'width:40px;overflow:hidden;white-space:nowrap';
      l.textContent = 'a label far too long for its box';
      document.querySelector('main').appendChild(l);
    }""")
    got = page.evaluate(LAYOUT_CHECK)
    assert got["pageWidth"] > 1280
    assert any(w.startswith("TABLE#wide") for w in got["wide"]), got
    assert "LABEL: a label far too long for its box" in got["clipped"], got
