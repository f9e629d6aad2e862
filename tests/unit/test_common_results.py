"""The result fields every text channel shows: times, amounts, only the fields a template names."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from core.requests import ActivationResult
from core.results import ResultCode
from protocols.common.results import RESULT_FIELDS, local_time, result_fields
from protocols.common.templates import Blank, fill, template_fields

BELGRADE = ZoneInfo("Europe/Belgrade")


def exact(epoch_ms, zone, fmt):
    return datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=zone).strftime(fmt)


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M:%S",
                                 "%c", "%H:%M %Z"])
@pytest.mark.parametrize("epoch_ms", [
    0, 1_800_000_000_000, 1_800_000_059_999,          # the first and last ms of a minute
    1_711_846_799_000, 1_711_846_800_000,             # either side of a DST change (CET -> CEST)
    1_735_685_999_999, 1_735_686_000_000])            # local midnight, new year, Belgrade
def test_local_time_matches_strftime_to_the_second(epoch_ms, fmt):
    for zone in (BELGRADE, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata")):
        assert local_time(epoch_ms, zone, fmt) == exact(epoch_ms, zone, fmt)


def test_local_time_of_none_is_empty():
    assert local_time(None, BELGRADE, "%Y") == ""


def result(**kw):
    values = dict(amount=1250, currency="EUR", validity_days=30, new_expiry=1_800_000_000_000,
                  balance=9900, txn_id="0123456789abcdef0123", msisdn="+381641234567")
    values.update(kw)
    return ActivationResult(ResultCode.SUCCESS, **values)


def test_all_fields_by_default():
    fields = result_fields(result(), BELGRADE, "%d.%m.%Y", "%H:%M")
    assert set(fields) == RESULT_FIELDS
    assert (fields["amount"], fields["balance"], fields["expiry"], fields["txn_id"],
            fields["code"], fields["validity_days"], fields["unbar_time"]) == (
        "12.50", "99.00", "15.01.2027", "0123456789ab", "0", "30", "")


def test_only_the_named_fields_are_worked_out():
    fields = result_fields(result(), BELGRADE, "%Y-%m-%d", "%H:%M",
                           names={"amount", "msisdn", "nonsense"}, msisdn="0641234567")
    assert dict(fields) == {"amount": "12.50", "msisdn": "0641234567"}
    assert isinstance(fields, Blank) and fields["expiry"] == ""


@pytest.mark.parametrize("template,names", [
    ("Credited {amount} {currency}, valid until {expiry}.", {"amount", "currency", "expiry"}),
    ("{amount:>8} {txn_id!r} {{literal}}", {"amount", "txn_id"}),
    ("{amount.real} {balance[0]}", {"amount", "balance"}),
    ("no fields", set()),
    ("broken {amount", set()),
])
def test_template_fields(template, names):
    assert template_fields(template) == names


def test_filling_with_only_the_named_fields_gives_the_full_text():
    template = "Credited {amount} {currency}; valid until {expiry}. Ref {txn_id}."
    full = fill(template, result_fields(result(), BELGRADE, "%Y-%m-%d", "%H:%M"))
    named = fill(template, result_fields(result(), BELGRADE, "%Y-%m-%d", "%H:%M",
                                         names=template_fields(template)))
    assert named == full == "Credited 12.50 EUR; valid until 2027-01-15. Ref 0123456789ab."
