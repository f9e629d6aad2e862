"""Customer care: transactions by MSISDN/serial/dates, activation on a subscriber's behalf,
barred status, and unbar by a supervisor (the administrator role)."""
from __future__ import annotations

from admin import web
from admin.web import FormError
from core import fraud
from core.audit import audit
from core.requests import ActivationRequest, Channel
from core.queries import LIMIT, result_text, transactions  # noqa: F401 (used by admin pages)
from core.voucher_admin import summary as voucher_summary


def bar_status(tx, msisdn: str, now: int) -> dict | None:
    """The fraud counters of C{msisdn}, or None when it has none.

    @return: its counter everywhere (failures, window start, bar end or None
        when not barred; zeros and None without such a counter), and in
        C{scoped} its counters on single sources of self-asserted channels
        (each with its C{scope}, C{"<channel>:<source>"}).
    """
    everywhere, scoped = None, []
    for r in fraud.list_counters(tx, fraud.msisdn_subject(msisdn), 50):
        number, scope = fraud.split_subject(r["subject"])
        if number != msisdn:
            continue
        entry = {"failures": r["failures"], "window_start": r["window_start"],
                 "barred_until": r["barred_until"] if r["barred_until"] > now else None,
                 "last_failure_at": r["last_failure_at"]}
        if scope is None:
            everywhere = entry
        else:
            scoped.append(dict(entry, scope=scope))
    if everywhere is None and not scoped:
        return None
    out = everywhere or {"failures": 0, "window_start": None, "barred_until": None,
                         "last_failure_at": None}
    out["scoped"] = scoped
    return out


def _unbar(tx, msisdn, actor, origin, now):
    before = bar_status(tx, msisdn, now)
    fraud.reset_msisdn(tx, msisdn)      # its bar everywhere and on single sources
    audit(tx, at=now, actor=actor, action="fraud.unbar", target=msisdn, origin=origin,
          detail={"failures": before["failures"] if before else 0,
                  "barred_until": before["barred_until"] if before else None})


def _audit(tx, now, actor, action, target, origin, detail):
    audit(tx, at=now, actor=actor, action=action, target=target, origin=origin, detail=detail)


def register(app, ctx) -> None:
    rules = ctx.numbering

    def msisdn_of(request, name="msisdn", required=False):
        raw = web.arg(request, name)
        if not raw:
            if required:
                raise FormError("the subscriber's MSISDN is required")
            return None
        m = rules.normalise(raw)
        if m is None:
            raise FormError("%r is not a valid MSISDN" % raw)
        return m

    @app.route("/care", methods=["GET"])
    @ctx.page("care")
    async def page(request, session):
        form = {k: web.arg(request, k) for k in ("msisdn", "serial", "from", "to")}
        m = msisdn_of(request)
        serial = web.opt_int(request, "serial", label="serial")
        start, end = web.day_range(request)
        searched = m is not None or serial is not None or start is not None or end is not None
        rows = bar = v = None
        if searched:
            rows = await ctx.read(lambda tx: transactions(tx, msisdn=m, serial=serial,
                                                          start=start, end=end))
        loyalty = None
        if m is not None:
            bar = await ctx.read(bar_status, m, ctx.now())
            plans = ctx.loyalty_plans
            if plans:
                from core.loyalty.status import subscriber_status
                loyalty = await ctx.read(subscriber_status, plans, m, ctx.now())
        if serial is not None:
            v = await ctx.read(voucher_summary, serial)
        return ctx.render(request, "care.html", session, title="Customer care", form=form,
                          msisdn=m, rows=rows, bar=bar, v=v, searched=searched, limit=LIMIT,
                          loyalty=loyalty)

    @app.route("/care/activate", methods=["POST"])
    @ctx.page("care")
    async def activate(request, session):
        raw_msisdn = web.arg(request, "msisdn")
        hrn = web.arg(request, "hrn")
        if not raw_msisdn or not hrn:
            raise FormError("the subscriber's MSISDN and the voucher's HRN are both required")
        origin = web.client_origin(request)
        req = ActivationRequest(msisdn=raw_msisdn, hrn=hrn, channel=Channel.CUSTOMER_CARE,
                                operator_user=session.name, source=origin)
        res = await ctx.activation.activate(req)
        await ctx.write(_audit, ctx.now(), session.name, "care.activate",
                        res.msisdn or raw_msisdn[:20], origin,
                        {"result": int(res.code), "txn": res.txn_id, "serial": res.serial})
        return ctx.render(request, "care_result.html", session, title="Activation result",
                          res=res, code=int(res.code), name=res.name, text=res.text,
                          status=200)

    @app.route("/care/unbar", methods=["POST"])
    @ctx.page("unbar")
    async def unbar(request, session):
        m = msisdn_of(request, required=True)
        await ctx.write(_unbar, m, session.name, web.client_origin(request), ctx.now())
        session.flash("%s unbarred: its failure count was cleared." % m)
        return web.redirect(request, "/care?msisdn=%s" % m)
