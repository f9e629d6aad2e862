"""The audit log page: who did what, when, from where, with filters."""
from __future__ import annotations

from urllib.parse import urlencode

from admin import web
from core.audit import PAGE, entries


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
