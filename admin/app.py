"""Wiring of the administrator GUI: context, page guard, Klein app, Site and listener service.

Every page module provides C{register(app, ctx)} adding its routes to the
Klein app with L{AdminContext.page} as decorator, which checks the
session, the role and (for POST) the CSRF token before the handler runs.
Store reads run on the reactor's thread pool in read transactions; writes
are units of work on the node's L{core.units.UnitRunner}.  The context is
built from explicit parts (by L{gateway.adapters}): the GUI never sees the node.
"""
from __future__ import annotations

import functools
import importlib
import os

from jinja2 import Environment, PackageLoader, select_autoescape
from klein import Klein
from twisted.application import service
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.web import pages, server, static

from admin import auth, web
from admin.web import FormError
from core.throttle import FailureThrottle
from core.timeutil import fmt_day, fmt_ms, now_ms
from core.tls import listener_service
from protocols.common.http_log import access_log_line   # never logs a query string

PAGES = ("admin.login", "admin.dashboard", "admin.generation", "admin.distribution", "admin.housekeeping",
         "admin.care", "admin.fraud", "admin.reports", "admin.users", "admin.audit")
#: Failed logins from one address per minute before its logins are refused (429)
#: until the minute ends; accounts are protected by the lockout (core.lockout).
LOGIN_FAILURES_PER_ADDRESS = 30
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


