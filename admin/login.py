"""Login and logout (the home page is L{admin.dashboard})."""
from __future__ import annotations

from admin import web
from core import lockout
from core.passwords import PasswordPoolBusy


def register(app, ctx) -> None:
    """Add the login and logout routes.

    The login form takes no server-side session: its CSRF token is signed
    and bound to a nonce cookie (L{auth.LoginForms}); a session is created
    only by a successful login, with a new id (no session fixation).
    """
    s = ctx.settings

    @app.route("/login", methods=["GET"])
    async def login_form(request):
        session = await ctx.sessions.from_request(request)
        if session is not None and session.user_id is not None:
            return web.redirect(request, "/")
        form = ctx.sessions.anonymous(request, ctx.login_forms)
        return ctx.render(request, "login.html", form, title="Log in")

    @app.route("/login", methods=["POST"])
    async def login(request):
        nonce = ctx.sessions.cookie(request)
        try:
            name = web.arg(request, "username")[:64]
            password = web.arg(request, "password")[:1024]
            token = web.arg(request, "csrf")
        except web.FormError as e:
            return ctx.error(request, None, 400, str(e))
        if not ctx.login_forms.check(nonce, token):
            session = ctx.sessions.anonymous(request, ctx.login_forms)
            session.flash("Your login form had expired; please try again.", "error")
            return ctx.render(request, "login.html", session, status=403, title="Log in",
                              username=name)
        now = ctx.now()
        origin = web.client_origin(request)
        if not ctx.login_allowed(name, origin):
            return _failed(request, name, 429)
        lockout_ms = s.lockout_seconds * 1000
        claim = (await ctx.write(_claim, name, now, s.lockout_threshold, lockout_ms)
                 if name else lockout.LoginClaim(None, "unknown"))
        try:
            ok = await ctx.check_password(claim, password)
        except PasswordPoolBusy:
            ok = None
        user = await ctx.write(_settle, name, claim, ok, now, origin,
                               s.lockout_threshold, lockout_ms)
        if user is None:
            if ok is None:
                return _failed(request, name, 503)
            ctx.login_failed(name, origin)
            return _failed(request, name, 401)
        fresh = ctx.sessions.new(user)
        await ctx.sessions.save(fresh)
        ctx.sessions.set_cookie(request, fresh)
        return web.redirect(request, "/")

    def _failed(request, name, status):
        session = ctx.sessions.anonymous(request, ctx.login_forms)
        session.flash("Login failed: wrong user name or password, or the account is "
                      "locked or disabled. Repeated failures lock an account for a while.",
                      "error")
        return ctx.render(request, "login.html", session, status=status, title="Log in",
                          username=name)

    @app.route("/logout", methods=["POST"])
    @ctx.page(None)
    async def logout(request, session):
        await ctx.write(_audit_logout, session.name, ctx.now(), web.client_origin(request))
        await ctx.sessions.drop(session.id)
        ctx.sessions.clear_cookie(request)
        return web.redirect(request, "/login")


def _claim(tx, name, now, threshold, lockout_ms):
    return lockout.claim(tx, name, now=now, threshold=threshold, lockout_ms=lockout_ms)


def _settle(tx, name, claim, ok, now, origin, threshold, lockout_ms):
    return lockout.settle(tx, name, claim, ok, now=now, origin=origin, threshold=threshold,
                          lockout_ms=lockout_ms)


def _audit_logout(tx, name, now, origin):
    from core.audit import audit
    audit(tx, at=now, actor=name, action="logout", origin=origin)
