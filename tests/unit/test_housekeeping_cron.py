"""Cron schedules (core.housekeeping.cron): syntax, next-fire times in UTC, errors."""
from __future__ import annotations

import calendar

import pytest

from core.housekeeping.cron import CronError, IntervalSchedule, parse


def ts(text: str) -> int:
    """'YYYY-MM-DD HH:MM[:SS]' (UTC) as epoch seconds."""
    date, clock = text.split()
    y, mo, d = (int(x) for x in date.split("-"))
    parts = [int(x) for x in clock.split(":")] + [0]
    return calendar.timegm((y, mo, d, parts[0], parts[1], parts[2], 0, 0, 0))


def fires(expr: str, start: str, n: int = 4) -> list[int]:
    s = parse(expr)
    out, t = [], ts(start)
    for _ in range(n):
        t = s.next_after(t)
        out.append(t)
    return out


def test_every_minute_is_strictly_after():
    assert fires("* * * * *", "2026-03-01 10:00") == [ts("2026-03-01 10:01"), ts("2026-03-01 10:02"),
                                                      ts("2026-03-01 10:03"), ts("2026-03-01 10:04")]
    # mid-minute: the next whole minute
    assert parse("* * * * *").next_after(ts("2026-03-01 10:00:30")) == ts("2026-03-01 10:01")
    assert parse("* * * * *").next_after(ts("2026-03-01 10:00:30") + 0.5) == ts("2026-03-01 10:01")


def test_daily_at_a_time_rolls_over_months_and_years():
    assert fires("5 0 * * *", "2026-12-30 12:00", 3) == [
        ts("2026-12-31 00:05"), ts("2027-01-01 00:05"), ts("2027-01-02 00:05")]
    assert parse("5 0 * * *").next_after(ts("2026-12-31 00:04:59")) == ts("2026-12-31 00:05")
    assert parse("5 0 * * *").next_after(ts("2026-12-31 00:05")) == ts("2027-01-01 00:05")


def test_ranges_lists_steps():
    assert fires("*/15 9-10 * * *", "2026-03-02 08:59", 9) == [
        ts("2026-03-02 09:00"), ts("2026-03-02 09:15"), ts("2026-03-02 09:30"), ts("2026-03-02 09:45"),
        ts("2026-03-02 10:00"), ts("2026-03-02 10:15"), ts("2026-03-02 10:30"), ts("2026-03-02 10:45"),
        ts("2026-03-03 09:00")]
    assert fires("0,30 1,13 * * *", "2026-03-02 00:00", 5) == [
        ts("2026-03-02 01:00"), ts("2026-03-02 01:30"), ts("2026-03-02 13:00"),
        ts("2026-03-02 13:30"), ts("2026-03-03 01:00")]
    assert fires("10-50/20 * * * *", "2026-03-02 00:00", 4) == [
        ts("2026-03-02 00:10"), ts("2026-03-02 00:30"), ts("2026-03-02 00:50"), ts("2026-03-02 01:10")]
    assert fires("45/5 0 * * *", "2026-03-02 00:00", 4) == [
        ts("2026-03-02 00:45"), ts("2026-03-02 00:50"), ts("2026-03-02 00:55"), ts("2026-03-03 00:45")]


def test_names_and_weekdays():
    # 2026-03-02 is a Monday
    assert fires("0 9 * * mon-fri", "2026-03-06 10:00", 2) == [ts("2026-03-09 09:00"),
                                                              ts("2026-03-10 09:00")]
    assert fires("0 0 * * SUN", "2026-03-02 00:00", 2) == [ts("2026-03-08 00:00"), ts("2026-03-15 00:00")]
    # 7 is Sunday too
    assert parse("0 0 * * 7").next_after(ts("2026-03-02 00:00")) == ts("2026-03-08 00:00")
    assert fires("0 0 1 jan,jul *", "2026-03-02 00:00", 2) == [ts("2026-07-01 00:00"),
                                                              ts("2027-01-01 00:00")]


