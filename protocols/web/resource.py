"""The subscriber recharge pages on twisted.web; L{build_resource} makes what /web mounts.

Routes (under the mount point, normally C{/web}):

  - C{GET /web/} the HTML form; C{POST /web/recharge} the recharge;
  - C{GET /web/wap/} the XHTML-MP form; C{POST /web/wap/recharge}.

A recharge POST is checked in this order: body size (413), CSRF token
(403), per-address rate (429), both fields present (400), per-MSISDN rate
(429); then one L{core.requests.ActivationRequest} goes to the core and the
result page carries the localised text with the status of
L{protocols.web.replies.RESULT_STATUS}.  The HRN is never echoed, logged or
put in a URL (the recharge is POST only: GET answers 405).
"""

from __future__ import annotations

import ipaddress

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import pages as twpages
from twisted.web import resource, server

from core.requests import ActivationRequest, Channel

from protocols.web import pages
from protocols.web.config import WebSettings
from protocols.web.csrf import CsrfGuard
from protocols.web.replies import REFUSALS, status_for
from protocols.web.ratelimit import RateLimiter
from protocols.web.texts import Texts

_ROUTES = {
    (): ("html", "form"), (b"",): ("html", "form"), (b"recharge",): ("html", "recharge"),
    (b"wap",): ("wap", "form"), (b"wap", b""): ("wap", "form"),
    (b"wap", b"recharge"): ("wap", "recharge"),
}


def _digits(msisdn: str) -> str:
    return "".join(ch for ch in msisdn if ch.isdigit())


