"""Housekeeping: find vouchers, their detail and history, audited HRN reveal, and
state changes (block, unblock, make available, extend expiry) on one voucher or a
range, always previewed with a count before they are confirmed (DESIGN §8)."""
from __future__ import annotations

import datetime as dt

from twisted.logger import Logger

from admin import web
from admin.web import FormError
from core.audit import audit
from core.housekeeping import runs
from core.states import BLOCK_REASONS
from core.timeutil import end_of_day_ms
from core.voucher_admin import CHANGES, LIMIT, apply_change, preview_change, search
from core.vouchers import Selection, SelectionError, get_voucher

log = Logger()

#: action -> (label, source states it changes)
ACTIONS = {
    "block": ("Block", CHANGES["block"]),
    "unblock": ("Unblock", CHANGES["unblock"]),
    "available": ("Make available", CHANGES["available"]),
    "extend": ("Extend expiry", CHANGES["extend"]),
}
STATES = ("generated", "available", "reserved", "used", "blocked", "expired")


def recent_runs(tx, limit: int = 20) -> list:
    """The newest housekeeping runs (L{runs.Run}), for the page."""
    return runs.recent(tx, limit=limit)


def _reveal(tx, serial, actor, origin, now):
    v = get_voucher(tx, serial)
    if v is not None:
        audit(tx, at=now, actor=actor, action="voucher.reveal", target=str(serial), origin=origin)
    return v


def _selection(request) -> Selection:
    """One serial, a range or a batch from the change form."""
    rng = web.serial_range(web.arg(request, "range"))
    batch_id = web.opt_int(request, "batch", label="batch")
    if (rng is None) == (batch_id is None):
        raise FormError("give either a serial or serial range, or a batch")
    try:
        return Selection.of_batch(batch_id) if batch_id is not None else Selection.range(*rng)
    except SelectionError as e:
        raise FormError(str(e))


def _change_args(request, now_ms: int):
    action = web.arg(request, "action")
    if action not in ACTIONS:
        raise FormError("choose an action")
    reason, new_expiry = None, None
    if action == "block":
        kind = web.arg(request, "reason")
        if kind not in BLOCK_REASONS:
            raise FormError("blocking needs a reason: %s" % ", ".join(BLOCK_REASONS))
        note = web.arg(request, "note")
        reason = ("%s: %s" % (kind, note) if note else kind)[:128]
    else:
        reason = web.arg(request, "note")[:128] or None
    if action == "extend":
        day = web.opt_day(request, "expires", "new expiry")
        if day is None:
            raise FormError("extending needs the new expiry date")
        if end_of_day_ms(day) <= now_ms:
            raise FormError("the new expiry date %s is in the past" % day.isoformat())
        new_expiry = end_of_day_ms(day)
    return action, reason, new_expiry


