"""The housekeeping jobs and their registry (DESIGN §8).

Each job is C{async def job(ctx) -> JobReport}.  It works in chunks: every
change is a small unit of work queued on the node's writer
(C{ctx.write}), and bulk reads run on the reactor's thread pool
(C{ctx.read}); between chunks it calls C{ctx.checkpoint()}, which stops it
when the node stops or the job's lease was lost.  In a dry run a job only
counts what it would do.  Each job's options are its settings table
(L{gateway.config_housekeeping}).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import os
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import (
    and_, bindparam, case, delete, exists, func, literal, literal_column, or_, select, update,
)

from core import inbox
from core.housekeeping.files import AppendSink, write_atomically
from core.results import ResultCode
from core.schema import (
    batch, fraud_counter as fc, txn, voucher, voucher_archive, voucher_history,
    voucher_history_archive,
)
from core.shared_db import purge_expired
from core.states import VoucherState as S
from core.timeutil import DAY_MS, fmt_day, fmt_ms

ACTOR = "housekeeping"


@dataclass
class JobReport:
    """What a run did (or, dry, would do): rows touched and a one-paragraph message."""

    rows: int
    message: str


@dataclass(frozen=True)
class Job:
    """A registered job: its name (the config table and CLI name), a title and its function."""

    name: str
    title: str
    run: Callable[..., Awaitable[JobReport]]


# -- expire -------------------------------------------------------------------------
EXPIRABLE = (S.AVAILABLE.value, S.GENERATED.value)
# an OR, not IN (...): Store compiles a literal IN list only for statements without bind params
_UNUSED = or_(*(voucher.c.state == s for s in EXPIRABLE))

_EXPIRE = update(voucher).where(and_(
    voucher.c.serial.in_(select(voucher.c.serial).where(and_(
        voucher.c.state == bindparam("src"), voucher.c.expires_at <= bindparam("now")))
        .limit(bindparam("limit")).scalar_subquery()),
    voucher.c.state == bindparam("src"), voucher.c.expires_at <= bindparam("now"),
)).values(state=S.EXPIRED.value).returning(voucher.c.serial)

# SQLite: the unit holds the only write lock, so the rows the subquery picks are still
# expirable when they are updated; looking them up by serial alone keeps the planner
# from walking every expirable row of the (state, expires_at) index for each chunk.
_EXPIRE_SQLITE = update(voucher).where(
    voucher.c.serial.in_(select(voucher.c.serial).where(and_(
        voucher.c.state == bindparam("src"), voucher.c.expires_at <= bindparam("now")))
        .limit(bindparam("limit")).scalar_subquery()),
).values(state=S.EXPIRED.value).returning(voucher.c.serial)

_EXPIRED_COUNT = select(voucher.c.state, func.count()).where(and_(
    _UNUSED, voucher.c.expires_at <= bindparam("now"))) \
    .group_by(voucher.c.state)


def expire_chunk(tx, state: str, now: int, limit: int) -> int:
    """Expire up to C{limit} vouchers in C{state} whose expiry is at or before C{now},
    each with its history row; return how many changed."""
    stmt = _EXPIRE_SQLITE if tx.is_sqlite else _EXPIRE
    serials = [r[0] for r in tx.execute(stmt, {"src": state, "now": now, "limit": limit}).rows]
    tx.insert_many(voucher_history, [
        {"serial": s, "at": now, "actor": ACTOR, "from_state": state,
         "to_state": S.EXPIRED.value, "reason": "past its expiry date"} for s in serials])
    return len(serials)


def count_expirable(tx, now: int) -> dict:
    """C{{state: count}} of the vouchers the expire job would change at C{now}."""
    return dict(tx.execute(_EXPIRED_COUNT, {"now": now}).rows)


async def expire(ctx) -> JobReport:
    """Generated and available vouchers past their expiry become C{expired}."""
    now = ctx.now()
    if ctx.dry_run:
        counts = await ctx.read(count_expirable, now)
        n = sum(counts.values())
        return JobReport(n, "would expire %d voucher(s)%s" % (n, _by(counts)))
    done: dict = {}
    for state in EXPIRABLE:
        while True:
            n = await ctx.write(expire_chunk, state, now, ctx.chunk_size)
            if n:
                done[state] = done.get(state, 0) + n
                ctx.progress(n)
            if n < ctx.chunk_size:
                break
            await ctx.checkpoint()
    total = sum(done.values())
    return JobReport(total, "expired %d voucher(s)%s" % (total, _by(done)))


def _by(counts: dict) -> str:
    parts = ["%s %d" % (k, v) for k, v in sorted(counts.items()) if v]
    return " (%s)" % ", ".join(parts) if parts else ""


# -- reconcile ----------------------------------------------------------------------
_PENDING_COUNT = select(func.count()).select_from(txn).where(and_(
    txn.c.state == "pending", txn.c.kind == "activation", txn.c.started_at < bindparam("cutoff")))


def count_pending(tx, cutoff: int) -> int:
    """Activations still pending that started before C{cutoff}."""
    return tx.execute(_PENDING_COUNT, {"cutoff": cutoff}).scalar()


async def reconcile(ctx) -> JobReport:
    """Reservations pending longer than activation.reconcile_after_seconds are concluded."""
    if ctx.reconciler is None:
        raise RuntimeError("no reconciler configured on this node")
    if ctx.dry_run:
        n = await ctx.read(count_pending, ctx.now() - int(ctx.reconciler.older_than * 1000))
        return JobReport(n, "would ask billing about %d pending activation(s)" % n)
    rep = await ctx.reconciler.run()
    ctx.progress(rep.committed + rep.released)
    return JobReport(rep.committed + rep.released,
                     "examined %d, committed %d, released %d, left pending %d"
                     % (rep.examined, rep.committed, rep.released, rep.left))


# -- lift bars ----------------------------------------------------------------------
_LIFTABLE = and_(fc.c.barred_until <= bindparam("now"), fc.c.window_start <= bindparam("cutoff"))
_LIFT = delete(fc).where(and_(
    fc.c.subject.in_(select(fc.c.subject).where(_LIFTABLE).limit(bindparam("limit"))
                     .scalar_subquery()), _LIFTABLE)).returning(fc.c.barred_until)
_LIFT_COUNT = select(func.count(), func.coalesce(func.sum(
    case((fc.c.barred_until > 0, 1), else_=0)), 0)).where(_LIFTABLE)


@dataclass(frozen=True, slots=True)
class Lifted:
    """Fraud counters forgotten (or, counting, that would be).

    @ivar counters: how many counters.
    @ivar barred: how many of them had a bar (now ended).
    """

    counters: int
    barred: int


def lift_chunk(tx, now: int, cutoff: int, limit: int) -> Lifted:
    """Delete up to C{limit} fraud counters whose bar ended (or never was) by C{now} and
    whose window started at or before C{cutoff}.

    @return: the L{Lifted} counts of what was deleted.
    """
    rows = tx.execute(_LIFT, {"now": now, "cutoff": cutoff, "limit": limit}).rows
    return Lifted(len(rows), sum(1 for r in rows if r[0]))


def count_liftable(tx, now: int, cutoff: int) -> Lifted:
    """The L{Lifted} counts of what L{lift_chunk} would delete, without a limit."""
    row = tx.execute(_LIFT_COUNT, {"now": now, "cutoff": cutoff}).first()
    return Lifted(int(row[0]), int(row[1]))


async def lift_bars(ctx) -> JobReport:
    """Forget failure counters whose bar is over and whose counting window has passed,
    and expired shared state (GUI sessions, nonces, throttle counters, USSD dialogues)."""
    now = ctx.now()
    cutoff = now - ctx.fraud_window_seconds * 1000
    if ctx.dry_run:
        would = await ctx.read(count_liftable, now, cutoff)
        return JobReport(would.counters, "would forget %d fraud counter(s), %d of them with an "
                         "ended bar" % (would.counters, would.barred))
    total = barred = 0
    while True:
        lifted = await ctx.write(lift_chunk, now, cutoff, ctx.chunk_size)
        n = lifted.counters
        total += n
        barred += lifted.barred
        ctx.progress(n)
        if n < ctx.chunk_size:
            break
        await ctx.checkpoint()
    shared = await ctx.write(purge_expired, now)
    return JobReport(total, "forgot %d fraud counter(s), %d of them with an ended bar; "
                     "deleted %d expired shared-state row(s)" % (total, barred, shared))


# -- forget requests -----------------------------------------------------------------
async def forget_requests(ctx) -> JobReport:
    """Forget idempotency keys older than the replay window (and the job's own
    C{older_than_seconds}, if longer) whose reply is not due.  A repeat of a
    forgotten key is a new request, as any repeat past the window is."""
    keep = max(ctx.replay_window_seconds, ctx.settings.older_than_seconds)
    before = ctx.now() - keep * 1000
    if ctx.dry_run:
        n = await ctx.read(inbox.count_purgeable, before)
        return JobReport(n, "would forget %d request key(s) older than %d s" % (n, keep))
    total = 0
    while True:
        n = await ctx.write(inbox.purge, before, ctx.chunk_size)
        total += n
        ctx.progress(n)
        if n < ctx.chunk_size:
            break
        await ctx.checkpoint()
    return JobReport(total, "forgot %d request key(s) older than %d s" % (total, keep))


# -- purge / archive ---------------------------------------------------------------
_PURGEABLE = or_(
    and_(voucher.c.state == S.USED.value, voucher.c.used_at < bindparam("cutoff")),
    and_(voucher.c.state == S.EXPIRED.value, voucher.c.expires_at < bindparam("cutoff")))

_CANDIDATES = select(voucher.c.serial).where(and_(voucher.c.serial > bindparam("after"),
                                                  _PURGEABLE)) \
    .order_by(voucher.c.serial).limit(bindparam("limit"))

_PURGE_COUNT = select(voucher.c.state, func.count(), func.min(voucher.c.serial),
                      func.max(voucher.c.serial)).where(_PURGEABLE).group_by(voucher.c.state)

ARCHIVE_COLUMNS = ("serial", "batch_id", "state", "expires_at", "key_id", "blind_index",
                   "prev_state", "reason", "used_by", "used_at", "txn_id", "exported")
HISTORY_COLUMNS = ("id", "serial", "at", "actor", "from_state", "to_state", "reason")

_IN_RANGE = and_(voucher.c.serial > bindparam("after"), voucher.c.serial <= bindparam("last"))
_DELETE_VOUCHERS = delete(voucher).where(and_(_IN_RANGE, _PURGEABLE)) \
    .returning(*(voucher.c[c] for c in ARCHIVE_COLUMNS))
_DELETE_HISTORY = delete(voucher_history).where(and_(
    voucher_history.c.serial > bindparam("after"), voucher_history.c.serial <= bindparam("last"),
    ~exists(select(literal(1)).where(voucher.c.serial == voucher_history.c.serial)))) \
    .returning(*(voucher_history.c[c] for c in HISTORY_COLUMNS))


def purge_candidates(tx, after: int, cutoff: int, limit: int) -> list[int]:
    """Serials after C{after} that the purge would move (serial order, at most C{limit})."""
    return [r[0] for r in tx.execute(_CANDIDATES, {"after": after, "cutoff": cutoff,
                                                   "limit": limit}).rows]


@dataclass(frozen=True, slots=True)
class Purgeable:
    """The vouchers of one state the purge would move: how many, and their serial span."""

    count: int
    first: int
    last: int


def count_purgeable(tx, cutoff: int) -> dict[str, Purgeable]:
    """C{{state: L{Purgeable}}} of what the purge would move."""
    return {r[0]: Purgeable(r[1], r[2], r[3])
            for r in tx.execute(_PURGE_COUNT, {"cutoff": cutoff}).rows}


def _take(tx, after: int, last: int, cutoff: int):
    """Delete the purgeable vouchers with serials in (after, last] and their history;
    return (voucher rows, history rows) as dicts."""
    p = {"after": after, "last": last, "cutoff": cutoff}
    vs = [dict(zip(ARCHIVE_COLUMNS, r)) for r in tx.execute(_DELETE_VOUCHERS, p).rows]
    hs = [dict(zip(HISTORY_COLUMNS, r)) for r in tx.execute(_DELETE_HISTORY, p).rows] if vs else []
    return vs, hs


def archive_chunk_to_table(tx, after: int, last: int, cutoff: int, now: int) -> dict:
    """Move the purgeable vouchers in (after, last] and their history to the archive
    tables, in one unit of work; return C{{state: count}}."""
    vs, hs = _take(tx, after, last, cutoff)
    for v in vs:
        v["blind_index"] = bytes(v["blind_index"])
        v["archived_at"] = now
    tx.insert_many(voucher_archive, vs)
    tx.insert_many(voucher_history_archive, hs)
    return _states(vs)


@dataclass(frozen=True, slots=True)
class FileChunk:
    """One chunk archived to files.

    @ivar states: C{{state: count}} of the vouchers moved.
    @ivar vouchers_offset: the vouchers file's new end (where the next chunk appends).
    @ivar history_offset: the history file's new end.
    """

    states: dict
    vouchers_offset: int
    history_offset: int


def archive_chunk_to_file(tx, after: int, last: int, cutoff: int, now: int,
                          vouchers: AppendSink, history: AppendSink) -> FileChunk:
    """Delete the purgeable vouchers in (after, last] and their history, having first
    appended them (synced) to the CSV C{vouchers} and C{history} files.

    Safe to run again after a rollback: each sink rewrites from the offset it
    was given.

    @return: a L{FileChunk}.
    """
    vs, hs = _take(tx, after, last, cutoff)
    now_text = fmt_ms(now)
    v_off = vouchers.append([[_cell(v[c]) for c in ARCHIVE_COLUMNS] + [now_text] for v in vs])
    h_off = history.append([[_cell(h[c]) for c in HISTORY_COLUMNS] for h in hs])
    return FileChunk(_states(vs), v_off, h_off)


def _cell(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return "" if v is None else v


def _states(rows) -> dict:
    out: dict = {}
    for r in rows:
        out[r["state"]] = out.get(r["state"], 0) + 1
    return out


async def purge(ctx) -> JobReport:
    """Used and expired vouchers older than C{older_than_days} leave the voucher table:
    to the archive tables (mode C{table}), to CSV files (C{file}), or only counted
    (C{report-only})."""
    opts = ctx.settings
    now = ctx.now()
    cutoff = now - opts.older_than_days * DAY_MS
    mode = opts.mode
    if ctx.dry_run or mode == "report-only":
        counts = await ctx.read(count_purgeable, cutoff)
        n = sum(c.count for c in counts.values())
        detail = "; ".join("%s %d (serials %d-%d)" % (s, c.count, c.first, c.last)
                           for s, c in sorted(counts.items()))
        verb = "would archive" if mode != "report-only" else "report only: would purge"
        where = {"table": " to the archive tables", "file": " to files in %s" % ctx.path(opts.folder)}
        return JobReport(n, "%s %d voucher(s) used or expired before %s%s%s"
                         % (verb, n, fmt_day(cutoff), where.get(mode, ""),
                            (": " + detail) if detail else ""))
    sinks = None
    if mode == "file":
        stamp = _dt.datetime.fromtimestamp(now / 1000, _dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = os.path.join(ctx.path(opts.folder), "vouchers-%s" % stamp)
        sinks = (AppendSink(base + ".csv", ARCHIVE_COLUMNS + ("archived_at",)),
                 AppendSink(base + "-history.csv", HISTORY_COLUMNS))
        sinks = await ctx.in_thread(lambda: tuple(s.create() for s in sinks))
    done: dict = {}
    after = -1
    while True:
        serials = await ctx.read(purge_candidates, after, cutoff, ctx.chunk_size)
        if not serials:
            break
        last = serials[-1]
        if mode == "table":
            states = await ctx.write(archive_chunk_to_table, after, last, cutoff, now)
        else:
            chunk = await ctx.write(archive_chunk_to_file, after, last, cutoff, now, *sinks)
            states = chunk.states
            sinks = (sinks[0].at(chunk.vouchers_offset), sinks[1].at(chunk.history_offset))
        for k, v in states.items():
            done[k] = done.get(k, 0) + v
        ctx.progress(sum(states.values()))
        after = last
        if len(serials) < ctx.chunk_size:
            break
        await ctx.checkpoint()
    total = sum(done.values())
    where = "the archive tables" if mode == "table" else "%s (and -history.csv)" % sinks[0].path
    if sinks is not None and not total:
        await ctx.in_thread(lambda: [s.remove() for s in sinks])
        where = "no file"
    return JobReport(total, "archived %d voucher(s) used or expired before %s%s to %s"
                     % (total, fmt_day(cutoff), _by(done), where))


# -- daily report files --------------------------------------------------------------
RECHARGE_HEADER = ("day", "channel", "voucher_type", "state", "result_code", "result",
                   "count", "amount_minor", "currency")
STOCK_HEADER = ("as_of", "voucher_type", "state", "count", "face_value_minor", "currency")

# literal_column, not bound values: PostgreSQL must see GROUP BY and SELECT as one expression
_TYPE = func.coalesce(batch.c.type_code, literal_column("'-'"))
_CURRENCY = func.coalesce(txn.c.currency, literal_column("''"))
_RECHARGES = select(
    txn.c.channel, _TYPE, txn.c.state, txn.c.result_code, func.count(),
    func.coalesce(func.sum(case((txn.c.state == "success", txn.c.amount), else_=0)), 0), _CURRENCY,
).select_from(
    txn.outerjoin(voucher, voucher.c.serial == txn.c.serial)
    .outerjoin(voucher_archive, voucher_archive.c.serial == txn.c.serial)
    .outerjoin(batch, batch.c.id == func.coalesce(voucher.c.batch_id, voucher_archive.c.batch_id))
).where(and_(txn.c.kind == "activation", txn.c.started_at >= bindparam("lo"),
             txn.c.started_at < bindparam("hi"))) \
    .group_by(txn.c.channel, _TYPE, txn.c.state, txn.c.result_code, _CURRENCY) \
    .order_by(txn.c.channel, _TYPE, txn.c.state, txn.c.result_code)

_STOCK = select(batch.c.type_code, voucher.c.state, func.count(), func.sum(batch.c.face_value),
                batch.c.currency) \
    .select_from(voucher.join(batch, batch.c.id == voucher.c.batch_id)) \
    .group_by(batch.c.type_code, voucher.c.state, batch.c.currency) \
    .order_by(batch.c.type_code, voucher.c.state)


@dataclass(frozen=True, slots=True)
class ReportRows:
    """The rows of the daily report files.

    @ivar recharges: C{(day, channel, voucher_type, state, result_code, result,
        count, amount_minor, currency)} of the day's activations.
    @ivar stock: C{(voucher_type, state, count, face_value_minor, currency)} now.
    """

    recharges: list
    stock: list


def report_rows(tx, lo: int, hi: int) -> ReportRows:
    """The L{ReportRows} of [lo, hi) (recharges) and of now (stock)."""
    day = fmt_day(hi)
    recharges = []
    for ch, vt, state, code, n, amount, cur in tx.execute(_RECHARGES, {"lo": lo, "hi": hi}).rows:
        try:
            name = ResultCode(code).name
        except ValueError:
            name = "UNKNOWN"
        recharges.append((day, ch, vt, state, code, name, n, amount, cur))
    stock = [tuple(r) for r in tx.execute(_STOCK).rows]
    return ReportRows(recharges, stock)


def report_day(now: int) -> tuple[int, int]:
    """[start, end) in epoch ms of the UTC day before the one containing C{now}."""
    end = now - now % DAY_MS
    return end - DAY_MS, end


async def daily_report(ctx) -> JobReport:
    """Write C{recharges-DAY.csv} (activations of the previous UTC day by channel,
    voucher type and result) and C{stock-DAY.csv} (vouchers by type and state, as the
    run found them) into the configured folder; a second run replaces them."""
    now = ctx.now()
    lo, hi = report_day(now)
    day = fmt_day(hi)
    rows = await ctx.read(report_rows, lo, hi)
    recharges, stock = rows.recharges, rows.stock
    folder = ctx.path(ctx.settings.folder)
    paths = [os.path.join(folder, "recharges-%s.csv" % day), os.path.join(folder, "stock-%s.csv" % day)]
    n = len(recharges) + len(stock)
    if ctx.dry_run:
        return JobReport(n, "would write %s (%d row(s)) and %s (%d row(s))"
                         % (paths[0], len(recharges), paths[1], len(stock)))
    as_of = fmt_ms(now)
    await ctx.in_thread(write_atomically, paths[0], _csv(RECHARGE_HEADER, recharges))
    await ctx.in_thread(write_atomically, paths[1],
                        _csv(STOCK_HEADER, [(as_of,) + r for r in stock]))
    ctx.progress(n)
    return JobReport(n, "wrote %s (%d row(s)) and %s (%d row(s))"
                     % (paths[0], len(recharges), paths[1], len(stock)))


def _csv(header, rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


# -- near-expiry warnings ------------------------------------------------------------
_NEAR = select(batch.c.type_code, voucher.c.state, func.count(), func.min(voucher.c.expires_at)) \
    .select_from(voucher.join(batch, batch.c.id == voucher.c.batch_id)) \
    .where(and_(_UNUSED, voucher.c.expires_at > bindparam("now"),
                voucher.c.expires_at <= bindparam("horizon"))) \
    .group_by(batch.c.type_code, voucher.c.state).order_by(batch.c.type_code, voucher.c.state)


def near_expiry_rows(tx, now: int, horizon: int) -> list[tuple]:
    """(type, state, count, earliest expiry) of unused stock expiring in (now, horizon]."""
    return [tuple(r) for r in tx.execute(_NEAR, {"now": now, "horizon": horizon}).rows]


async def near_expiry(ctx) -> JobReport:
    """Warn (log and run message) for each voucher type with at least C{threshold}
    generated or available vouchers expiring within C{days} days."""
    opts = ctx.settings
    now = ctx.now()
    rows = await ctx.read(near_expiry_rows, now, now + opts.days * DAY_MS)
    by_type: dict = {}
    for vt, state, n, first in rows:
        t = by_type.setdefault(vt, {"count": 0, "first": first, "states": {}})
        t["count"] += n
        t["first"] = min(t["first"], first)
        t["states"][state] = n
    warnings = []
    for vt, t in sorted(by_type.items()):
        if t["count"] < opts.threshold:
            continue
        ctx.log.warn("near-expiry stock: {count} {type} voucher(s) expire within {days} days, "
                     "the first on {first} ({states})", count=t["count"], type=vt,
                     days=opts.days, first=fmt_day(t["first"]), states=_by(t["states"]).strip(" ()"))
        warnings.append("%s: %d%s, first expiry %s" % (vt, t["count"], _by(t["states"]),
                                                       fmt_day(t["first"])))
    total = sum(t["count"] for t in by_type.values())
    if not warnings:
        return JobReport(total, "no voucher type has %d or more unused vouchers expiring within "
                         "%d days" % (opts.threshold, opts.days))
    return JobReport(total, "WARNING unused stock expiring within %d days: %s"
                     % (opts.days, "; ".join(warnings)))


#: Every job, by name (the name of its C{[housekeeping.NAME]} table and of the CLI argument).
JOBS: dict[str, Job] = {j.name: j for j in (
    Job("expire", "expire vouchers past their date", expire),
    Job("reconcile", "reconcile activations left pending", reconcile),
    Job("lift_bars", "forget fraud counters whose bar and window ended", lift_bars),
    Job("purge", "archive or purge old used and expired vouchers", purge),
    Job("forget_requests", "forget idempotency keys past the replay window", forget_requests),
    Job("daily_report", "write the daily recharge and stock CSV files", daily_report),
    Job("near_expiry", "warn about unused stock expiring soon", near_expiry),
)}
