"""Epoch-millisecond time helpers: every stored timestamp is UTC epoch ms."""
from __future__ import annotations

import datetime as _dt
import time as _time

DAY_MS = 86_400_000


def now_ms(clock=None) -> int:
    """Current time in epoch ms from an C{IReactorTime} C{clock} (or the wall clock)."""
    return int((clock.seconds() if clock is not None else _time.time()) * 1000)


def end_of_day_ms(day: _dt.date) -> int:
    """The first millisecond after C{day} ends, UTC: a voucher expiring on
    C{day} is usable through that whole day."""
    nxt = _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc) + _dt.timedelta(days=1)
    return int(nxt.timestamp() * 1000)


def fmt_ms(ms: int | None) -> str:
    """C{ms} as an ISO 8601 UTC time to the second, or '-'."""
    if ms is None:
        return "-"
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_day(ms: int | None) -> str:
    """The UTC date on which the period ending at C{ms} (exclusive) last applies."""
    if ms is None:
        return "-"
    return _dt.datetime.fromtimestamp((ms - 1) / 1000, _dt.timezone.utc).strftime("%Y-%m-%d")
