"""Typed settings of the housekeeping jobs and their scheduler: C{[housekeeping]} (DESIGN §8).

Schedules are cron expressions evaluated in **UTC** (see
L{core.housekeeping.cron} for the syntax).  A job that is not enabled is
never scheduled, but can still be run on demand (C{ivoms housekeeping run}).
"""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import non_negative, one_of, positive, setting


def cron(v):
    """A schedule expression that parses (or '' where a job allows it)."""
    from core.housekeeping.cron import CronError, parse
    try:
        parse(v)
    except CronError as e:
        return str(e)
    return None


def cron_or_empty(v):
    return None if v == "" else cron(v)


@dataclass(frozen=True)
class ExpireJob:
    """C{[housekeeping.expire]}: generated/available vouchers past their date become expired."""

    enabled: bool = True
    schedule: str = setting("5 0 * * *", check=cron)
    run_at_start: bool = False


@dataclass(frozen=True)
class ReconcileJob:
    """C{[housekeeping.reconcile]}: conclude reservations left pending with billing."""

    enabled: bool = True
    # "": every activation.reconcile_interval_seconds, aligned to the clock
    schedule: str = setting("", check=cron_or_empty)
    run_at_start: bool = True


@dataclass(frozen=True)
class LiftBarsJob:
    """C{[housekeeping.lift_bars]}: forget fraud counters whose bar ended and window passed."""

    enabled: bool = True
    schedule: str = setting("20 * * * *", check=cron)
    run_at_start: bool = False


@dataclass(frozen=True)
class PurgeJob:
    """C{[housekeeping.purge]}: move used and expired vouchers out of the voucher table."""

    enabled: bool = True
    schedule: str = setting("30 2 * * *", check=cron)
    run_at_start: bool = False
    mode: str = setting("report-only", check=one_of("report-only", "table", "file"))
    older_than_days: int = setting(180, check=positive)
    folder: str = setting("var/archive", path=True)


@dataclass(frozen=True)
class ForgetRequestsJob:
    """C{[housekeeping.forget_requests]}: forget idempotency keys past the replay window."""

    enabled: bool = True
    schedule: str = setting("*/10 * * * *", check=cron)
    run_at_start: bool = False
    # keys are kept at least [activation] replay_window_seconds; a longer time here wins
    older_than_seconds: int = setting(0, check=non_negative)


@dataclass(frozen=True)
class DailyReportJob:
    """C{[housekeeping.daily_report]}: recharge and stock CSV files for the previous UTC day."""

    enabled: bool = True
    schedule: str = setting("15 0 * * *", check=cron)
    run_at_start: bool = False
    folder: str = setting("var/reports", path=True)


@dataclass(frozen=True)
class NearExpiryJob:
    """C{[housekeeping.near_expiry]}: warn about unused stock expiring soon."""

    enabled: bool = True
    schedule: str = setting("0 6 * * *", check=cron)
    run_at_start: bool = False
    days: int = setting(30, check=positive)
    threshold: int = setting(1, check=positive)


@dataclass(frozen=True)
class HousekeepingSettings:
    """C{[housekeeping]}: the scheduler and every job's table."""

    enabled: bool = True
    chunk_size: int = setting(1000, check=positive)
    chunk_pause: float = setting(0.05, check=non_negative)
    lease_seconds: int = setting(120, check=positive)
    expire: ExpireJob = setting(factory=ExpireJob)
    reconcile: ReconcileJob = setting(factory=ReconcileJob)
    lift_bars: LiftBarsJob = setting(factory=LiftBarsJob)
    purge: PurgeJob = setting(factory=PurgeJob)
    forget_requests: ForgetRequestsJob = setting(factory=ForgetRequestsJob)
    daily_report: DailyReportJob = setting(factory=DailyReportJob)
    near_expiry: NearExpiryJob = setting(factory=NearExpiryJob)

    def job(self, name: str):
        """The settings table of the job C{name}."""
        return getattr(self, name)
