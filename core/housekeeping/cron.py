"""Cron-style schedules: five-field expressions, C{@daily}-style macros and C{@every} intervals, in UTC.

A schedule answers one question: given a time (epoch seconds), when does it
fire next?  Everything is UTC, so there are no daylight-saving gaps or
repeats.  Supported syntax (the classic Vixie-cron set, as crontab(5)):

- five fields C{minute hour day-of-month month day-of-week};
- each field: C{*}, a number, a range C{a-b}, a list C{a,b-c}, a step
  C{*/n}, C{a-b/n} or C{a/n} (from C{a} to the field's end);
- month names C{jan}-C{dec} and weekday names C{sun}-C{sat} (any case);
  weekday 0 and 7 are both Sunday;
- when both day-of-month and day-of-week are restricted (neither starts
  with C{*}), a day matches if *either* matches (crontab(5)'s rule);
- macros C{@yearly} (C{@annually}), C{@monthly}, C{@weekly}, C{@daily}
  (C{@midnight}), C{@hourly};
- C{@every N[s|m|h|d]}: every N seconds (minutes, hours, days), aligned to
  the Unix epoch so that every node of a cluster fires at the same instants
  (C{@every 60s} fires at each whole UTC minute).

Written here rather than taken from croniter: iVOMS needs UTC-only
next-fire times on epoch seconds, which is about a hundred lines with no
time-zone handling, and every behaviour above is pinned by the unit tests.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import re

__all__ = ["CronError", "Schedule", "CronSchedule", "IntervalSchedule", "parse"]

_MONTHS = {n: i for i, n in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_DAYS = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

#: (name, lowest, highest, names) of the five fields.
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)

#: Far enough to cross any leap-day-only schedule (Feb 29 on a given weekday).
_SEARCH_DAYS = 366 * 29


class CronError(ValueError):
    """A schedule expression is malformed or can never fire; the message says which part."""


class Schedule:
    """When something fires: C{next_after(t)} is the first fire time after C{t}."""

    expression: str

    def next_after(self, t: float) -> int:
        """The first fire time strictly after C{t} (epoch seconds, UTC), as whole seconds."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.expression


class IntervalSchedule(Schedule):
    """C{@every N}: fires at every multiple of C{seconds} since the Unix epoch."""

    def __init__(self, expression: str, seconds: int):
        self.expression = expression
        self.seconds = seconds

    def next_after(self, t: float) -> int:
        return (int(t // self.seconds) + 1) * self.seconds


class CronSchedule(Schedule):
    """A five-field cron expression (see the module docstring for the syntax)."""

    def __init__(self, expression: str, minutes, hours, days, months, weekdays,
                 day_star: bool, weekday_star: bool):
        self.expression = expression
        self.minutes = sorted(minutes)
        self.hours = sorted(hours)
        self.days = frozenset(days)
        self.months = frozenset(months)
        self.weekdays = frozenset(weekdays)          # 0 = Sunday
        self.day_star = day_star
        self.weekday_star = weekday_star

    def _day_matches(self, d: _dt.date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            # one of them is '*': the other one decides (both '*': every day)
            return dom and dow
        return dom or dow

    def next_after(self, t: float) -> int:
        start = _dt.datetime.fromtimestamp((int(t // 60) + 1) * 60, _dt.timezone.utc)
        day = start.date()
        first = True
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                fire = self._first_time(start.hour, start.minute) if first else \
                    (self.hours[0], self.minutes[0])
                if fire is not None:
                    h, m = fire
                    return calendar.timegm((day.year, day.month, day.day, h, m, 0))
            day += _dt.timedelta(days=1)
            first = False
        raise CronError("%r never fires" % self.expression)

    def _first_time(self, hour: int, minute: int):
        """The first (hour, minute) of the schedule at or after C{hour:minute}, or None."""
        for h in self.hours:
            if h < hour:
                continue
            for m in self.minutes:
                if h > hour or m >= minute:
                    return h, m
        return None


def parse(expression: str) -> Schedule:
    """Parse a schedule expression.

    @return: a L{Schedule}.
    @raise CronError: the expression is malformed or can never fire.
    """
    if not isinstance(expression, str):
        raise CronError("a schedule must be a string")
    text = " ".join(expression.split())
    low = text.lower()
    if low.startswith("@every"):
        m = re.fullmatch(r"@every\s+(\d+)\s*([smhd]?)", low)
        if not m or int(m.group(1)) == 0:
            raise CronError("%r: expected '@every N' with N > 0 and an optional unit s, m, h "
                            "or d (e.g. '@every 60s')" % expression)
        return IntervalSchedule(text, int(m.group(1)) * _UNITS[m.group(2) or "s"])
    if low.startswith("@"):
        if low not in _MACROS:
            raise CronError("%r: unknown macro (known: %s, @every N)"
                            % (expression, ", ".join(sorted(_MACROS))))
        fields = _MACROS[low].split()
    else:
        fields = text.split()
    if len(fields) != 5:
        raise CronError("%r: expected 5 fields (minute hour day-of-month month day-of-week), "
                        "got %d" % (expression, len(fields)))
    values = [_field(f, *spec, expression=expression) for f, spec in zip(fields, _FIELDS)]
    weekdays = {0 if d == 7 else d for d in values[4]}
    sched = CronSchedule(text, values[0], values[1], values[2], values[3], weekdays,
                         fields[2].startswith("*"), fields[4].startswith("*"))
    sched.next_after(0)        # raises CronError for an impossible date such as 31 Feb
    return sched


def _field(text: str, name: str, lo: int, hi: int, names, *, expression: str) -> set:
    out: set = set()
    for part in text.split(","):
        if not part:
            raise CronError("%r: empty list item in the %s field" % (expression, name))
        rng, _, step_text = part.partition("/")
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError("%r: step %r in the %s field must be a positive number"
                                % (expression, step_text, name))
            step = int(step_text)
        else:
            step = 1
        if rng == "*":
            a, b = lo, (6 if hi == 7 else hi)
        elif "-" in rng:
            a_text, _, b_text = rng.partition("-")
            a = _value(a_text, name, lo, hi, names, expression)
            b = _value(b_text, name, lo, hi, names, expression)
            if a > b:
                raise CronError("%r: range %r in the %s field runs backwards"
                                % (expression, rng, name))
        else:
            a = _value(rng, name, lo, hi, names, expression)
            b = (6 if hi == 7 else hi) if step_text else a
        out.update(range(a, b + 1, step))
    return out


def _value(text: str, name: str, lo: int, hi: int, names, expression: str) -> int:
    t = text.lower()
    if names and t in names:
        return names[t]
    if not t.isdigit():
        raise CronError("%r: %r is not a valid %s" % (expression, text, name))
    v = int(t)
    if not lo <= v <= hi:
        raise CronError("%r: %s %d is outside %d-%d" % (expression, name, v, lo, hi))
    return v
