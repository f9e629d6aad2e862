"""The audit log page: who did what, when, from where, with filters."""
from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import and_, select, true

from admin import web
from core.schema import audit_log

PAGE = 100


def entries(tx, *, actor=None, action=None, target=None, start=None, end=None, before=None,
            limit=PAGE) -> list[dict]:
    """Audit entries matching every filter, newest first."""
    cond = []
    if actor:
        cond.append(audit_log.c.actor == actor)
    if action:
        cond.append(audit_log.c.action.startswith(action, autoescape=True))
    if target:
        cond.append(audit_log.c.target.contains(target, autoescape=True))
    if start is not None:
        cond.append(audit_log.c.at >= start)
    if end is not None:
        cond.append(audit_log.c.at < end)
    if before is not None:
        cond.append(audit_log.c.id < before)
    q = select(audit_log).where(and_(true(), *cond)).order_by(audit_log.c.id.desc()).limit(limit)
    return [dict(zip(audit_log.c.keys(), r)) for r in tx.execute(q).rows]


def register(app, ctx) -> None:

    @app.route("/audit", methods=["GET"])
    @ctx.page("audit")
    async def page(request, session):
        form = {k: web.arg(request, k) for k in ("actor", "action", "target", "from", "to")}
        start, end = web.day_range(request)
        before = web.opt_int(request, "before")
        rows = await ctx.read(lambda tx: entries(
            tx, actor=form["actor"] or None, action=form["action"] or None,
            target=form["target"] or None, start=start, end=end, before=before))
        return ctx.render(request, "audit.html", session, title="Audit log", rows=rows, form=form,
                          query=urlencode({k: v for k, v in form.items() if v}),
                          next_before=rows[-1]["id"] if len(rows) == PAGE else None)