def register(app, ctx) -> None:
    rules = ctx.numbering

    @app.route("/housekeeping/run", methods=["POST"])
    @ctx.page("housekeeping")
    async def run_job(request, session):
        keeper = ctx.keeper()
        name = web.arg(request, "job")
        if keeper is None or name not in keeper.jobs:
            raise FormError("choose a housekeeping job")
        dry = web.arg(request, "dry_run") == "1"
        await ctx.write(_audit_run, ctx.now(), session.name, name, dry, web.client_origin(request))
        d = keeper.run(name, dry_run=dry)
        d.addErrback(lambda f: log.failure("housekeeping job {job} failed", f, job=name))
        session.flash("Housekeeping job %s started%s; its run appears below when it ends."
                      % (name, " (dry run: counts only)" if dry else ""))
        return web.redirect(request, "/vouchers")

    @app.route("/vouchers", methods=["GET"])
    @ctx.page("housekeeping")
    async def find(request, session):
        form = {k: web.arg(request, k) for k in ("serial", "range", "batch", "state", "msisdn")}
        crit = {"serial": web.opt_int(request, "serial", label="serial"),
                "rng": web.serial_range(form["range"]),
                "batch_id": web.opt_int(request, "batch", label="batch"),
                "state": form["state"] if form["state"] in STATES else None,
                "msisdn": None}
        if form["msisdn"]:
            crit["msisdn"] = rules.normalise(form["msisdn"])
            if crit["msisdn"] is None:
                raise FormError("%r is not a valid MSISDN" % form["msisdn"])
        rows, more = [], False
        if any(v is not None for v in crit.values()):
            found = await ctx.read(lambda tx: search(tx, **crit))
            rows, more = found.vouchers, found.more
        runs = await ctx.read(recent_runs)
        keeper = ctx.keeper()
        jobs = [(j.name, j.title) for j in keeper.jobs.values()] if keeper is not None else []
        today = dt.date.fromtimestamp(ctx.now() / 1000)
        return ctx.render(request, "vouchers.html", session, title="Housekeeping", form=form,
                          rows=rows, more=more, searched=any(v is not None for v in crit.values()),
                          states=STATES, actions=ACTIONS, reasons=BLOCK_REASONS, runs=runs, jobs=jobs,
                          limit=LIMIT, min_day=(today + dt.timedelta(days=1)).isoformat())

    @app.route("/vouchers/<int:serial>", methods=["GET"])
    @ctx.page("housekeeping")
    async def detail(request, session, serial):
        v = await ctx.read(get_voucher, serial)
        if v is None:
            return ctx.error(request, session, 404, "No voucher with serial %d." % serial)
        return _detail(request, session, v, None)

    @app.route("/vouchers/<int:serial>/reveal", methods=["POST"])
    @ctx.page("reveal")
    async def reveal(request, session, serial):
        v = await ctx.write(_reveal, serial, session.name, web.client_origin(request), ctx.now())
        if v is None:
            return ctx.error(request, session, 404, "No voucher with serial %d." % serial)
        hrn = ctx.cipher.decrypt(v["serial"], v["key_id"], bytes(v["hrn_ct"]))
        return _detail(request, session, v, hrn)

    def _detail(request, session, v, hrn):
        today = dt.date.fromtimestamp(ctx.now() / 1000)
        return ctx.render(request, "voucher.html", session, title="Voucher %d" % v["serial"], v=v,
                          hrn=hrn, actions=ACTIONS, reasons=BLOCK_REASONS,
                          min_day=(today + dt.timedelta(days=1)).isoformat())

    @app.route("/vouchers/change/preview", methods=["POST"])
    @ctx.page("housekeeping")
    async def change_preview(request, session):
        sel = _selection(request)
        action, reason, new_expiry = _change_args(request, ctx.now())
        pv = await ctx.read(preview_change, sel, action, ctx.now())
        form = {k: web.arg(request, k) for k in ("range", "batch", "action", "reason", "note", "expires")}
        return ctx.render(request, "change_preview.html", session, title="Confirm the change",
                          sel=sel, action=action, label=ACTIONS[action][0], reason=reason,
                          new_expiry=new_expiry, pv=pv, form=form)

    @app.route("/vouchers/change/apply", methods=["POST"])
    @ctx.page("housekeeping")
    async def change_apply(request, session):
        sel = _selection(request)
        action, reason, new_expiry = _change_args(request, ctx.now())
        res = await ctx.write(_apply, sel, action, reason, new_expiry, session.name,
                              web.client_origin(request), ctx.now())
        expected = web.opt_int(request, "expected")
        note = ""
        if expected is not None and expected != res.changed:
            note = " (the preview said %d: vouchers changed in between)" % expected
        session.flash("%s, %s: %d changed, %d skipped%s." % (ACTIONS[action][0], sel.describe(),
                                                             res.changed, res.skipped, note),
                      "ok" if not note else "warn")
        if sel.batch_id is not None:
            return web.redirect(request, "/vouchers?batch=%d" % sel.batch_id)
        if sel.first == sel.last:
            return web.redirect(request, "/vouchers/%d" % sel.first)
        return web.redirect(request, "/vouchers?range=%d-%d" % (sel.first, sel.last))


def _audit_run(tx, now, actor, job, dry, origin):
    audit(tx, at=now, actor=actor, action="housekeeping.run", target=job, origin=origin,
          detail={"dry_run": dry})


def _apply(tx, sel, action, reason, new_expiry, actor, origin, now):
    return apply_change(tx, sel, action, reason=reason, new_expiry=new_expiry, actor=actor,
                        origin=origin, now=now)
