"""Reports: recharges (per day, channel, voucher type, result), voucher stock (by state and
type, near expiry), distribution per partner and loyalty rewards; charts and CSV of each."""
from __future__ import annotations

import csv
import io

from admin import charts, web
from admin.web import FormError
from core.reports import day_label, gather
from core.timeutil import DAY_MS

DEFAULT_DAYS = 30

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
        days = [day_label(i) for i in range(start // DAY_MS, (end - 1) // DAY_MS + 1)]
        svg = {
            "day": charts.vbar([(k, per_day.get(k, 0)) for k in days],
                               title="Recharge attempts per day"),
            "channel": charts.hbar([(k, n) for k, n, _, _ in r["channel"]], title="Attempts per channel"),
            "type": charts.hbar([(k, n) for k, n, _, _ in r["type"]], title="Attempts per voucher type"),
            "result": charts.hbar([(k, n) for k, n, _, _ in r["result"]], title="Attempts per result",
                                  colours=[charts.OUTCOME_COLOURS[web.result_outcome(k)]
                                           for k, _, _, _ in r["result"]]),
            "stock": charts.hbar(d["stock"]["by_state"], title="Voucher stock by state"),
            "distribution": charts.hbar([(p, v) for p, _, v, _ in d["distribution"]],
                                        title="Vouchers exported per partner"),
        }
        q = "from=%s&to=%s" % (day_label(start // DAY_MS), day_label(end // DAY_MS - 1))
        return ctx.render(request, "reports.html", session, title="Reports", d=d, svg=svg, q=q,
                          start=day_label(start // DAY_MS), end=day_label(end // DAY_MS - 1),
                          near=near)

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
                          % (name.encode(), day_label(start // DAY_MS).encode()))
        return out.getvalue().encode("utf-8")
