"""Every channel's reply mentions a loyalty reward the activation granted (issue 9)."""
from __future__ import annotations

from dataclasses import dataclass

from core.requests import ActivationResult
from core.results import ResultCode as R

NOW = 1_795_000_000_000


@dataclass(frozen=True)
class Reward:
    text: str = "Loyalty reward (Monthly recharger, Silver): 2.00 EUR."


def _results():
    plain = ActivationResult(R.SUCCESS, amount=1000, currency="EUR", new_expiry=NOW + 86_400_000,
                             txn_id="t" * 32, msisdn="381641234567")
    rewarded = ActivationResult(R.SUCCESS, amount=1000, currency="EUR",
                                new_expiry=NOW + 86_400_000, txn_id="t" * 32,
                                msisdn="381641234567", rewards=(Reward(),))
    return plain, rewarded


def test_sms_reply():
    from protocols.smpp.replies import Replies
    plain, rewarded = _results()
    r = Replies()
    assert "Loyalty reward" not in r.render(plain, "en")
    text = r.render(rewarded, "en")
    assert text.startswith(r.render(plain, "en")) and text.endswith(Reward.text)
    # a template that places {reward} itself gets it once, where it wants it
    custom = Replies({"en": {"SUCCESS": "OK {amount} {currency}. {reward} Bye"}})
    assert custom.render(rewarded, "en") == "OK 10.00 EUR. %s Bye" % Reward.text


def test_ussd_reply_fits_or_is_left_out():
    from protocols.ussd.replies import Texts, fits
    plain, rewarded = _results()
    t = Texts()
    text = t.result(rewarded, "en")
    assert Reward.text in text and fits(text)
    import dataclasses
    huge = dataclasses.replace(plain, rewards=(Reward("x" * 300),))
    assert t.result(huge, "en") == t.result(plain, "en")      # left out rather than cut


def test_web_result_text():
    from protocols.web.texts import Texts
    plain, rewarded = _results()
    t = Texts(["en", "sr"])
    assert t.result(rewarded, "sr").endswith(Reward.text)
    assert "Loyalty" not in t.result(plain, "en")


def test_ivr_result_document_speaks_it():
    from protocols.ivr.config import IvrSettings
    from protocols.ivr.context import Context, Urls
    from protocols.ivr.result import result_document
    from protocols.ivr.vxml import serialise
    from tests.vxml_walker import assert_valid, vxml21_dtd
    plain, rewarded = _results()
    ctx = Context.build(IvrSettings(), (14,))
    lang = ctx.settings.languages[0]
    urls = Urls("http://127.0.0.1/ivr/")
    doc = serialise(result_document(ctx, lang, urls, rewarded, attempt=1, now_ms=NOW))
    assert Reward.text.encode() in doc
    assert_valid(doc, vxml21_dtd())
    assert b"Loyalty" not in serialise(result_document(ctx, lang, urls, plain, attempt=1, now_ms=NOW))


def test_soap_result_text():
    from protocols.soap.config import SoapClient
    from protocols.soap.handlers import SoapHandlers
    from protocols.soap.server import SoapCall
    from tests.fakes import FakeActivationService, FakeTransactionQueries
    plain, rewarded = _results()
    out = []
    handlers = SoapHandlers(FakeActivationService(rewarded), FakeTransactionQueries())
    call = SoapCall(handlers, "127.0.0.1", NOW)
    call.client = SoapClient("demo", password="pw")
    handlers.activate_voucher(call, "0641234567", "1" * 14, None, None).addCallback(out.append)
    assert out[0].resultText.endswith(Reward.text) and out[0].resultCode == 0
