"""Parameters an IVR platform sends: the caller's number, the HRN, lang, attempt; and their limits."""
from __future__ import annotations

import pytest

from protocols.ivr.errors import BadRequest
from protocols.ivr.params import caller_number, parse_activate, parse_page

HRN = "12345678901234"


def _args(**kw):
    def values(vs):
        return [v.encode() if isinstance(v, str) else v for v in (vs if isinstance(vs, list) else [vs])]
    return {k.encode(): values(vs) for k, vs in kw.items()}


def _activate(**kw):
    return parse_activate(_args(**kw), ani_parameter="msisdn", lengths=(14, 16), max_chars=64)


@pytest.mark.parametrize("raw,number", [
    ("tel:+381641234567", "+381641234567"),
    ("TEL:+381641234567;phone-context=x", "+381641234567"),
    ("sip:0641234567@gw.example;user=phone", "0641234567"),
    ("sips:+381641234567@gw.example", "+381641234567"),
    ('"Ann" <sip:+381641234567@gw.example>', "+381641234567"),
    ("0641234567", "0641234567"),
    ("  +381 64 123 4567 ", "+381 64 123 4567"),
    ("anonymous", "anonymous"),
    ("sip:@gw", ""),
])
def test_caller_number(raw, number):
    assert caller_number(raw) == number


def test_activate_params():
    p = _activate(msisdn="tel:+381641234567", hrn="1234 5678 9012 34", lang="sr", attempt="2",
                  callref="call-1\x07")
    assert (p.msisdn, p.hrn, p.lang, p.attempt, p.call_ref) == ("+381641234567", HRN, "sr", 2, "call-1")
    assert HRN not in repr(p) and "14 digits" in repr(p)
    p = _activate(msisdn="0641234567", hrn="1" * 16)
    assert (p.lang, p.attempt, p.call_ref) == (None, 1, None)


@pytest.mark.parametrize("kw,reason", [
    (dict(hrn=HRN), "missing_msisdn"),
    (dict(msisdn="", hrn=HRN), "missing_msisdn"),
    (dict(msisdn="sip:@gw", hrn=HRN), "missing_msisdn"),
    (dict(msisdn="0641234567"), "missing_hrn"),
    (dict(msisdn="0641234567", hrn=" "), "missing_hrn"),
    (dict(msisdn="0641234567", hrn="1234567890123*"), "bad_hrn"),
    (dict(msisdn="0641234567", hrn="123456789012345"), "bad_hrn"),
    (dict(msisdn="0641234567", hrn="１２３４５６７８９０１２３４"), "bad_hrn"),
    (dict(msisdn="0641234567", hrn=[HRN, HRN]), "bad_parameter"),
    (dict(msisdn="0641234567", hrn=HRN, attempt="0"), "bad_parameter"),
    (dict(msisdn="0641234567", hrn=HRN, attempt="100"), "bad_parameter"),
    (dict(msisdn="0641234567", hrn=HRN, attempt="²"), "bad_parameter"),
    (dict(msisdn="0641234567", hrn=HRN, lang="en;drop"), "bad_parameter"),
    (dict(msisdn=b"\xff\xfe", hrn=HRN), "bad_parameter"),
    (dict(msisdn="0" * 65, hrn=HRN), "oversize"),
    (dict(msisdn="0641234567", hrn=HRN, x="y" * 300), "oversize"),
])
def test_bad_activation_parameters(kw, reason):
    with pytest.raises(BadRequest) as e:
        _activate(**kw)
    assert e.value.reason == reason


def test_bad_request_keeps_a_valid_language_for_the_apology():
    with pytest.raises(BadRequest) as e:
        _activate(hrn=HRN, lang="sr")
    assert e.value.lang == "sr"


def test_too_many_parameters():
    args = {("p%d" % i).encode(): [b"1"] for i in range(40)}
    with pytest.raises(BadRequest, match="oversize"):
        parse_activate(args, ani_parameter="msisdn", lengths=(14,), max_chars=64)


def test_page_params():
    assert parse_page({}, 64) == parse_page(_args(lang="", attempt=""), 64)
    p = parse_page(_args(lang="sr-Latn", attempt="3"), 64)
    assert (p.lang, p.attempt) == ("sr-Latn", 3)