class AdminContext:
    """What the pages share: the core's parts they use, settings, sessions and templates."""

    log = Logger()

    def __init__(self, settings, reactor, *, store, runner, cipher, activation, numbering,
                 voucher_types, generation, loyalty_plans=(), clock=None, housekeeper=None,
                 passwords=None, fraud_settings=None, stock_figures=None, billing_peers=None,
                 counters=None, session_backend=None, login_secret=None):
        """
        @param settings: the L{admin.config.AdminSettings}.
        @param reactor: reactor for the thread pool (and time, without C{clock}).
        @param store: the L{core.db.Store} the pages read in read transactions.
        @param runner: the L{core.units.UnitRunner} their writes run on.
        @param cipher: the L{core.crypto.VoucherCipher} (generation, exports, reveals).
        @param activation: provides L{core.interfaces.IActivationService} (care's
            activation on a subscriber's behalf).
        @param numbering: provides L{core.interfaces.INumberingPlan}.
        @param voucher_types: voucher type code -> configured voucher type.
        @param generation: the C{[generation]} settings.
        @param loyalty_plans: the configured loyalty plans, in file order.
        @param clock: the C{IReactorTime} of timestamps (default: C{reactor}).
        @param housekeeper: a callable without arguments returning the
            L{core.housekeeping.housekeeper.Housekeeper} of on-demand runs
            (called once, on first use), or None when housekeeping is not built in.
        @param passwords: the L{core.interfaces.IPasswordChecker} of logins
            (default: a L{core.passwords.PasswordPool} of its own).
        @param fraud_settings: the C{[fraud]} settings (the fraud page's limits).
        @param stock_figures: the cached store figures the metrics read (an
            object with C{fresh()}, a Deferred firing once C{values} -- a
            L{core.gauges.figures} reading, or None -- is fresh enough, and
            C{clock} and C{read_at}, the reading's time), shown on the home
            page; None reads the stock on every view.
        @param billing_peers: a callable without arguments returning
            (connector name, [(peer, 1 if usable else 0)]), the billing
            connector's peers as the metrics report them; None: not shown.
        @param counters: the L{core.interfaces.ICounterStore} the nodes share
            (failed logins per address add up across nodes), or None.
        @param session_backend: the L{core.interfaces.ISessionStore} of
            sessions (default: this node's memory).
        @param login_secret: the key of login-form tokens, the same on every
            node of a cluster (default: random, this node's until it stops).
        """
        self.settings = settings
        self.reactor = reactor
        self.store = store
        self.runner = runner
        self.cipher = cipher
        self.activation = activation
        self.numbering = numbering
        self.voucher_types = voucher_types
        self.generation = generation
        self.loyalty_plans = loyalty_plans
        self.clock = clock if clock is not None else reactor
        self.make_housekeeper = housekeeper
        self.housekeeper = None
        self.sessions = auth.SessionStore(reactor, lifetime=settings.session_lifetime_seconds,
                                          idle=settings.idle_timeout_seconds, tls=settings.tls,
                                          backend=session_backend)
        self.login_forms = auth.LoginForms(reactor, max_age=settings.idle_timeout_seconds,
                                           secret=login_secret)
        self.env = Environment(loader=PackageLoader("admin", "templates"),
                               autoescape=select_autoescape(["html", "svg"]),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(ms=fmt_ms, day=fmt_day, money=web.money, outcome=web.result_outcome,
                                percent=web.percent)
        self.env.globals.update(nav=auth.NAV, allowed=auth.allowed)
        self.jobs = None   # the generation job registry, set by admin.generation
        if passwords is None:
            from core.passwords import PasswordPool
            passwords = PasswordPool(reactor)
        self.passwords = passwords               # an IPasswordChecker
        self.fraud_settings = fraud_settings
        self.stock_figures = stock_figures
        self.billing_peers = billing_peers
        self.login_throttle = FailureThrottle(reactor, per_account=LOGIN_FAILURES_PER_ADDRESS,
                                              per_address=LOGIN_FAILURES_PER_ADDRESS,
                                              shared=counters, scope="admin-login")

    # -- store -------------------------------------------------------------------
    def keeper(self):
        """The housekeeper of on-demand runs (built on first use), or None without one."""
        if self.housekeeper is None and self.make_housekeeper is not None:
            self.housekeeper = self.make_housekeeper()
        return self.housekeeper

    def read(self, fn, *args):
        """Run C{fn(tx, *args)} in a read transaction off the reactor; a Deferred of its result."""
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                         self.store.run_sync, fn, *args, read_only=True)

    def write(self, fn, *args):
        """Run the unit of work C{fn(tx, *args)}; a Deferred firing after its commit."""
        return self.runner.submit(fn, *args)

    def blocking(self, fn, *args, **kw):
        """Run the blocking call C{fn(*args, **kw)} on the thread pool."""
        return threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), fn, *args, **kw)

    # -- login ---------------------------------------------------------------------
    def check_password(self, claim, password: str):
        """Check C{password} for a L{core.lockout.LoginClaim} on the password pool.

        A locked user's password is not checked at all; an unknown user's is
        checked against a dummy hash, so that the answer takes as long.

        @return: a Deferred firing with True or False, or failing with
            L{core.passwords.PasswordPoolBusy}.
        """
        if claim.reason == "locked":
            return defer.succeed(False)
        stored = claim.user.password_hash if claim.user is not None else auth.DUMMY_HASH
        d = self.passwords.verify(stored, password)
        return d.addCallback(lambda ok: ok and claim.user is not None)

    def login_allowed(self, name: str, origin: str) -> bool:
        """False when C{origin} failed too many logins in the current window."""
        return self.login_throttle.allowed(None, origin)

    def login_failed(self, name: str, origin: str) -> None:
        """Count a failed login from C{origin}; log when it becomes throttled."""
        if self.login_throttle.failed(None, origin):
            self.log.warn("admin logins from {origin} throttled after {n} failures",
                          origin=origin, n=LOGIN_FAILURES_PER_ADDRESS)

    def now(self) -> int:
        """Epoch ms from the node's clock."""
        return now_ms(self.clock)

    # -- rendering -----------------------------------------------------------------
    def render(self, request, template: str, session=None, *, status: int = 200, **values) -> bytes:
        """Render C{template} with the session's user, CSRF token and messages."""
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        web.secure_headers(request)
        values.setdefault("title", "")
        body = self.env.get_template(template).render(
            session=session, user=session if session and session.user_id else None,
            csrf=session.csrf if session else "", flashes=session.take_flashes() if session else [],
            **values)
        return body.encode("utf-8")

    def error(self, request, session, status: int, message: str) -> bytes:
        return self.render(request, "error.html", session, status=status, message=message,
                           title="Error %d" % status)

    # -- the guard -----------------------------------------------------------------
    def page(self, permission: str | None):
        """Decorate a handler C{async fn(request, session, **kw)}.

        Anonymous users are sent to the login page; a role without
        C{permission} gets 403; a POST without the session's CSRF token
        gets 403; a L{FormError} raised by the handler re-renders as 400.
        """
        def deco(fn):
            @functools.wraps(fn)
            async def wrapper(request, **kw):
                session = await self.sessions.from_request(request)
                if session is None or session.user_id is None:
                    if request.method == b"POST":
                        return self.error(request, None, 403, "Your session has ended; log in again.")
                    return web.redirect(request, "/login")
                user = await self.read(auth.user_by_id, session.user_id)
                if user is None or not user.enabled:
                    await self.sessions.drop(session.id)
                    return web.redirect(request, "/login")
                mark = session.mark()
                session.role = user.role
                try:
                    return await self._guarded(fn, permission, request, session, kw)
                finally:
                    # messages queued or shown, a new role: the next request may reach another node
                    await self.sessions.save_if_changed(session, mark)
            # Klein names a route's endpoint after its function: keep them unique
            wrapper.__name__ = "%s.%s" % (fn.__module__, fn.__name__)
            return wrapper
        return deco

    async def _guarded(self, fn, permission, request, session, kw):
        """Run the page C{fn} for C{session}: role and CSRF checks, form errors as 400."""
        if permission is not None and not session.can(permission):
            return self.error(request, session, 403,
                              "Your role (%s) may not use this page." % session.role)
        try:
            if request.method == b"POST" and not auth.csrf_ok(session, web.arg(request, "csrf")):
                return self.error(request, session, 403, "The form's security token is "
                                  "missing or stale; reload the page.")
            return await fn(request, session, **kw)
        except FormError as e:
            return self.error(request, session, 400, str(e))


