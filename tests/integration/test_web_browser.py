"""A person recharges from the page in headless Chromium (Debian's binary, driven by Playwright)."""
from __future__ import annotations

import os

import pytest
import pytest_twisted
from twisted.internet import threads

from tests.helpers import voucher_row
from tests.integration.web_fixtures import start_web, stop_web

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("IVOMS_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _browse(url, hrn):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(java_script_enabled=False, locale="sr-RS",
                                    viewport={"width": 360, "height": 640})
            page.goto(url + "/")
            assert page.locator("h1").inner_text() == "Dopunite račun"   # Accept-Language: sr
            page.get_by_label("Broj telefona").fill("064 123 4567")
            page.get_by_label("Broj vaučera (ispod zaštitnog sloja)").fill(
                hrn[:4] + " " + hrn[4:8] + " " + hrn[8:])
            page.get_by_role("button", name="Dopuni").click()
            page.wait_for_selector("#result")
            result = page.locator("#result").inner_text()
            content = page.content()
            again = page.get_by_role("link", name="Dopunite drugim vaučerom")
            again.click()
            back = page.locator("h1").inner_text()
            return result, content, back
        finally:
            browser.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed")
@pytest_twisted.ensureDeferred
async def test_a_person_recharges_from_the_page(reactor, sqlite_url, tmp_path):
    env = await start_web(reactor, sqlite_url, tmp_path)
    try:
        hrn = env.hrn(0)
        result, content, back = await threads.deferToThread(_browse, env.url, hrn)
        assert result.startswith("Vaš račun je dopunjen sa 10.00 EUR")
        assert hrn not in content and back == "Dopunite račun"
        assert voucher_row(env.store, list(env.hrns)[0])[:2] == ("used", "381641234567")
    finally:
        await stop_web(env)
