"""Distribution: filter generated vouchers, preview, export to a partner, history, partners."""
from __future__ import annotations

from admin import web
from admin.web import FormError
from core import export as ex
from core.audit import audit


def _filter(request) -> ex.ExportFilter | None:
    """The export filter of the form, or None when the form names no selection yet."""
    code = web.arg(request, "type") or None
    batch_id = web.opt_int(request, "batch", label="batch")
    rng = web.serial_range(web.arg(request, "range"))
    count = web.opt_int(request, "count", minimum=1, label="count")
    if code is None and batch_id is None and rng is None:
        return None
    try:
        return ex.ExportFilter(code, batch_id, *(rng or (None, None)), count=count)
    except ex.ExportError as e:
        raise FormError(str(e))


def register(app, ctx) -> None:
    s = ctx.settings

    @app.route("/distribution", methods=["GET"])
    @ctx.page("distribution")
    async def page(request, session):
        flt = _filter(request)
        if flt is not None and flt.type_code and flt.type_code not in ctx.voucher_types:
            raise FormError("unknown voucher type %r" % flt.type_code)
        pv = await ctx.read(ex.preview, flt, ctx.now()) if flt is not None else None
        partners = await ctx.read(ex.list_partners)
        exports = await ctx.read(ex.history, 20)
        form = {k: web.arg(request, k) for k in ("type", "batch", "range", "count")}
        return ctx.render(request, "distribution.html", session, title="Distribution",
                          types=list(ctx.voucher_types.values()), form=form, flt=flt, preview=pv,
                          partners=partners, exports=exports, target_state=s.export_state,
                          max_count=s.max_export_count)

    @app.route("/distribution/export", methods=["POST"])
    @ctx.page("distribution")
    async def do_export(request, session):
        flt = _filter(request)
        if flt is None:
            raise FormError("choose a voucher type, a batch or a serial range")
        partner_id = web.req_int(request, "partner", label="partner")
        try:
            res = await ctx.write(_export_unit, ctx.cipher, flt, partner_id, session.name,
                                  web.client_origin(request), ctx.now(), s.export_state,
                                  s.export_dir, s.max_export_count)
        except ex.ExportError as e:
            return ctx.error(request, session, 409, "Nothing was exported: %s" % e)
        session.flash("Export %d: %d vouchers for %s are now %s. Download the file below."
                      % (res.export_id, res.count, res.partner, s.export_state))
        return web.redirect(request, "/distribution/exports/%d" % res.export_id)

    @app.route("/distribution/exports/<int:export_id>", methods=["GET"])
    @ctx.page("distribution")
    async def export_page(request, session, export_id):
        rows = await ctx.read(_one_export, export_id)
        if not rows:
            return ctx.error(request, session, 404, "No export %d." % export_id)
        return ctx.render(request, "export.html", session, title="Export %d" % export_id,
                          e=rows[0], has_file=ex.find_file(s.export_dir, export_id) is not None)

    @app.route("/distribution/exports/<int:export_id>/file", methods=["GET"])
    @ctx.page("distribution")
    async def export_file(request, session, export_id):
        path = ex.find_file(s.export_dir, export_id)
        if path is None:
            return ctx.error(request, session, 404, "The file of export %d is not kept on this node."
                             % export_id)
        data = await ctx.blocking(_read, path)
        await ctx.write(_audit, ctx.now(), session.name, "export.download", "export %d" % export_id,
                        web.client_origin(request), None)
        web.secure_headers(request)
        request.setHeader(b"content-type", b"application/pkcs7-mime; smime-type=enveloped-data")
        request.setHeader(b"content-disposition",
                          b'attachment; filename="' + path.rsplit("/", 1)[-1].encode() + b'"')
        return data

    @app.route("/partners", methods=["GET"])
    @ctx.page("distribution")
    async def partners(request, session):
        rows = await ctx.read(ex.list_partners)
        return ctx.render(request, "partners.html", session, title="Partners", partners=rows,
                          now=ctx.now())

    @app.route("/partners", methods=["POST"])
    @ctx.page("distribution")
    async def save(request, session):
        name = web.arg(request, "name")
        data = web.raw_arg(request, "certificate_file") or \
            web.arg(request, "certificate").encode("utf-8")
        if not data:
            raise FormError("paste the partner's X.509 certificate (PEM) or upload it")
        try:
            _, created = await ctx.write(_save_partner, name, data, session.name,
                                         web.client_origin(request), ctx.now())
        except ex.ExportError as e:
            raise FormError(str(e))
        session.flash("Partner %s %s." % (name, "added" if created else "certificate replaced"))
        return web.redirect(request, "/partners")


def _export_unit(tx, cipher, flt, partner_id, actor, origin, now, state, export_dir, max_count):
    return ex.export_vouchers(tx, cipher, flt, partner_id=partner_id, actor=actor, origin=origin,
                              now=now, target_state=state, export_dir=export_dir,
                              max_count=max_count)


def _save_partner(tx, name, data, actor, origin, now):
    return ex.save_partner(tx, name, data, actor=actor, origin=origin, now=now)


def _one_export(tx, export_id):
    return ex.history(tx, 1, export_id)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _audit(tx, now, actor, action, target, origin, detail):
    audit(tx, at=now, actor=actor, action=action, target=target, origin=origin, detail=detail)
