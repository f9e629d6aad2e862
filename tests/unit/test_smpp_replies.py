"""Reply templates, the [smpp] settings, reassembly and the throttle."""

from __future__ import annotations

import pytest
from twisted.internet import task

from core.money import format_amount
from core.requests import ActivationResult
from core.results import ResultCode
from core.settings import ConfigError, build
from protocols.smpp.config import SmppSettings, default_templates
from protocols.smpp.reassembly import Reassembler
from protocols.smpp.replies import Replies
from protocols.smpp.text import Concat
from protocols.smpp.throttle import Throttle

JAN1 = 1767225600000        # 2026-01-01T00:00:00Z


# -- replies -------------------------------------------------------------------

@pytest.mark.parametrize("minor,currency,text", [
    (1000, "EUR", "10.00"), (5, "EUR", "0.05"), (1500, "JPY", "1500"),
    (12345, "KWD", "12.345"), (-250, "RSD", "-2.50"), (None, "EUR", "")])
def test_format_amount(minor, currency, text):
    assert format_amount(minor, currency) == text


def test_every_result_code_has_a_template_in_each_builtin_language():
    for lang, table in default_templates().items():
        assert {c.name for c in ResultCode} | {"HELP"} == set(table), lang


def test_success_fields():
    r = Replies(timezone="Europe/Belgrade")
    text = r.render(ActivationResult(ResultCode.SUCCESS, txn_id="0123456789abcdef0000",
                                     amount=1050, currency="EUR", new_expiry=JAN1), "en")
    assert text == "Your account was credited with 10.50 EUR. Valid until 2026-01-01. " \
                   "Ref 0123456789ab."


def test_unbar_time_in_configured_zone():
    r = Replies(timezone="Europe/Belgrade")
    text = r.render(ActivationResult(ResultCode.SUBSCRIBER_BARRED, unbar_at=JAN1), "en")
    assert text.endswith("after 2026-01-01 01:00.")


def test_language_fallback_and_overrides():
    r = Replies({"sr": {"INVALID_HRN": "Pogrešan broj."}, "de": {"SUCCESS": "{amount} {currency} gutgeschrieben"}},
                default_language="en")
    assert r.render(ActivationResult(ResultCode.INVALID_HRN), "sr") == "Pogrešan broj."
    assert r.render(ActivationResult(ResultCode.VOUCHER_EXPIRED), "de") == "This voucher has expired."
    assert r.render(ActivationResult(ResultCode.SUCCESS, amount=100, currency="EUR"), "de") == \
        "1.00 EUR gutgeschrieben"
    assert r.render(ActivationResult(ResultCode.INVALID_HRN), "xx") == \
        "Invalid voucher number. Please check it and try again."


def test_missing_fields_render_empty():
    r = Replies({"en": {"SUCCESS": "Credited {amount} {currency}, days {validity_days}"}})
    assert r.render(ActivationResult(ResultCode.SUCCESS), "en") == "Credited , days"


def test_help_lists_keywords():
    assert Replies().help("en", ["RECHARGE", "TOPUP"]).startswith(
        "To recharge, send RECHARGE/TOPUP followed")


# -- settings --------------------------------------------------------------------

def load(table):
    return build(SmppSettings, table, file="ivoms.toml", key="smpp", base_dir="/")


def test_defaults_build():
    s = load({})
    assert not s.enabled and s.session.window == 10 and s.grammar.keywords["DOPUNA"] == "sr"


def test_full_table_builds():
    s = load({
        "server": {"enabled": True, "endpoint": "tcp:2775:interface=0.0.0.0",
                   "accounts": [{"system_id": "smsc1", "password": "pw", "throughput": 100.0,
                                 "allowed_addresses": ["10.0.0.0/8"], "max_binds": 2,
                                 "bind_types": ["transceiver"]}]},
        "smsc": [{"name": "a", "system_id": "ivoms", "password": "x",
                  "endpoint": "tcp:host=10.0.0.5:port=2775", "bind": "receiver+transmitter"}],
        "grammar": {"keywords": {"RECHARGE": "en"}, "allow_beneficiary": True},
        "replies": {"templates": {"en": {"SUCCESS": "OK {amount}"}}, "timezone": "Europe/Belgrade"},
        "channel": {"reassembly_timeout": 30.0},
    })
    assert s.enabled and s.server.accounts[0].max_binds == 2 and s.smsc[0].bind == "receiver+transmitter"


