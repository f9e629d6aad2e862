"""One money formatter (L{core.money.format_money}) with ISO 4217 minor units, and its consumers."""
from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from admin.web import money
from core.export import build_csv
from core.loyalty.rewards import RewardGrant
from core.money import DEFAULT_MINOR_DIGITS, format_amount, format_money


@pytest.mark.parametrize("minor, currency, text", [
    (500, "JPY", "500 JPY"),
    (1050, "EUR", "10.50 EUR"),
    (5, "EUR", "0.05 EUR"),
    (1000, "KWD", "1.000 KWD"),
    (1234, "kwd", "1.234 kwd"),
    (0, "EUR", "0.00 EUR"),
    (-1050, "EUR", "-10.50 EUR"),
    (-5, "EUR", "-0.05 EUR"),
    (-500, "JPY", "-500 JPY"),
])
def test_format_money_uses_the_iso_4217_minor_units(minor, currency, text):
    assert format_money(minor, currency) == text


def test_an_unknown_currency_gets_the_default_minor_digits():
    assert DEFAULT_MINOR_DIGITS == 2
    assert format_money(1050, "XYZ") == "10.50 XYZ"


def test_no_currency_leaves_the_code_out():
    assert format_money(1050, "") == "10.50"
    assert format_money(1050, None) == "10.50"


def test_format_money_is_format_amount_and_the_code():
    for minor, cur in ((500, "JPY"), (1050, "EUR"), (1000, "KWD")):
        assert format_money(minor, cur) == "%s %s" % (format_amount(minor, cur), cur)


def test_the_gui_filter_shows_minor_units_per_currency():
    assert money(500, "JPY") == "500 JPY"
    assert money(1050, "EUR") == "10.50 EUR"
    assert money(1000, "KWD") == "1.000 KWD"
    assert money(None, "EUR") == "-"


def test_the_export_file_writes_major_units_per_currency():
    rows = [(1, "11112222333344", "JPY5", 500, "JPY", 0, 7),
            (2, "11112222333355", "EUR10", 1050, "EUR", 0, 7),
            (3, "11112222333366", "KWD1", 1000, "KWD", 0, 7)]
    values = [r[3] for r in csv.reader(io.StringIO(build_csv(rows).decode()))][1:]
    assert values == ["500", "10.50", "1.000"]


def test_a_loyalty_reward_text_uses_the_formatter():
    values = {f.name: None for f in dataclasses.fields(RewardGrant)}
    values.update(plan_name="P", tier_name="Gold", target="5 recharges", amount=500,
                  currency="JPY", validity_days=0)
    assert RewardGrant(**values).text == "Loyalty reward (P, Gold): 500 JPY."
