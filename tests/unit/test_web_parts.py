"""Recharge pages' parts: rate limits on a Clock, CSRF tokens, localised texts, page markup."""
from __future__ import annotations

import pytest
from lxml import etree
from twisted.internet import task

from core.money import format_amount
from core.requests import ActivationResult
from core.results import ResultCode as R
from core.settings import ConfigError, build
from protocols.web import pages
from protocols.web.config import WebSettings
from protocols.web.csrf import CsrfGuard
from protocols.web.replies import RESULT_STATUS, status_for
from protocols.web.ratelimit import RateLimiter
from protocols.web.texts import Texts


def test_rate_limiter_refills_on_the_injected_clock():
    clock = task.Clock()
    rl = RateLimiter(3, 60, clock=clock)
    assert [rl.allow("a")[0] for _ in range(4)] == [True, True, True, False]
    assert rl.allow("a") == (False, 20)          # one token per 20 s
    assert rl.allow("b") == (True, 0)            # keys are independent
    clock.advance(20)
    assert rl.allow("a") == (True, 0)
    assert rl.allow("a")[0] is False
    clock.advance(3600)
    assert [rl.allow("a")[0] for _ in range(4)] == [True, True, True, False]
    assert not clock.getDelayedCalls()


def test_rate_limiter_memory_is_bounded():
    rl = RateLimiter(1, 60, clock=task.Clock(), max_keys=100)
    for i in range(1000):
        rl.allow(i)
    assert len(rl) == 100


class _Req:
    def __init__(self, cookie=None, field=None):
        self.cookies = {b"ivoms_csrf": cookie} if cookie else {}
        self.args = {b"csrf": [field]} if field is not None else {}
        self.added = []

    def getCookie(self, k):     # noqa: N802 - twisted.web's name
        return self.cookies.get(k)

    def addCookie(self, *a, **kw):   # noqa: N802
        self.added.append((a, kw))


def test_csrf_double_submit_is_signed():
    g = CsrfGuard("x" * 32)
    req = _Req()
    token = g.ensure_cookie(req)
    (args, kw), = req.added
    assert args[0] == b"ivoms_csrf" and kw["httpOnly"] and kw["sameSite"] == "strict"
    field = g.field_for(token).encode()
    assert g.check(_Req(token.encode(), field))
    assert not g.check(_Req(token.encode(), None))                    # missing field
    assert not g.check(_Req(None, field))                             # missing cookie
    assert not g.check(_Req(token.encode(), token.encode()))          # naive double submit
    other = g.new_token()
    assert not g.check(_Req(other.encode(), field))                   # other cookie
    assert not CsrfGuard("y" * 32).check(_Req(token.encode(), field))  # other secret
    assert not g.check(_Req(b"short", g.field_for("short").encode()))  # malformed cookie


def test_language_choice_and_result_texts():
    t = Texts(["en", "sr"], {"sr": {"SUCCESS": "Dopunjeno {amount} {currency}."}})
    assert t.pick("sr", None) == "sr"
    assert t.pick("de", "de-DE,sr;q=0.8,en;q=0.5") == "sr"
    assert t.pick(None, "fr") == "en"
    ok = ActivationResult(R.SUCCESS, amount=1050, currency="EUR", new_expiry=1_800_000_000_000)
    assert t.result(ok, "sr") == "Dopunjeno 10.50 EUR."
    assert t.result(ok, "en") == "Your account was credited with 10.50 EUR. Valid until 2027-01-15."
    barred = ActivationResult(R.SUBSCRIBER_BARRED, unbar_at=1_800_000_000_000)
    assert "2027-01-15 08:00" in t.result(barred, "en")
    for code in R:
        assert t.result(ActivationResult(code), "sr")
        assert t.result(ActivationResult(code), "en") != code.name
    assert format_amount(5, "JPY") == "5" and format_amount(1234, "KWD") == "1.234"


def test_every_code_has_a_status():
    assert set(RESULT_STATUS) == set(R)
    assert status_for(R.SUCCESS) == 200 and status_for(999) == 500


HRN = "12345678901234"


@pytest.mark.parametrize("flavour", ["html", "wap"])
def test_pages_escape_and_never_hold_an_hrn(flavour):
    t = Texts(["en", "sr"])
    body = pages.page(flavour, t, "en", csrf="tok", action="/web/recharge", home="/web/",
                      msisdn='"><script>x</script>', notice="<b>" + "n", ok=False)
    text = body.decode()
    assert "<script>" not in text and "&lt;b&gt;n" in text
    assert 'name="hrn"' in text and 'value=""' in text and HRN not in text
    if flavour == "wap":
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        assert root.tag == "{http://www.w3.org/1999/xhtml}html"
        assert "XHTML Mobile 1.2" in root.getroottree().docinfo.doctype
    else:
        assert text.startswith("<!DOCTYPE html>") and 'name="viewport"' in text


def test_csp_allows_only_the_inline_style():
    assert b"default-src 'none'" in pages.CSP and b"style-src 'sha256-" in pages.CSP
    assert b"script-src" not in pages.CSP


def test_web_settings():
    s = build(WebSettings, {}, file="ivoms.toml", key="web", base_dir="/")
    assert s.languages == ["en", "sr"] and s.rate_limit.per_msisdn == 5
    with pytest.raises(ConfigError, match=r"web.texts: en.NOPE: unknown text"):
        build(WebSettings, {"texts": {"en": {"NOPE": "x"}}}, file="ivoms.toml", key="web",
              base_dir="/")
    with pytest.raises(ConfigError, match=r"unknown field \{hrn\}"):
        build(WebSettings, {"texts": {"en": {"SUCCESS": "{hrn}"}}}, file="ivoms.toml",
              key="web", base_dir="/")
    with pytest.raises(ConfigError, match="web.csrf_secret"):
        build(WebSettings, {"csrf_secret": "short"}, file="ivoms.toml", key="web", base_dir="/")
    assert "secret" not in repr(build(WebSettings, {"csrf_secret": "s" * 40}, file="f",
                                      key="web", base_dir="/")).replace("csrf", "")
