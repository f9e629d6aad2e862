"""The MO keyword grammar (protocols.smpp.grammar)."""

from __future__ import annotations

import pytest

from protocols.smpp.grammar import Grammar, Recharge, Unknown

HRN = "12345678901234"
KEYWORDS = {"RECHARGE": "en", "TOPUP": "en", "DOPUNA": "sr", "TOP UP": "en"}


def grammar(**kw):
    kw.setdefault("hrn_lengths", [14])
    return Grammar(KEYWORDS, **kw)


@pytest.mark.parametrize("text,hrn,language,keyword", [
    ("RECHARGE " + HRN, HRN, "en", "RECHARGE"),
    ("recharge 1234 5678 9012 34", "1234 5678 9012 34", "en", "RECHARGE"),
    ("  ReChArGe\t1234-5678-9012-34 ", "1234-5678-9012-34", "en", "RECHARGE"),
    ("TopUp " + HRN, HRN, "en", "TOPUP"),
    ("top up " + HRN, HRN, "en", "TOP UP"),
    ("dopuna " + HRN, HRN, "sr", "DOPUNA"),
    ("DOPUNA\u00a0" + HRN, HRN, "sr", "DOPUNA"),
    (HRN, HRN, "en", None),
    ("1234 5678-9012 34", "1234 5678-9012 34", "en", None),
    ("RECHARGE 123", "123", "en", "RECHARGE"),          # wrong length: the core says 119
])
def test_recharge_forms(text, hrn, language, keyword):
    got = grammar().parse(text)
    assert isinstance(got, Recharge)
    assert (got.hrn, got.language, got.keyword, got.beneficiary) == (hrn, language, keyword, None)


@pytest.mark.parametrize("text,language", [
    ("", "en"), ("hello", "en"), ("RECHARGE", "en"), ("DOPUNA", "sr"),
    ("DOPUNA abc", "sr"), ("RECHARGEX " + HRN, "en"), ("BALANCE " + HRN, "en"),
    (HRN + " thanks", "en"),
])
def test_unknown(text, language):
    assert grammar().parse(text) == Unknown(language)


def test_bare_hrn_can_be_disabled():
    assert grammar(bare_hrn=False).parse(HRN) == Unknown("en")


@pytest.mark.parametrize("text,hrn,beneficiary", [
    ("RECHARGE %s 0641112222" % HRN, HRN, "0641112222"),
    ("RECHARGE 1234 5678 9012 34 +381641112222", "1234 5678 9012 34", "+381641112222"),
    ("dopuna 1234-5678-9012-34 064-111-2222", "1234-5678-9012-34", "064-111-2222"),
])
def test_beneficiary_when_enabled(text, hrn, beneficiary):
    got = grammar(allow_beneficiary=True).parse(text)
    assert (got.hrn, got.beneficiary) == (hrn, beneficiary)


def test_beneficiary_not_taken_when_disabled():
    got = grammar().parse("RECHARGE %s 0641112222" % HRN)
    assert got.beneficiary is None and got.hrn == HRN + " 0641112222"   # core: INVALID_HRN
    assert grammar().parse("RECHARGE %s +381641112222" % HRN) == Unknown("en")


def test_without_lengths_every_digit_is_hrn():
    g = Grammar(KEYWORDS, allow_beneficiary=True)
    assert g.parse("RECHARGE 1234 5678").hrn == "1234 5678"


def test_repr_hides_hrn():
    assert HRN not in repr(grammar().parse("RECHARGE " + HRN))


def test_keywords_for_language():
    g = grammar()
    assert g.keywords_for("sr") == ["DOPUNA"]
    assert g.keywords_for("en") == ["RECHARGE", "TOP UP", "TOPUP"]
    assert g.keywords_for("de") == g.keyword_list


def test_from_settings_uses_voucher_lengths_when_none_configured():
    from protocols.smpp.config import GrammarSettings
    g = Grammar.from_settings(GrammarSettings(allow_beneficiary=True), "en", hrn_lengths=[14])
    assert g.parse("RECHARGE %s 0641112222" % HRN).beneficiary == "0641112222"


@pytest.mark.parametrize("lengths", [[14], [], [12, 16]])
def test_the_quick_match_answers_as_the_full_parse(lengths):
    """The one-regex match of the usual MO gives what the token-by-token parse gives."""
    quick = grammar(hrn_lengths=lengths)
    full = grammar(hrn_lengths=lengths)
    full._usual = None
    texts = [kw + sep + digits + tail
             for kw in ("RECHARGE", "recharge", "ReChArGe", "TOPUP", "dopuna", "TOP", "top up",
                        "RECHARGEX", "\u212aecharge", "DOPUNA\u00a0")
             for sep in (" ", "\t", "  ", "")
             for digits in (HRN, "123", "123456789012", "1234567890123456", "")
             for tail in ("", " ", " 0641112222", "x")]
    for text in texts:
        assert quick.parse(text) == full.parse(text), text