class RechargePages(resource.Resource):
    """The form pages and the recharge action, HTML and WAP."""

    isLeaf = True
    log = Logger()

    def __init__(self, activation, settings: WebSettings, *, clock, normalise_msisdn=None):
        """
        @param activation: provides L{core.interfaces.IActivationService}.
        @param clock: an C{IReactorTime} for the rate limits.
        @param normalise_msisdn: C{str -> str | None}, the core's numbering
            plan, so that one subscriber's number in several spellings shares
            one rate limit; digits only when not given.
        """
        super().__init__()
        self.activation = activation
        self.settings = settings
        self.texts = Texts.from_settings(settings)
        self.csrf = CsrfGuard(settings.csrf_secret, secure=settings.cookie_secure)
        rl = settings.rate_limit
        self.by_address = RateLimiter(rl.per_address, rl.window_seconds, clock=clock,
                                      max_keys=rl.max_tracked)
        self.by_msisdn = RateLimiter(rl.per_msisdn, rl.window_seconds, clock=clock,
                                     max_keys=rl.max_tracked)
        self.normalise = normalise_msisdn or (lambda m: None)
        self.proxies = [ipaddress.ip_network(n, strict=False) for n in settings.trusted_proxies]

    # -- helpers ------------------------------------------------------------
    def _route(self, request):
        return _ROUTES.get(tuple(request.postpath))

    @staticmethod
    def _base(request) -> str:
        return "/" + "/".join(p.decode("ascii", "replace") for p in request.prepath)

    def _paths(self, request, flavour):
        base = self._base(request) + ("/wap" if flavour == "wap" else "")
        return base + "/", base + "/recharge"

    def client_address(self, request) -> str:
        """The client's IP: the TCP peer, or the last C{X-Forwarded-For}
        entry when the peer is a trusted proxy."""
        peer = getattr(request.getClientAddress(), "host", "") or ""
        if self.proxies:
            try:
                ip = ipaddress.ip_address(peer)
            except ValueError:
                return peer
            fwd = request.getHeader(b"x-forwarded-for")
            if fwd and any(ip in n for n in self.proxies):
                last = fwd.split(b",")[-1].strip().decode("ascii", "replace")
                try:
                    return str(ipaddress.ip_address(last))
                except ValueError:
                    return peer
        return peer

    def _arg(self, request, name: bytes, limit: int) -> str:
        raw = (request.args.get(name) or [b""])[0][:limit * 4]
        return raw.decode("utf-8", "replace").strip()[:limit]

    def _lang(self, request) -> str:
        asked = self._arg(request, b"lang", 8) or None
        return self.texts.pick(asked, (request.getHeader(b"accept-language") or b"")
                               .decode("latin-1")[:200])

    def _send(self, request, flavour, status, body, retry_after=None):
        request.setResponseCode(status)
        if flavour == "html":
            ctype = pages.HTML_TYPE
        else:
            accept = request.getHeader(b"accept") or b""
            ctype = (pages.WAP_TYPE if b"application/vnd.wap.xhtml+xml" in accept
                     else pages.XHTML_TYPE if b"application/xhtml+xml" in accept
                     else pages.HTML_TYPE)
        request.setHeader(b"content-type", ctype)
        request.setHeader(b"content-security-policy", pages.CSP)
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"referrer-policy", b"no-referrer")
        request.setHeader(b"cache-control", b"no-store")
        if retry_after:
            request.setHeader(b"retry-after", str(retry_after).encode())
        return body

    def _page(self, request, flavour, lang, status=200, **kw):
        home, action = self._paths(request, flavour)
        token = self.csrf.ensure_cookie(request)
        retry_after = kw.pop("retry_after", None)
        body = pages.page(flavour, self.texts, lang, csrf=self.csrf.field_for(token),
                          action=action, home=home, **kw)
        return self._send(request, flavour, status, body, retry_after)

    # -- GET: the form ------------------------------------------------------
    def render_GET(self, request):
        route = self._route(request)
        if route is None:
            return twpages.notFound().render(request)
        flavour, kind = route
        if kind == "recharge":
            request.setHeader(b"allow", b"POST")
            return self._page(request, flavour, self._lang(request), 405,
                              notice=self.texts.get("method", self._lang(request)), ok=False)
        return self._page(request, flavour, self._lang(request))

    # -- POST: the recharge -------------------------------------------------
    def render_POST(self, request):
        route = self._route(request)
        if route is None:
            return twpages.notFound().render(request)
        flavour, kind = route
        lang = self._lang(request)
        if kind != "recharge":
            request.setHeader(b"allow", b"GET")
            return self._page(request, flavour, lang, 405,
                              notice=self.texts.get("method", lang), ok=False)
        refusal = self._precheck(request)
        if refusal is not None:
            reason, wait = refusal
            return self._refuse(request, flavour, lang, reason, wait)
        address = self.client_address(request)
        ok, wait = self.by_address.allow(address)
        if not ok:
            return self._refuse(request, flavour, lang, "rate_limited", wait)
        msisdn = self._arg(request, b"msisdn", 32)
        hrn = self._arg(request, b"hrn", 64)
        if not msisdn or not hrn:
            return self._refuse(request, flavour, lang, "missing", None, msisdn=msisdn)
        ok, wait = self.by_msisdn.allow(self.normalise(msisdn) or _digits(msisdn) or msisdn)
        if not ok:
            return self._refuse(request, flavour, lang, "rate_limited", wait, msisdn=msisdn)
        req = ActivationRequest(msisdn=msisdn, hrn=hrn,
                                channel=Channel.WAP if flavour == "wap" else Channel.WEB,
                                source=address)
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = defer.maybeDeferred(self.activation.activate, req)
        d.addCallback(self._result, request, flavour, lang, msisdn, address, gone)
        d.addErrback(self._failed, request, gone)
        return server.NOT_DONE_YET

    def _precheck(self, request):
        limit = self.settings.max_form_bytes
        length = request.getHeader(b"content-length")
        request.content.seek(0, 2)
        if (length is not None and length.isdigit() and int(length) > limit) \
                or request.content.tell() > limit:
            return "too_large", None
        if not self.csrf.check(request):
            return "csrf", None
        return None

    def _refuse(self, request, flavour, lang, reason, wait, msisdn=""):
        status, key = REFUSALS[reason]
        text = self.texts.get(key, lang)
        if reason == "rate_limited":
            text = text.replace("{minutes}", str(max(1, -(-wait // 60))))
        self.log.info("web recharge refused ({reason}) from {address}", reason=reason,
                      address=self.client_address(request))
        return self._page(request, flavour, lang, status, notice=text, ok=False, msisdn=msisdn,
                          retry_after=wait)

    def _result(self, result, request, flavour, lang, msisdn, address, gone):
        self.log.info("web recharge from {address}: {code} txn {txn_id}", address=address,
                      code=result.name, txn_id=result.txn_id)
        if gone:
            return
        body = self._page(request, flavour, lang, status_for(result.code),
                          notice=self.texts.result(result, lang), ok=result.ok,
                          reference=(result.txn_id or "")[:12] if result.ok else None,
                          msisdn="" if result.ok else msisdn, show_form=not result.ok,
                          retry_after=30 if status_for(result.code) == 503 else None)
        request.write(body)
        request.finish()

    def _failed(self, failure, request, gone):
        self.log.failure("web recharge page failed", failure)
        if not gone and not request.finished:
            request.setResponseCode(500)
            request.finish()


def build_resource(activation, settings: WebSettings, *, clock, numbering=None) -> RechargePages:
    """The recharge pages (WAP under C{wap/}) over an activation service.

    @param activation: provides L{core.interfaces.IActivationService}.
    @param settings: the C{[web]} table (L{WebSettings}).
    @param clock: an C{IReactorTime} for the rate limits.
    @param numbering: provides L{core.interfaces.INumberingPlan}: one
        subscriber's number in several spellings shares one rate limit.
    @return: a L{RechargePages}; the caller mounts it (at C{/web}) only when
        C{settings.enabled}.
    """
    return RechargePages(activation, settings, clock=clock,
                         normalise_msisdn=numbering.normalise if numbering is not None else None)
