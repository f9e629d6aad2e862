"""Reports: recharges (per day, channel, voucher type, result), voucher stock (by state and
type, near expiry), distribution per partner and loyalty rewards; charts and CSV of each."""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict

from sqlalchemy import and_, func, select

from admin import charts, web
from admin.web import FormError
from core.results import ResultCode
from core.schema import batch, export, partner, txn, voucher
from core.timeutil import DAY_MS, fmt_ms

DEFAULT_DAYS = 30


def _day(ms_day: int) -> str:
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
        keys = {"day": _day(int(d)), "channel": channel, "type": code or "-",
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


#: CSV downloads: name -> (header, function(data) -> rows)
CSV = {
    "recharges-day": (("day", "attempts", "successes", "credited_minor"), lambda d: d["recharges"]["day"]),
    "recharges-channel": (("channel", "attempts", "successes", "credited_minor"),
                          lambda d: d["recharges"]["channel"]),
    "recharges-type": (("type", "attempts", "successes", "credited_minor"),
                       lambda d: d["recharges"]["type"]),
    "recharges-result": (("result", "attempts", "successes", "credited_minor"),
                         lambda d: d["recharges"]["result"]),
    "stock": (("type", "state", "vouchers"), lambda d: d["stock"]["rows"]),
    "near-expiry": (("type", "state", "vouchers"), lambda d: d["stock"]["near"]),
    "distribution": (("partner", "exports", "vouchers", "last_export"), lambda d: d["distribution"]),
    "loyalty": (("plan", "state", "rewards", "amount_minor", "currency"), lambda d: d["loyalty"]),
}


def gather(tx, start, end, now, near_days) -> dict:
    return {"recharges": recharges(tx, start, end), "stock": stock(tx, now, near_days),
            "distribution": distribution(tx, start, end), "loyalty": loyalty(tx, start, end)}


def register(app, ctx) -> None:

    def period(request):
        start, end = web.day_range(request)
        today = ctx.now() // DAY_MS * DAY_MS
        end = end if end is not None else today + DAY_MS
        start = start if start is not None else end - DEFAULT_DAYS * DAY_MS
        if start >= end:
            raise FormError("the 'from' day is after the 'to' day")
        return start, end

    @app.route("/reports", methods=["GET"])
    @ctx.page("reports")
    async def page(request, session):
        start, end = period(request)
        near = ctx.settings.near_expiry_days
        d = await ctx.read(gather, start, end, ctx.now(), near)
        r = d["recharges"]
        per_day = {k: n for k, n, _, _ in r["day"]}
        days = [_day(i) for i in range(start // DAY_MS, (end - 1) // DAY_MS + 1)]
        svg = {
            "day": charts.vbar([(k, per_day.get(k, 0)) for k in days],
                               title="Recharge attempts per day"),
            "channel": charts.hbar([(k, n) for k, n, _, _ in r["channel"]], title="Attempts per channel"),
            "type": charts.hbar([(k, n) for k, n, _, _ in r["type"]], title="Attempts per voucher type"),
            "result": charts.hbar([(k, n) for k, n, _, _ in r["result"]], title="Attempts per result"),
            "stock": charts.hbar(d["stock"]["by_state"], title="Voucher stock by state"),
            "distribution": charts.hbar([(p, v) for p, _, v, _ in d["distribution"]],
                                        title="Vouchers exported per partner"),
        }
        q = "from=%s&to=%s" % (_day(start // DAY_MS), _day(end // DAY_MS - 1))
        return ctx.render(request, "reports.html", session, title="Reports", d=d, svg=svg, q=q,
                          start=_day(start // DAY_MS), end=_day(end // DAY_MS - 1), near=near)

    @app.route("/reports/<string:name>.csv", methods=["GET"])
    @ctx.page("reports")
    async def download(request, session, name):
        if name not in CSV:
            return ctx.error(request, session, 404, "No report %r." % name)
        start, end = period(request)
        d = await ctx.read(gather, start, end, ctx.now(), ctx.settings.near_expiry_days)
        header, rows = CSV[name]
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows(d))
        web.secure_headers(request)
        request.setHeader(b"content-type", b"text/csv; charset=utf-8")
        request.setHeader(b"content-disposition", b'attachment; filename="ivoms-%s-%s.csv"'
                          % (name.encode(), _day(start // DAY_MS).encode()))
        return out.getvalue().encode("utf-8")
