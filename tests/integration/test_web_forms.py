"""The Web/WAP recharge pages through real HTTP form posts on a real listener (issue 7)."""
from __future__ import annotations

import pytest
import pytest_twisted
import requests
from twisted.internet import task, threads

from core.results import ResultCode as R
from protocols.web.config import RateLimitSettings
from tests.helpers import txn_rows, voucher_row
from tests.integration.web_fixtures import csrf_of, start_web, stop_web

pytestmark = pytest.mark.integration

MSISDN = "0641234567"


def _form(session, url):
    r = session.get(url, timeout=20)
    assert r.status_code == 200
    return csrf_of(r.text)


def _post(session, url, **data):
    return session.post(url, data=data, timeout=20)


@pytest_twisted.ensureDeferred
async def test_recharge_success_in_serbian_and_english(reactor, sqlite_url, tmp_path):
    env = await start_web(reactor, sqlite_url, tmp_path)
    try:
        def run():
            s = requests.Session()
            tok = _form(s, env.url + "/?lang=sr")
            r = _post(s, env.url + "/recharge", csrf=tok, lang="sr", msisdn=MSISDN,
                      hrn=env.hrn(0))
            assert r.status_code == 200
            assert "Vaš račun je dopunjen sa 10.00 EUR" in r.text
            assert env.hrn(0) not in r.text
            assert r.headers["cache-control"] == "no-store"
            s2 = requests.Session()
            tok = _form(s2, env.url + "/")
            r = _post(s2, env.url + "/recharge", csrf=tok, lang="en", msisdn=MSISDN,
                      hrn=env.hrn(0))
            assert r.status_code == 409 and "You have already used this voucher." in r.text
            assert env.hrn(0) not in r.text and 'value="%s"' % MSISDN in r.text
            r = _post(s2, env.url + "/recharge", csrf=tok, lang="en", msisdn=MSISDN,
                      hrn="1234")
            assert r.status_code == 422 and "Invalid voucher number" in r.text
        await threads.deferToThread(run)
        assert voucher_row(env.store, list(env.hrns)[0])[0] == "used"
        rows = txn_rows(env.store)
        assert rows[0]["channel"] == "web" and rows[0]["source"] == "127.0.0.1"
    finally:
        await stop_web(env)


@pytest_twisted.ensureDeferred
async def test_wap_variant(reactor, sqlite_url, tmp_path):
    env = await start_web(reactor, sqlite_url, tmp_path)
    try:
        def run():
            s = requests.Session()
            s.headers["Accept"] = "application/vnd.wap.xhtml+xml, text/html;q=0.5"
            r = s.get(env.url + "/wap/")
            assert r.headers["content-type"].startswith("application/vnd.wap.xhtml+xml")
            assert "XHTML Mobile 1.2" in r.text and 'action="/web/wap/recharge"' in r.text
            r = _post(s, env.url + "/wap/recharge", csrf=csrf_of(r.text), lang="en",
                      msisdn=MSISDN, hrn=env.hrn(1))
            assert r.status_code == 200 and "credited with 10.00 EUR" in r.text
            from lxml import etree
            etree.fromstring(r.content, etree.XMLParser(resolve_entities=False,
                                                         no_network=True))
        await threads.deferToThread(run)
        assert txn_rows(env.store)[0]["channel"] == "wap"
    finally:
        await stop_web(env)


@pytest_twisted.ensureDeferred
async def test_csrf_and_method_checks(reactor, sqlite_url, tmp_path):
    env = await start_web(reactor, sqlite_url, tmp_path)
    try:
        def run():
            s = requests.Session()
            tok = _form(s, env.url + "/")
            cookie = s.cookies.get("ivoms_csrf")
            # no token in the form
            r = _post(s, env.url + "/recharge", msisdn=MSISDN, hrn=env.hrn(0))
            assert r.status_code == 403 and "This form has expired" in r.text
            # a wrong token
            r = _post(s, env.url + "/recharge", csrf=tok[:-2] + "AA", msisdn=MSISDN,
                      hrn=env.hrn(0))
            assert r.status_code == 403
            # the right token without the cookie (another site's form post)
            r = requests.post(env.url + "/recharge", data={"csrf": tok, "msisdn": MSISDN,
                                                             "hrn": env.hrn(0)})
            assert r.status_code == 403
            # the cookie value itself as the field (naive double submit) is not enough
            r = _post(s, env.url + "/recharge", csrf=cookie, msisdn=MSISDN, hrn=env.hrn(0))
            assert r.status_code == 403
            assert env.hrn(0) not in r.text
            # GET on the recharge action: 405, POST only
            r = s.get(env.url + "/recharge", params={"msisdn": MSISDN})
            assert r.status_code == 405 and r.headers["allow"] == "POST"
            r = _post(s, env.url + "/recharge", csrf=tok, msisdn="", hrn="")
            assert r.status_code == 400
            r = _post(s, env.url + "/recharge", csrf=tok, msisdn=MSISDN, hrn="1" * 3000)
            assert r.status_code == 413
            assert s.get(env.url + "/nope").status_code == 404
        await threads.deferToThread(run)
        assert txn_rows(env.store) == []
        assert voucher_row(env.store, list(env.hrns)[0])[0] == "available"
    finally:
        await stop_web(env)


@pytest_twisted.ensureDeferred
async def test_rate_limits_per_address_and_msisdn(reactor, sqlite_url, tmp_path):
    clock = task.Clock()
    env = await start_web(reactor, sqlite_url, tmp_path, clock=clock,
                          rate_limit=RateLimitSettings(per_address=4, per_msisdn=2,
                                                       window_seconds=600))
    try:
        def run(msisdns):
            s = requests.Session()
            tok = _form(s, env.url + "/")
            return [_post(s, env.url + "/recharge", csrf=tok, msisdn=m, hrn="1" * 14)
                    for m in msisdns]

        # per MSISDN: two attempts, whatever the spelling of the number
        got = await threads.deferToThread(run, [MSISDN, "+381641234567", "00381641234567"])
        assert [r.status_code for r in got] == [422, 422, 429]
        assert got[2].headers["retry-after"] == "300"
        assert "Too many attempts. Please try again in 5 minutes." in got[2].text
        # per address: 4 attempts from 127.0.0.1 in the window (3 used above)
        got = await threads.deferToThread(run, ["0641111111", "0642222222"])
        assert [r.status_code for r in got] == [422, 429]
        clock.advance(150)                  # one token back per 150 s
        got = await threads.deferToThread(run, ["0642222222", "0642222222"])
        assert [r.status_code for r in got] == [422, 429]
        assert len(txn_rows(env.store)) == 4 and R.INVALID_HRN == 119
    finally:
        await stop_web(env)