@pytest.mark.parametrize("table,where", [
    ({"server": {"enabled": True}}, "needs at least one"),
    ({"server": {"accounts": [{"system_id": "x" * 16, "password": "p"}]}}, "smpp.server.accounts[0].system_id"),
    ({"server": {"accounts": [{"system_id": "a", "password": "p", "bind_types": ["rx"]}]}}, "bind_types"),
    ({"server": {"accounts": [{"system_id": "a", "password": "p", "allowed_addresses": ["nope"]}]}},
     "allowed_addresses"),
    ({"server": {"accounts": [{"system_id": "a", "password": "p"}, {"system_id": "a", "password": "q"}]}},
     "duplicate system_id"),
    ({"smsc": [{"name": "a", "system_id": "s", "bind": "both"}]}, "smpp.smsc[0].bind"),
    ({"smsc": [{"name": "a", "system_id": "s"}, {"name": "a", "system_id": "t"}]}, "duplicate SMSC"),
    ({"grammar": {"keywords": {"R2D2": "en"}}}, "smpp.grammar.keywords"),
    ({"replies": {"templates": {"en": {"SUCESS": "x"}}}}, "unknown template"),
    ({"replies": {"templates": {"en": {"SUCCESS": "{hrn}"}}}}, "unknown field {hrn}"),
    ({"replies": {"timezone": "Mars/Olympus"}}, "unknown time zone"),
    ({"session": {"window": 0}}, "smpp.session.window"),
    ({"session": {"windows": 3}}, "unknown key 'windows'"),
])
def test_bad_settings_name_the_key(table, where):
    with pytest.raises(ConfigError) as info:
        load(table)
    assert where in str(info.value) and "ivoms.toml" in str(info.value)


# -- reassembly and throttle ------------------------------------------------------

def test_reassembly_single_part_passes_through():
    r = Reassembler(task.Clock())
    assert r.add("o", "udh8", Concat(1, 1, 1), 0, b"x").payload == b"x" and len(r) == 0


def test_reassembly_duplicate_part_and_groups_by_total():
    clock = task.Clock()
    r = Reassembler(clock, timeout=10)
    assert r.add("o", "udh8", Concat(5, 2, 1), 0, b"a") is None
    assert r.add("o", "udh8", Concat(5, 2, 1), 0, b"A") is None        # duplicate replaces
    assert r.add("o", "udh8", Concat(5, 3, 2), 0, b"z") is None        # other total: other group
    assert r.add("o", "sar", Concat(5, 2, 2), 0, b"s") is None         # other kind: other group
    whole = r.add("o", "udh8", Concat(5, 2, 2), 3, b"b")
    assert (whole.data_coding, whole.payload) == (0, b"Ab") and len(r) == 2
    clock.advance(10)
    assert len(r) == 0 and r.expired == 2 and clock.getDelayedCalls() == []


def test_reassembly_limit():
    r = Reassembler(task.Clock(), max_pending=1)
    r.add("o", "udh8", Concat(1, 2, 1), 0, b"a")
    with pytest.raises(OverflowError):
        r.add("o", "udh8", Concat(2, 2, 1), 0, b"a")
    r.clear()
    assert len(r) == 0


def test_throttle():
    clock = task.Clock()
    t = Throttle(2, clock)
    assert [t.allow() for _ in range(3)] == [True, True, False]
    assert t.delay() == pytest.approx(0.5)
    clock.advance(0.5)
    assert t.allow() and not t.allow()
    assert Throttle(0, clock).allow() and Throttle(0, clock).delay() == 0
