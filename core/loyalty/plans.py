"""The typed loyalty plan model and its period keys (calendar UTC day/week/month, rolling N days).

A L{Plan} is built once from the configuration (C{gateway.config_loyalty})
and is immutable.  Everything here is pure: no store, no reactor.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field

from core.money import format_money
from core.timeutil import DAY_MS

#: Counter kinds: what a tier's targets are measured in.
COUNTERS = ("recharges", "amount", "both")
#: Period kinds.
PERIODS = ("day", "week", "month", "rolling")
#: The period key of every rolling-window counter row.
ROLLING_KEY = "rolling"


@dataclass(frozen=True)
class Reward:
    """What reaching a tier grants: bonus credit and/or account validity.

    @ivar bonus: minor units of C{currency} (0: validity only).
    @ivar currency: ISO 4217 code; "" means the recharged voucher's currency.
    @ivar validity_days: days of account validity (0: none).
    """

    bonus: int = 0
    currency: str = ""
    validity_days: int = 0


@dataclass(frozen=True)
class Tier:
    """One target of a plan and its reward.

    A tier is reached when every target it names is reached: C{recharges}
    (counted recharges, weights applied) and/or C{amount} (counted amount in
    minor units).  A target of 0 is not part of the tier.
    """

    recharges: int
    amount: int
    reward: Reward
    name: str = ""

    @property
    def id(self) -> str:
        """A stable identity derived from the targets (C{r5}, C{a5000}, C{r5a5000}):
        the same targets keep their identity when the plan is edited."""
        return (("r%d" % self.recharges) if self.recharges else "") + \
               (("a%d" % self.amount) if self.amount else "")

    def reached(self, recharges: int, amount: int) -> bool:
        return recharges >= self.recharges and amount >= self.amount

    def describe(self, currency: str = "") -> str:
        """C{5 recharges}, C{50.00 EUR}, C{5 recharges and 50.00 EUR}."""
        parts = []
        if self.recharges:
            parts.append("%d recharge%s" % (self.recharges, "" if self.recharges == 1 else "s"))
        if self.amount:
            parts.append(format_money(self.amount, currency))
        return " and ".join(parts)


@dataclass(frozen=True)
class Period:
    """How a plan's counters are grouped in time (UTC).

    @ivar kind: C{day}, C{week} (ISO weeks, from Monday), C{month} or
        C{rolling} (the last C{days} days up to the recharge).
    """

    kind: str = "month"
    days: int = 30

    @property
    def rolling(self) -> bool:
        return self.kind == "rolling"

    @property
    def window_ms(self) -> int:
        return self.days * DAY_MS

    def key(self, at_ms: int) -> str:
        """The counter row key of the period holding C{at_ms}:
        C{D2025-01-31}, C{W2025-05} (ISO year and week), C{M2025-01}, or
        C{rolling} for a rolling window (one row per subscriber and plan)."""
        if self.kind == "rolling":
            return ROLLING_KEY
        d = _utc(at_ms)
        if self.kind == "day":
            return "D%04d-%02d-%02d" % (d.year, d.month, d.day)
        if self.kind == "week":
            y, w, _ = d.isocalendar()
            return "W%04d-%02d" % (y, w)
        if self.kind == "month":
            return "M%04d-%02d" % (d.year, d.month)
        raise ValueError("unknown period kind %r" % (self.kind,))

    def bounds(self, at_ms: int) -> tuple[int, int]:
        """(start, end) in epoch ms of the period holding C{at_ms}; the end
        is exclusive.  For a rolling window: (at - days, at]."""
        if self.kind == "rolling":
            return at_ms - self.window_ms, at_ms
        d = _utc(at_ms).date()
        if self.kind == "day":
            start = d
            end = d + _dt.timedelta(days=1)
        elif self.kind == "week":
            start = d - _dt.timedelta(days=d.weekday())
            end = start + _dt.timedelta(days=7)
        elif self.kind == "month":
            start = d.replace(day=1)
            end = (start + _dt.timedelta(days=32)).replace(day=1)
        else:
            raise ValueError("unknown period kind %r" % (self.kind,))
        return _day_ms(start), _day_ms(end)

    def describe(self) -> str:
        return ("rolling %d days" % self.days) if self.rolling else "calendar " + self.kind


def _utc(ms: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc)


def _day_ms(d: _dt.date) -> int:
    return int(_dt.datetime(d.year, d.month, d.day, tzinfo=_dt.timezone.utc).timestamp() * 1000)


def day_start_ms(d: _dt.date) -> int:
    """The first millisecond of the UTC day C{d}."""
    return _day_ms(d)


@dataclass(frozen=True)
class PrefixRange:
    """MSISDN prefixes from C{low} to C{high} (same length, inclusive);
    a single prefix has C{low == high}."""

    low: str
    high: str

    def matches(self, msisdn: str) -> bool:
        head = msisdn[:len(self.low)]
        return len(head) == len(self.low) and self.low <= head <= self.high

    @classmethod
    def parse(cls, text: str) -> "PrefixRange":
        """C{"38164"} or C{"3816400-3816499"} (E.164 digits).

        @raise ValueError: not digits, or a range whose ends differ in
            length or are out of order.
        """
        low, sep, high = text.partition("-")
        low, high = low.strip(), (high.strip() if sep else low.strip())
        if not (low.isdigit() and high.isdigit()):
            raise ValueError("%r: a prefix is E.164 digits, a range is LOW-HIGH" % (text,))
        if len(low) != len(high):
            raise ValueError("%r: both ends of a range must have the same number of digits" % (text,))
        if low > high:
            raise ValueError("%r: the range's low end is above its high end" % (text,))
        return cls(low, high)

    def __str__(self) -> str:
        return self.low if self.low == self.high else "%s-%s" % (self.low, self.high)


@dataclass(frozen=True)
class Plan:
    """One loyalty plan (DESIGN §7), as configured.

    @ivar voucher_types: type code -> weight; C{"*"} matches every type.  A
        batch generated with loyalty parameters (its snapshot of the type's
        C{loyalty} table) counts with the snapshot's weight instead.
    @ivar counter: C{recharges}, C{amount} or C{both}.
    @ivar currency: counted amounts are in this currency; recharges in
        other currencies add no amount ("" counts every currency).
    @ivar tiers: ascending targets.
    @ivar eligible: MSISDN prefix ranges; empty admits everyone.
    @ivar active_from: first active instant (epoch ms), or None.
    @ivar active_until: end of activity (epoch ms, exclusive), or None.
    """

    id: str
    name: str
    tiers: tuple[Tier, ...]
    period: Period = field(default_factory=Period)
    counter: str = "recharges"
    voucher_types: dict = field(default_factory=dict)
    currency: str = ""
    eligible: tuple[PrefixRange, ...] = ()
    active_from: int | None = None
    active_until: int | None = None
    enabled: bool = True

    def active(self, at_ms: int) -> bool:
        """True when the plan counts recharges made at C{at_ms}."""
        if not self.enabled:
            return False
        if self.active_from is not None and at_ms < self.active_from:
            return False
        return self.active_until is None or at_ms < self.active_until

    def eligible_msisdn(self, msisdn: str) -> bool:
        return not self.eligible or any(r.matches(msisdn) for r in self.eligible)

    def weight(self, type_code: str, snapshot: dict) -> int:
        """The weight a recharge of C{type_code} counts with.

        @param snapshot: the batch's loyalty parameters ({plan id: weight});
            they take precedence over the plan's own C{voucher_types}.
        """
        if self.id in snapshot:
            return snapshot[self.id]
        w = self.voucher_types.get(type_code)
        return self.voucher_types.get("*", 0) if w is None else w

    def counted_amount(self, amount: int, currency: str, weight: int) -> int:
        """The amount a recharge adds to the amount counter."""
        if self.currency and currency != self.currency:
            return 0
        return amount * weight

    def next_tier(self, recharges: int, amount: int) -> Tier | None:
        """The lowest tier not yet reached by these counts, or None."""
        for t in self.tiers:
            if not t.reached(recharges, amount):
                return t
        return None


_snapshot_cache: dict = {}


def parse_snapshot(text: str | None) -> dict:
    """A batch's loyalty JSON ({plan id: weight}) as a dict; malformed -> {}.

    Cached: batches are few and their snapshots immutable.
    """
    if not text:
        return {}
    got = _snapshot_cache.get(text)
    if got is None:
        try:
            raw = json.loads(text)
            got = {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        except (ValueError, TypeError, AttributeError):
            got = {}
        if len(_snapshot_cache) < 10_000:
            _snapshot_cache[text] = got
    return got