def test_day_of_month_or_day_of_week_when_both_restricted():
    # crontab(5): the 13th OR any Friday
    got = fires("0 0 13 * fri", "2026-03-01 00:00", 4)
    assert got == [ts("2026-03-06 00:00"), ts("2026-03-13 00:00"), ts("2026-03-20 00:00"),
                   ts("2026-03-27 00:00")]
    # day-of-week '*': only the day of month counts
    assert fires("0 0 31 * *", "2026-03-01 00:00", 3) == [
        ts("2026-03-31 00:00"), ts("2026-05-31 00:00"), ts("2026-07-31 00:00")]


def test_leap_day():
    assert parse("0 0 29 2 *").next_after(ts("2026-03-01 00:00")) == ts("2028-02-29 00:00")
    assert parse("0 0 29 2 *").next_after(ts("2096-03-01 00:00")) == ts("2104-02-29 00:00")


def test_macros():
    assert parse("@daily").next_after(ts("2026-03-02 10:00")) == ts("2026-03-03 00:00")
    assert parse("@midnight").next_after(ts("2026-03-02 10:00")) == ts("2026-03-03 00:00")
    assert parse("@hourly").next_after(ts("2026-03-02 10:00")) == ts("2026-03-02 11:00")
    assert parse("@weekly").next_after(ts("2026-03-02 10:00")) == ts("2026-03-08 00:00")
    assert parse("@monthly").next_after(ts("2026-03-02 10:00")) == ts("2026-04-01 00:00")
    assert parse("@yearly").next_after(ts("2026-03-02 10:00")) == ts("2027-01-01 00:00")
    assert parse("@annually").next_after(ts("2026-03-02 10:00")) == ts("2027-01-01 00:00")


def test_every_interval_is_aligned_to_the_epoch():
    s = parse("@every 60s")
    assert isinstance(s, IntervalSchedule) and s.seconds == 60
    assert s.next_after(ts("2026-03-02 10:00:30")) == ts("2026-03-02 10:01")
    assert s.next_after(ts("2026-03-02 10:01")) == ts("2026-03-02 10:02")
    assert parse("@every 30").next_after(ts("2026-03-02 10:00:10")) == ts("2026-03-02 10:00:30")
    assert parse("@every 2h").seconds == 7200
    assert parse("@every 1d").next_after(ts("2026-03-02 10:00")) == ts("2026-03-03 00:00")
    assert str(parse("@every  5m")) == "@every 5m"


def test_whitespace_and_case():
    assert str(parse("  0   6 * * *  ")) == "0 6 * * *"
    assert parse("0 0 1 JAN Mon").next_after(ts("2026-01-02 00:00")) == ts("2026-01-05 00:00")


@pytest.mark.parametrize("expr, problem", [
    ("", "expected 5 fields"),
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "expected 5 fields"),
    ("60 * * * *", "minute 60 is outside 0-59"),
    ("* 24 * * *", "hour 24 is outside 0-23"),
    ("* * 0 * *", "day of month 0 is outside 1-31"),
    ("* * * 13 *", "month 13 is outside 1-12"),
    ("* * * * 8", "day of week 8 is outside 0-7"),
    ("*/0 * * * *", "step '0' in the minute field"),
    ("*/x * * * *", "step 'x' in the minute field"),
    ("5-1 * * * *", "range '5-1' in the minute field runs backwards"),
    ("1,,2 * * * *", "empty list item in the minute field"),
    ("abc * * * *", "'abc' is not a valid minute"),
    ("* * * foo *", "'foo' is not a valid month"),
    ("0 0 31 2 *", "never fires"),
    ("0 0 30 feb *", "never fires"),
    ("@often", "unknown macro"),
    ("@every", "expected '@every N'"),
    ("@every 0s", "expected '@every N'"),
    ("@every 5 weeks", "expected '@every N'"),
])
def test_errors_say_what_is_wrong(expr, problem):
    with pytest.raises(CronError) as ei:
        parse(expr)
    assert problem in str(ei.value)


def test_not_a_string():
    with pytest.raises(CronError):
        parse(5)
