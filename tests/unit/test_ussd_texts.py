"""USSD texts and the C{[ussd]} settings: localisation, fields, USSD size limits, and
config validation that names the key (issue 6)."""

from __future__ import annotations

import tomllib

import pytest

from core.money import format_amount
from core.requests import ActivationResult
from core.results import ResultCode as R
from core.settings import ConfigError, build
from protocols.ussd.config import PROMPT_KEYS, UssdSettings
from protocols.ussd.gsm7 import encode_ussd
from protocols.ussd.replies import Texts, default_templates, fit, fits, oversize_templates


def load(toml: str) -> UssdSettings:
    data = tomllib.loads(toml).get("ussd", {})
    return build(UssdSettings, data, file="ivoms.toml", key="ussd", base_dir="/")


def test_defaults():
    s = load("")
    assert s == UssdSettings()
    assert (s.enabled, s.service_codes, s.max_body_bytes, s.allowed_addresses) == \
        (True, {"123": ""}, 8192, [])
    assert (s.dialogue.timeout, s.dialogue.max_sessions, s.dialogue.max_attempts,
            s.dialogue.allow_other_number) == (120.0, 10000, 3, True)
    assert (s.texts.default_language, s.texts.timezone) == ("en", "UTC")


def test_settings_from_toml():
    s = load("""
[ussd]
service_codes = { "123" = "", "124" = "sr" }
allowed_addresses = ["10.1.0.0/16"]
[ussd.dialogue]
timeout = 60
[ussd.texts]
default_language = "sr"
timezone = "Europe/Belgrade"
[ussd.texts.templates.en]
MENU = "Top-up\\n1 Me\\n2 Other\\n3 Help"
[ussd.texts.templates.de]
SUCCESS = "Aufgeladen: {amount} {currency}"
""")
    assert s.service_codes["124"] == "sr" and s.dialogue.timeout == 60.0
    texts = Texts.from_settings(s.texts)
    assert texts.text("MENU", "en") == "Top-up\n1 Me\n2 Other\n3 Help"
    assert texts.text("MENU", "de").startswith("Dopuna")   # falls back to the default
    result = ActivationResult(R.SUCCESS, amount=500, currency="EUR", new_expiry=0)
    assert texts.result(result, "de") == "Aufgeladen: 5.00 EUR"


@pytest.mark.parametrize("toml, key", [
    ('[ussd]\nservice_codes = {}', "ussd.service_codes"),
    ('[ussd]\nservice_codes = { "12a" = "" }', "ussd.service_codes"),
    ('[ussd]\nallowed_addresses = ["nowhere"]', "ussd.allowed_addresses"),
    ('[ussd]\nmax_body_bytes = 10', "ussd.max_body_bytes"),
    ('[ussd]\nlisten = "x"', "ussd.listen"),
    ('[ussd.dialogue]\ntimeout = 0', "ussd.dialogue.timeout"),
    ('[ussd.texts]\ntimezone = "Mars/Olympus"', "ussd.texts.timezone"),
    ('[ussd.texts.templates.en]\nNOPE = "x"', "ussd.texts.templates"),
    ('[ussd.texts.templates.en]\nMENU = "{hrn}"', "ussd.texts.templates"),
    ('[ussd.texts.templates.en]\nMENU = "{"', "ussd.texts.templates"),
    ('[ussd.texts.templates.en]\nHELP = "%s"' % ("x" * 183), "ussd.texts.templates"),
    ('[ussd.texts.templates.ru]\nHELP = "%s"' % ("Ж" * 81), "ussd.texts.templates"),
])
def test_bad_settings_name_the_key(toml, key):
    with pytest.raises(ConfigError) as info:
        load(toml)
    assert str(info.value).startswith("ivoms.toml: " + key)


def test_format_amount():
    assert format_amount(1050, "EUR") == "10.50"
    assert format_amount(5, "EUR") == "0.05"
    assert format_amount(-1050, "EUR") == "-10.50"
    assert format_amount(500, "JPY") == "500"
    assert format_amount(1234, "KWD") == "1.234"
    assert format_amount(None, "EUR") == ""


def test_fit_keeps_within_the_ussd_limit():
    assert fit("  hello ") == "hello" and fit("") == "."
    assert fit("x" * 182) == "x" * 182
    cut = fit("x" * 300)
    assert cut.endswith("...") and len(cut) == 182
    cut = fit("€" * 100)               # two septets each
    assert cut.endswith("...") and fits(cut) and not fits(cut + "€")
    cut = fit("Ж" * 100)               # UCS-2: 80 characters
    assert len(cut) <= 80 and fits(cut)
    assert len(encode_ussd(cut)[1]) <= 160


def test_every_default_text_fits_at_the_widest():
    assert oversize_templates(default_templates()) is None
    allowed = {c.name for c in R} | PROMPT_KEYS
    for language, table in default_templates().items():
        assert set(table) == allowed, language


