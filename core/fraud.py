"""Fraud control: failed attempts per MSISDN and per source, tiered bars (DESIGN §4 step 2).

Each function runs inside the caller's unit of work.  Counting is one atomic
UPDATE, so concurrent failures on several nodes are never lost and exactly
one of them crosses each tier.

An attempt takes its slot BEFORE its HRN is evaluated (L{claim}): one
conditional statement counts it as a failure and, when that count reaches a
tier, plants the tier's bar at once, unless the subject is already barred.
An attempt that turns out not to be a counted failure gives its slot back
(L{refund}), lifting the bar it planted.  So however many attempts for one
MSISDN run at once, on one node or several, at most a tier's threshold of
them is evaluated before the bar: the others find it planted.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, case, delete, or_, select, update

from core.schema import fraud_counter as fc

_BARRED = select(fc.c.barred_until).where(fc.c.subject == bindparam("subject"))

_RESET = delete(fc).where(fc.c.subject == bindparam("subject"))


@dataclass(frozen=True)
class Claim:
    """The slot one attempt took on a subject's counter (see L{claim}).

    @ivar barred_until: epoch ms the subject stays barred when the attempt
        was refused without a slot, else None.
    @ivar failures: the count including this attempt (0 when refused).
    @ivar planted: the end of the bar this attempt planted by reaching a
        tier, else None (the bar stands if the attempt fails, and is lifted
        by L{refund} otherwise).
    """

    barred_until: int | None
    failures: int = 0
    planted: int | None = None

    @property
    def had_failures(self) -> bool:
        """True when failures were counted before this attempt."""
        return self.failures > 1


_claims: dict = {}


def _claim_statement(tiers):
    key = tuple((t.failures, t.bar_seconds) for t in tiers)
    stmt = _claims.get(key)
    if stmt is None:
        expired = fc.c.window_start <= bindparam("cutoff")
        new = case((expired, 1), else_=fc.c.failures + 1)
        bars = [(new == f, bindparam("now") + s * 1000) for f, s in key]
        stmt = update(fc).where(and_(fc.c.subject == bindparam("subject"),
                                     fc.c.barred_until <= bindparam("now"))).values(
            failures=new,
            window_start=case((expired, bindparam("now")), else_=fc.c.window_start),
            barred_until=case(*bars, else_=fc.c.barred_until) if bars else fc.c.barred_until,
            last_failure_at=bindparam("now"),
        ).returning(fc.c.failures, fc.c.barred_until)
        _claims[key] = stmt
    return stmt


_PEEK = select(fc.c.failures, fc.c.window_start, fc.c.barred_until).where(
    fc.c.subject == bindparam("subject"))


def peek(tx, subject: str, now: int, settings) -> Claim:
    """What L{claim} would decide for C{subject}, without taking a slot: one read.

    Only for a store whose units of work never overlap (SQLite: every unit
    holds the one writer lock from C{BEGIN IMMEDIATE} to its commit, across
    processes too).  There, checking the bar first and counting a failure
    only once it is known (L{claim} then) evaluates exactly what taking the
    slot first would, and a success, the common case, writes nothing to the
    counter.

    @return: a L{Claim} whose C{failures} count this attempt as L{claim}'s
        would (so C{had_failures} is the same), and C{planted} None: nothing
        is planted until L{claim} counts the failure.
    """
    row = tx.execute(_PEEK, {"subject": subject}).first()
    if row is None:
        return Claim(None, 1)
    failures, window_start, until = row
    if until > now:
        return Claim(until)
    expired = window_start <= now - settings.window_seconds * 1000
    return Claim(None, 1 if expired else failures + 1)


def claim(tx, subject: str, now: int, settings) -> Claim:
    """Take one attempt's slot on C{subject}'s counter, before its HRN is evaluated.

    One conditional C{UPDATE ... WHERE barred_until <= now ... RETURNING}
    counts the attempt as a failure and plants a tier's bar when the count
    reaches it (a first attempt inserts the row instead).  On PostgreSQL the
    row stays locked until the unit commits, so concurrent attempts for the
    subject queue behind it.

    @return: a L{Claim}; when its C{barred_until} is set the attempt must be
        refused without evaluating anything.
    """
    stmt = _claim_statement(settings.tiers)
    params = {"subject": subject, "now": now, "cutoff": now - settings.window_seconds * 1000}
    row = tx.execute(stmt, params).first()
    if row is None:
        bar = next((now + t.bar_seconds * 1000 for t in settings.tiers if t.failures == 1), 0)
        if tx.insert_ignore(fc, {"subject": subject, "failures": 1, "window_start": now,
                                 "barred_until": bar, "last_failure_at": now}):
            return Claim(None, 1, bar or None)
        row = tx.execute(stmt, params).first()   # another node inserted it first
        if row is None:
            until = barred_until(tx, subject, now)
            return Claim(until if until is not None else now)
    failures, until = row
    return Claim(None, failures, until if until > now else None)


_REFUND_LAST = delete(fc).where(and_(fc.c.subject == bindparam("subject"), fc.c.failures <= 1,
                                     or_(fc.c.barred_until <= bindparam("now"),
                                         fc.c.barred_until == bindparam("planted"))))

_REFUND = update(fc).where(fc.c.subject == bindparam("subject")).values(
    failures=case((fc.c.failures > 0, fc.c.failures - 1), else_=0),
    barred_until=case((fc.c.barred_until == bindparam("planted"), 0), else_=fc.c.barred_until))


def refund(tx, subject: str, c: Claim, now: int) -> None:
    """Give back the slot of an attempt that was not a counted failure.

    The count loses this attempt and the bar it planted is lifted; a
    counter left empty is deleted, so a clean subscriber keeps no row.
    """
    params = {"subject": subject, "now": now,
              "planted": c.planted if c.planted is not None else -1}
    if tx.execute(_REFUND_LAST, params).rowcount == 0:
        tx.execute(_REFUND, params)


#: Window of the per-source counters: failures per minute.
SOURCE_WINDOW_MS = 60_000
#: Failed attempts per minute from one source when its peer sets no limit.
SOURCE_DEFAULT_LIMIT = 30

_SOURCE_BUMP = update(fc).where(fc.c.subject == bindparam("subject")).values(
    failures=case((fc.c.window_start <= bindparam("cutoff"), 1), else_=fc.c.failures + 1),
    window_start=case((fc.c.window_start <= bindparam("cutoff"), bindparam("now")),
                      else_=fc.c.window_start),
    last_failure_at=bindparam("now"),
).returning(fc.c.failures)


def source_limit(settings, source: str) -> int:
    """Failed attempts per minute allowed from C{source} (its peer's limit, else the default)."""
    for peer in getattr(settings, "sources", ()) or ():
        if peer.source == source:
            return peer.failures_per_minute
    return getattr(settings, "source_failures_per_minute", SOURCE_DEFAULT_LIMIT)


def record_source_failure(tx, subject: str, now: int) -> None:
    """Count one failure of a source in its one-minute window (for the fraud view).

    The throttle itself is decided before the unit of work, in memory
    (L{core.throttle.SourceGate}); this row shows the count of every node.
    """
    params = {"subject": subject, "now": now, "cutoff": now - SOURCE_WINDOW_MS}
    if tx.execute(_SOURCE_BUMP, params).first() is None:
        if not tx.insert_ignore(fc, {"subject": subject, "failures": 1, "window_start": now,
                                     "barred_until": 0, "last_failure_at": now}):
            tx.execute(_SOURCE_BUMP, params)


#: Channels where the MSISDN is only what the client says (issue 16, point 3) when
#: C{[fraud] self_asserted_channels} does not say otherwise.
SELF_ASSERTED = ("web", "wap", "soap")


def msisdn_subject(msisdn: str, scope: str | None = None) -> str:
    """The counter of C{msisdn}: barred everywhere (C{scope} None), or only for
    attempts from C{scope} (see L{bar_scope})."""
    if scope is None:
        return "msisdn:" + msisdn
    return "msisdn:%s@%s" % (msisdn, scope)


def bar_scope(settings, channel: str, source: str | None) -> str | None:
    """Where failures of an attempt bar its MSISDN: None for everywhere, or
    C{"<channel>:<source>"} when the channel only self-asserts the MSISDN.

    On a self-asserted channel (by default the public Web/WAP page and SOAP
    clients; C{settings.self_asserted_channels}) anyone may type any MSISDN,
    so its failures bar that MSISDN only for that source: a stranger cannot
    bar a subscriber's recharges on the network's own channels (SMS, USSD,
    IVR caller id), where the network asserts the number and a bar holds
    everywhere.
    """
    channels = getattr(settings, "self_asserted_channels", SELF_ASSERTED)
    if channel not in channels:
        return None
    return "%s:%s" % (channel, source or "-")


def split_subject(subject: str) -> tuple[str, str | None]:
    """(MSISDN, scope or None) of an C{msisdn:} counter's subject."""
    msisdn, _, scope = subject[len("msisdn:"):].partition("@")
    return msisdn, scope or None


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


def reset(tx, subject: str) -> None:
    """Forget C{subject}'s failures (after a success)."""
    tx.execute(_RESET, {"subject": subject})


def reset_msisdn(tx, msisdn: str) -> int:
    """Forget every counter of C{msisdn}, its bar everywhere and its bars on
    single sources (an unbar by an operator).

    @return: the counters forgotten.
    """
    return tx.execute(delete(fc).where(or_(
        fc.c.subject == msisdn_subject(msisdn),
        fc.c.subject.startswith(msisdn_subject(msisdn) + "@", autoescape=True)))).rowcount


def list_counters(tx, prefix: str = "", limit: int = 100) -> list[dict]:
    """Counters whose subject starts with C{prefix}, most failures first."""
    q = select(fc).where(fc.c.subject.startswith(prefix)).order_by(fc.c.failures.desc()).limit(limit)
    return [dict(zip(fc.c.keys(), r)) for r in tx.execute(q).rows]
