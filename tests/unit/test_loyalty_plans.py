"""Loyalty plan model: period keys and bounds (UTC), prefixes, weights, rewarded marks (pure)."""
from __future__ import annotations

import datetime as dt

import pytest

from core.loyalty.counters import CounterState, format_rewarded, parse_rewarded
from core.loyalty.plans import (
    Period, Plan, PrefixRange, Reward, Tier, format_money, parse_snapshot,
)
from core.loyalty.rewards import due_tiers, reward_txn_id

DAY = 86_400_000


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize("kind,at,key,start,end", [
    ("day", "2025-01-31T23:59:59.999", "D2025-01-31", "2025-01-31", "2025-02-01"),
    ("day", "2025-02-01T00:00:00", "D2025-02-01", "2025-02-01", "2025-02-02"),
    ("week", "2025-01-05T23:59:59", "W2025-01", "2024-12-30", "2025-01-06"),   # Sunday
    ("week", "2025-01-06T00:00:00", "W2025-02", "2025-01-06", "2025-01-13"),   # Monday
    ("week", "2024-12-31T12:00:00", "W2025-01", "2024-12-30", "2025-01-06"),   # ISO year
    ("month", "2024-02-29T12:00:00", "M2024-02", "2024-02-01", "2024-03-01"),
    ("month", "2024-12-31T23:59:59", "M2024-12", "2024-12-01", "2025-01-01"),
    ("month", "2025-01-01T00:00:00", "M2025-01", "2025-01-01", "2025-02-01"),
])
def test_calendar_periods_in_utc(kind, at, key, start, end):
    p = Period(kind)
    assert p.key(ms(at)) == key
    assert p.bounds(ms(at)) == (ms(start + "T00:00:00"), ms(end + "T00:00:00"))


def test_rolling_period():
    p = Period("rolling", 7)
    t = ms("2025-03-10T12:00:00")
    assert p.key(t) == "rolling" and p.window_ms == 7 * DAY
    assert p.bounds(t) == (t - 7 * DAY, t)
    assert p.describe() == "rolling 7 days" and Period("week").describe() == "calendar week"


def test_prefix_ranges():
    assert PrefixRange.parse("38164").matches("381641234567")
    assert not PrefixRange.parse("38164").matches("381651234567")
    r = PrefixRange.parse("3816400-3816499")
    assert r.matches("381640012345") and r.matches("381649912345")
    assert not r.matches("381650012345") and not r.matches("381")
    assert str(r) == "3816400-3816499" and str(PrefixRange.parse("38164")) == "38164"
    for bad in ("", "38x", "3816-38170", "38170-38160", "+38164"):
        with pytest.raises(ValueError):
            PrefixRange.parse(bad)


def _plan(**kw):
    kw.setdefault("tiers", (Tier(2, 0, Reward(100, "EUR")),))
    return Plan(id="p", name="P", **kw)


def test_activity_eligibility_and_weights():
    p = _plan(active_from=1000, active_until=2000, voucher_types={"A": 2, "*": 1, "Z": 0},
              eligible=(PrefixRange.parse("38164"),), currency="EUR")
    assert not p.active(999) and p.active(1000) and p.active(1999) and not p.active(2000)
    assert not _plan(enabled=False).active(1500)
    assert p.eligible_msisdn("381640000000") and not p.eligible_msisdn("381650000000")
    assert _plan().eligible_msisdn("anything")
    assert (p.weight("A", {}), p.weight("B", {}), p.weight("Z", {})) == (2, 1, 0)
    assert p.weight("A", {"p": 5}) == 5 and p.weight("A", {"p": 0}) == 0     # the batch snapshot wins
    assert _plan().weight("A", {}) == 0
    assert p.counted_amount(1000, "EUR", 2) == 2000 and p.counted_amount(1000, "USD", 2) == 0
    assert _plan().counted_amount(1000, "USD", 1) == 1000


def test_snapshots_and_money():
    assert parse_snapshot('{"gold": 2}') == {"gold": 2}
    assert parse_snapshot("null") == {} and parse_snapshot("") == {} and parse_snapshot("{x") == {}
    assert format_money(1050, "EUR") == "10.50 EUR" and format_money(500, "JPY") == "500 JPY"
    assert format_money(1234, "KWD") == "1.234 KWD" and format_money(5, "") == "0.05"


def test_tiers_ids_and_due():
    both = Tier(3, 3000, Reward(1))
    assert (Tier(5, 0, Reward(1)).id, Tier(0, 5000, Reward(1)).id, both.id) == ("r5", "a5000", "r3a3000")
    assert both.describe("EUR") == "3 recharges and 30.00 EUR"
    assert not both.reached(3, 2999) and both.reached(3, 3000)
    p = _plan(tiers=(Tier(1, 0, Reward(1)), Tier(2, 0, Reward(1)), Tier(4, 0, Reward(1))))
    st = CounterState("M2025-01", 2, 0, {"r1": 0})
    assert [t.id for t in due_tiers(p, st, 0)] == ["r2"]
    assert p.next_tier(2, 0).id == "r4" and p.next_tier(9, 0) is None
    # rolling: due again once a full window has passed since the last reward
    r = _plan(tiers=(Tier(1, 0, Reward(1)),), period=Period("rolling", 1))
    now = 10 * DAY
    assert due_tiers(r, CounterState("rolling", 1, 0, {"r1": (now - DAY) // 1000 + 1}), now) == []
    assert [t.id for t in due_tiers(r, CounterState("rolling", 1, 0, {"r1": (now - DAY) // 1000}),
                                    now)] == ["r1"]


def test_rewarded_marks_and_reward_ids():
    marks = {"r5": 0, "a5000": 1735689600}
    assert format_rewarded(marks) == "a5000@1735689600,r5"
    assert parse_rewarded(format_rewarded(marks)) == marks and parse_rewarded("") == {}
    a = reward_txn_id("381641234567", "p", "M2025-01", "r5")
    assert a == reward_txn_id("381641234567", "p", "M2025-01", "r5") and len(a) == 32
    assert len({a, reward_txn_id("381641234567", "p", "M2025-02", "r5"),
                reward_txn_id("381641234568", "p", "M2025-01", "r5"),
                reward_txn_id("381641234567", "p", "rolling", "r5", "t1"),
                reward_txn_id("381641234567", "p", "rolling", "r5", "t2")}) == 5
