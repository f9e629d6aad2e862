"""Fraud control: failed attempts per MSISDN and per source, tiered bars (DESIGN §4 step 2).

Each function runs inside the caller's unit of work.  Counting is one atomic
UPDATE, so concurrent failures on several nodes are never lost and exactly
one of them crosses each tier.
"""
from __future__ import annotations

from sqlalchemy import and_, bindparam, case, delete, select, update

from core.schema import fraud_counter as fc

_BARRED = select(fc.c.barred_until).where(fc.c.subject == bindparam("subject"))

_BUMP = update(fc).where(fc.c.subject == bindparam("subject")).values(
    failures=case((fc.c.window_start <= bindparam("cutoff"), 1), else_=fc.c.failures + 1),
    window_start=case((fc.c.window_start <= bindparam("cutoff"), bindparam("now")),
                      else_=fc.c.window_start),
    last_failure_at=bindparam("now"),
).returning(fc.c.failures, fc.c.barred_until)

_BAR = update(fc).where(and_(fc.c.subject == bindparam("subject"),
                             fc.c.barred_until < bindparam("until"))) \
    .values(barred_until=bindparam("until"))

_RESET = delete(fc).where(fc.c.subject == bindparam("subject"))


def msisdn_subject(msisdn: str) -> str:
    return "msisdn:" + msisdn


def source_subject(channel: str, source: str) -> str:
    return "source:%s:%s" % (channel, source)


def status(tx, subject: str, now: int) -> tuple[bool, int | None]:
    """(whether C{subject} has a counter, the epoch ms its bar ends or None)."""
    row = tx.execute(_BARRED, {"subject": subject}).first()
    if row is None:
        return False, None
    return True, (row[0] if row[0] > now else None)


def barred_until(tx, subject: str, now: int) -> int | None:
    """The epoch ms until which C{subject} is barred, or None when it is not."""
    return status(tx, subject, now)[1]


def record_failure(tx, subject: str, now: int, settings, *, bars: bool = True) -> int | None:
    """Count one failed attempt of C{subject} and bar it when it reaches a tier.

    @param bars: False for per-source counters, which are kept but never bar.
    @return: the new bar's end (epoch ms) when this failure crossed a tier.
    """
    params = {"subject": subject, "now": now, "cutoff": now - settings.window_seconds * 1000}
    row = tx.execute(_BUMP, params).first()
    if row is None:
        if tx.insert_ignore(fc, {"subject": subject, "failures": 1, "window_start": now,
                                 "barred_until": 0, "last_failure_at": now}):
            failures = 1
        else:   # another node inserted it first: count on its row
            failures = tx.execute(_BUMP, params).first()[0]
    else:
        failures = row[0]
    if not bars:
        return None
    for tier in settings.tiers:
        if failures == tier.failures:
            until = now + tier.bar_seconds * 1000
            tx.execute(_BAR, {"subject": subject, "until": until})
            return until
    return None


def reset(tx, subject: str) -> None:
    """Forget C{subject}'s failures (after a success, or an unbar)."""
    tx.execute(_RESET, {"subject": subject})


def list_counters(tx, prefix: str = "", limit: int = 100) -> list[dict]:
    """Counters whose subject starts with C{prefix}, most failures first."""
    q = select(fc).where(fc.c.subject.startswith(prefix)).order_by(fc.c.failures.desc()).limit(limit)
    return [dict(zip(fc.c.keys(), r)) for r in tx.execute(q).rows]