def test_result_texts():
    texts = Texts(timezone="Europe/Belgrade")
    ok = ActivationResult(R.SUCCESS, txn_id="0123456789abcdef", amount=1000,
                          currency="EUR", new_expiry=1767222000000)   # 2026-01-01 00:00 CET
    assert texts.result(ok, "en") == ("Your account was credited with 10.00 EUR. "
                                      "Valid until 2026-01-01. Ref 0123456789ab")
    assert texts.result(ok, "sr").startswith("Vas racun je dopunjen sa 10.00 EUR")
    no_expiry = ActivationResult(R.SUCCESS, amount=1000, currency="EUR")
    assert "Valid until" not in texts.result(no_expiry, "en")
    other = texts.result(ok, "en", beneficiary="0647654321")
    assert other.startswith("0647654321 was credited with 10.00 EUR")
    barred = ActivationResult(R.SUBSCRIBER_BARRED, unbar_at=1767222000000 + 90 * 60_000)
    assert texts.result(barred, "en") == ("Too many failed attempts. "
                                          "You can try again after 2026-01-01 01:30.")
    odd = ActivationResult(999)
    assert texts.result(odd, "en").startswith("Sorry, the recharge failed")
    assert texts.result(ActivationResult(R.INVALID_HRN), "xx").startswith("Invalid voucher")


def test_language_choice():
    texts = Texts({"de": {"MENU": "Aufladen"}}, default_language="sr")
    assert texts.choose_language(None, "", "DE") == "de"
    assert texts.choose_language("xx", None) == "sr"
    assert texts.has_language("en") and not texts.has_language(None)
    assert texts.joined("INVALID_CHOICE", "MENU", "de") == "Pogresan izbor.\nAufladen"
    long_menu = Texts({"en": {"MENU": "m" * 180}})
    assert long_menu.joined("INVALID_CHOICE", "MENU", "en") == "m" * 180


#: The [ussd] block for conf/ivoms.toml, every default shown (kept in step with it).
CONF_BLOCK = r'''
[ussd]
# USSD gateway bridge at POST /ussd on the [http] listener.  The gateway
# relays MAP USSD operations as BER (a bare USSD-Arg / USSD-Res, or a whole
# TCAP message) or plain text in JSON; docs/ussd.md describes the envelope.
enabled = true
# Service codes: the 123 of *123# -> language of its texts ("": the
# gateway's language, else the USSD string's data coding scheme, else
# texts.default_language).  *123# opens the menu, *123*HRN# recharges the
# caller, *123*HRN*MSISDN# another number.
service_codes = { "123" = "" }
# Largest request body accepted, in octets (HTTP 413 above it).
max_body_bytes = 8192
# Gateway IP addresses or networks allowed to post, e.g. ["10.20.0.0/16"];
# empty: any client (the [http] listener binds to loopback by default).
allowed_addresses = []
# Longest dialogue id accepted from the gateway.
max_dialogue_id_length = 64

[ussd.dialogue]
# Seconds a dialogue waits for the subscriber's next answer.  A later
# continue gets the SESSION_EXPIRED text (TCAP: a P-Abort).
timeout = 120.0
# Open dialogues held at once; a begin beyond it gets MAP error ussd-Busy
# (72), or HTTP 503 for plain text.
max_sessions = 10000
# Tries at one prompt (menu choice, phone number, voucher number) before
# the dialogue ends with TOO_MANY_ATTEMPTS.
max_attempts = 3
# Offer "2 Recharge another number" and *123*HRN*MSISDN#; the core's
# activation.allow_beneficiary must allow it too.
allow_other_number = true

[ussd.texts]
# Language when no other applies; built-in texts exist for "en" and "sr".
default_language = "en"
# IANA time zone and strftime formats of {expiry} and {unbar_time}.
timezone = "UTC"
date_format = "%Y-%m-%d"
time_format = "%Y-%m-%d %H:%M"
# Texts override the built-in ones per language and key, in a table
# ussd.texts.templates.<language> (examples below).  Keys: MENU, MENU_SELF_ONLY,
# PROMPT_HRN, PROMPT_BENEFICIARY, PROMPT_HRN_OTHER, HELP, INVALID_CHOICE,
# INVALID_HRN_INPUT, INVALID_NUMBER_INPUT, TOO_MANY_ATTEMPTS,
# SESSION_EXPIRED, UNKNOWN_SERVICE, BAD_REQUEST, OTHER_NUMBER_DISABLED,
# SUCCESS, SUCCESS_NO_EXPIRY, SUCCESS_OTHER, and every other result-code
# name (SYSTEM_ERROR, SUBSCRIBER_UNKNOWN, SUBSCRIBER_BARRED,
# VOUCHER_ALREADY_USED_BY_YOU, VOUCHER_USED_BY_OTHER, VOUCHER_NOT_AVAILABLE,
# VOUCHER_EXPIRED, VOUCHER_BLOCKED, VOUCHER_PENDING, BILLING_REJECTED,
# INVALID_HRN, INVALID_MSISDN, BILLING_UNAVAILABLE).  Fields: {amount}
# {currency} {expiry} {unbar_time} {validity_days} {balance} {txn_id} {code}
# {msisdn} {beneficiary} {service_code} {hrn_digits}.  Each text must fit
# one USSD string with its fields filled in (182 GSM 7-bit characters, or
# 80 when any character needs UCS-2); a longer one stops the start-up.
# [ussd.texts.templates.en]
# SUCCESS = "Recharged {amount} {currency}. Valid until {expiry}. Ref {txn_id}"
# [ussd.texts.templates.sr]
# MENU = "Dopuna\n1 Moj broj\n2 Drugi broj\n3 Pomoc"
'''


def test_conf_block_shows_the_defaults():
    assert load(CONF_BLOCK) == UssdSettings()
    uncommented = CONF_BLOCK.replace("# [ussd.texts.templates", "[ussd.texts.templates") \
        .replace("# SUCCESS =", "SUCCESS =").replace("# MENU =", "MENU =")
    s = load(uncommented)
    assert s.texts.templates["sr"]["MENU"].startswith("Dopuna\n1 Moj broj")