def build_app(ctx: AdminContext) -> Klein:
    """The Klein app with every page module's routes."""
    app = Klein()
    app.url_map.converters["int"] = web.StoreIdConverter

    @app.route("/static/", branch=True)
    def statics(request):
        web.secure_headers(request)
        request.setHeader(b"cache-control", b"max-age=3600")
        files = static.File(STATIC)
        files.directoryListing = lambda: pages.notFound()
        return files

    @app.route("/favicon.ico", methods=["GET"])
    def favicon(request):
        """The icon browsers ask for on their own (no login: it tells nothing)."""
        web.secure_headers(request)
        request.setHeader(b"cache-control", b"max-age=86400")
        request.setHeader(b"content-type", b"image/x-icon")
        with open(os.path.join(STATIC, "favicon.ico"), "rb") as f:
            return f.read()

    @app.handle_errors
    def unexpected(request, failure):
        from werkzeug.exceptions import MethodNotAllowed, NotFound
        if failure.check(NotFound):
            return ctx.sessions.from_request(request).addCallback(
                lambda session: ctx.error(request, session, 404, "No such page."))
        if failure.check(MethodNotAllowed):
            return ctx.sessions.from_request(request).addCallback(
                lambda session: ctx.error(request, session, 405, "Method not allowed."))
        ctx.log.failure("admin page failed: {path}", failure,
                        path=request.path.decode("ascii", "replace"))
        return ctx.error(request, None, 500, "Unexpected error; it was logged.")

    for name in PAGES:
        importlib.import_module(name).register(app, ctx)
    return app


def make_site(ctx: AdminContext) -> server.Site:
    """The twisted.web Site of the GUI (its own listener) over the pages' context."""
    app = build_app(ctx)
    site = server.Site(app.resource(), logFormatter=access_log_line)
    site.displayTracebacks = False
    site.admin_context = ctx
    return site


def make_service(ctx: AdminContext) -> service.Service:
    """The GUI listener (C{ctx.settings}' endpoint) as a service named C{admin}."""
    return listener_service(ctx.reactor, ctx.settings.listen, ctx.settings, make_site(ctx),
                            "admin")
