"""Operator reports: recharges, voucher stock, distribution per partner and loyalty rewards.

Each function is a read unit of work (C{fn(tx, ...)}) giving plain rows the
GUI charts and writes as CSV.  Amounts are sums in minor units: a sum may
mix currencies, so none is formatted as one currency.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import and_, func, select

from core.housekeeping import runs
from core.results import ResultCode
from core.schema import batch, export, partner, txn, voucher
from core.timeutil import DAY_MS, fmt_ms


def day_label(ms_day: int) -> str:
    """C{YYYY-MM-DD} of day number C{ms_day} (days since the epoch, UTC)."""
    return dt.datetime.fromtimestamp(ms_day * DAY_MS / 1000, dt.timezone.utc).strftime("%Y-%m-%d")


def _result_name(code: int) -> str:
    try:
        return "%d %s" % (code, ResultCode(code).name)
    except ValueError:
        return str(code)


def recharges(tx, start: int, end: int) -> dict:
    """Activations started in [start, end): count, successes and credited amount per
    day, channel, voucher type and result."""
    day = (txn.c.started_at // DAY_MS).label("day")
    q = select(day, txn.c.channel, batch.c.type_code, txn.c.result_code, txn.c.state,
               func.count(), func.sum(txn.c.amount)) \
        .select_from(txn.outerjoin(voucher, txn.c.serial == voucher.c.serial)
                     .outerjoin(batch, voucher.c.batch_id == batch.c.id)) \
        .where(and_(txn.c.kind == "activation", txn.c.started_at >= start, txn.c.started_at < end)) \
        .group_by(day, txn.c.channel, batch.c.type_code, txn.c.result_code, txn.c.state)
    groups = {k: defaultdict(lambda: [0, 0, 0]) for k in ("day", "channel", "type", "result")}
    for d, channel, code, result, state, n, amount in tx.execute(q).rows:
        keys = {"day": day_label(int(d)), "channel": channel, "type": code or "-",
                "result": _result_name(result)}
        for g, k in keys.items():
            acc = groups[g][k]
            acc[0] += n
            if state == "success":
                acc[1] += n
                acc[2] += int(amount or 0)
    return {g: sorted(((k, *v) for k, v in rows.items())) for g, rows in groups.items()}


def stock(tx, now: int, near_days: int) -> dict:
    """Vouchers by type and state, and usable (generated or available) ones expiring
    within C{near_days}."""
    rows = tx.execute(select(batch.c.type_code, voucher.c.state, func.count())
                      .select_from(voucher.join(batch, voucher.c.batch_id == batch.c.id))
                      .group_by(batch.c.type_code, voucher.c.state)).rows
    near = tx.execute(select(batch.c.type_code, voucher.c.state, func.count())
                      .select_from(voucher.join(batch, voucher.c.batch_id == batch.c.id))
                      .where(and_(voucher.c.state.in_(("generated", "available")),
                                  voucher.c.expires_at > now,
                                  voucher.c.expires_at <= now + near_days * DAY_MS))
                      .group_by(batch.c.type_code, voucher.c.state)).rows
    by_state = defaultdict(int)
    for _, s, n in rows:
        by_state[s] += n
    return {"rows": sorted(rows), "near": sorted(near), "by_state": sorted(by_state.items())}


def distribution(tx, start: int, end: int) -> list:
    """Exports in [start, end) per partner: (partner, exports, vouchers, last export ms)."""
    q = select(partner.c.name, func.count(), func.sum(export.c.count), func.max(export.c.at)) \
        .select_from(export.join(partner, export.c.partner_id == partner.c.id)) \
        .where(and_(export.c.at >= start, export.c.at < end)).group_by(partner.c.name) \
        .order_by(partner.c.name)
    return [(n, c, int(v or 0), fmt_ms(last)) for n, c, v, last in tx.execute(q).rows]


def loyalty(tx, start: int, end: int) -> list:
    """Loyalty reward transactions in [start, end) per plan and state: (plan, state,
    rewards, amount, currency)."""
    q = select(txn.c.plan_id, txn.c.state, func.count(), func.sum(txn.c.amount), txn.c.currency) \
        .where(and_(txn.c.kind == "loyalty", txn.c.started_at >= start, txn.c.started_at < end)) \
        .group_by(txn.c.plan_id, txn.c.state, txn.c.currency).order_by(txn.c.plan_id, txn.c.state)
    return [(p or "-", s, n, int(a or 0), c or "") for p, s, n, a, c in tx.execute(q).rows]


def gather(tx, start: int, end: int, now: int, near_days: int) -> dict:
    """Every report of [start, end) in one read unit of work.

    @return: C{{"recharges": ..., "stock": ..., "distribution": ...,
        "loyalty": ...}} as L{recharges}, L{stock}, L{distribution} and
        L{loyalty} give them.
    """
    return {"recharges": recharges(tx, start, end), "stock": stock(tx, now, near_days),
            "distribution": distribution(tx, start, end), "loyalty": loyalty(tx, start, end)}


def activations_by_channel_result(tx, start: int, end: int) -> list[tuple[str, int, int]]:
    """Activations started in [start, end) counted per channel and result code:
    (channel, result code, attempts), sorted.  One range read on C{txn.started_at}'s
    index; a transaction still pending counts under the code it holds (151)."""
    q = select(txn.c.channel, txn.c.result_code, func.count()) \
        .where(and_(txn.c.kind == "activation", txn.c.started_at >= start, txn.c.started_at < end)) \
        .group_by(txn.c.channel, txn.c.result_code)
    return sorted((channel, int(code), int(n)) for channel, code, n in tx.execute(q).rows)


def dashboard(tx, start: int, end: int, runs_limit: int = 5) -> dict:
    """What the GUI's home page reads from the store in one read unit of work.

    @return: C{{"activations": ..., "runs": ...}}: L{activations_by_channel_result}
        of [start, end) and the C{runs_limit} newest housekeeping runs
        (L{core.housekeeping.runs.recent}).
    """
    return {"activations": activations_by_channel_result(tx, start, end),
            "runs": runs.recent(tx, limit=runs_limit)}
