"""spyne on twisted.web: our own resource around spyne's Application (the one adapter module).

Why not C{spyne.server.twisted}: spyne 2.14.0 (pinned; the last release)
fails on Twisted 26 in three places: it imports C{twisted.python.constants}
(removed from Twisted), builds the WSDL URL from the request's bytes URI, and
compares C{request.method} (C{b'POST'}) with C{'POST'}.  Rather than patch
spyne, this module uses only spyne's transport-neutral parts: an in-process
L{ServerBase} drives parsing, validation, dispatch and serialisation of a
C{MethodContext}; the HTTP side (method, media type, size, status codes,
WSDL URL as text) is ours.  A service method returns a Deferred (spyne calls
it synchronously); we wait for it on the reactor and then let spyne
serialise the value, so nothing blocks and no thread is involved.

Request order: HTTP Basic if sent, then media type and size, then the
hardened parse (L{protocols.soap.codec}), then a WS-Security UsernameToken
if Basic was not sent, then schema validation and the operation.  An
ActivateVoucher request of the common shape skips spyne's validation and
argument building (L{protocols.soap.fastpath} reads only requests the schema
accepts, with spyne's values; anything else goes to spyne).  Every POST
leaves one audit row naming the client; ActivateVoucher's is written by the
core with the activation, in its unit of work.

spyne logs through the standard library and its messages can quote request
documents; its loggers are therefore held at CRITICAL here (our own
C{twisted.logger} lines say what happened, without HRNs).
"""

from __future__ import annotations

import logging
import re

from spyne import MethodContext
from spyne.interface.wsdl import Wsdl11
from spyne.model.fault import Fault
from spyne.protocol import ProtocolBase
from spyne.server import ServerBase
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from core.queries import AuditEntry
from core.timeutil import now_ms

from protocols.soap.auth import AuthFailed, AuthThrottled, find_username_token, parse_basic
from protocols.soap.codec import header_elements, parse_envelope
from protocols.soap.errors import SoapFault, http_status_of
from protocols.soap.fastpath import activate_voucher_args
from protocols.soap.fastxml import (
    NotWritable, activate_voucher_response, activate_voucher_response_values)
from protocols.soap.handlers import result_model

logging.getLogger("spyne").setLevel(logging.CRITICAL)

SOAP_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
XML_TYPE = b"text/xml; charset=utf-8"
_URL = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/\-]*)?$")


class InProcessServer(ServerBase):
    """spyne's generic server: contexts in, strings out; no transport of its own."""

    transport = SOAP_HTTP_TRANSPORT


class SoapCall:
    """One SOAP request as it goes through (spyne's C{ctx.udc}).

    @ivar client: the authenticated L{protocols.soap.config.SoapClient}, or None.
    @ivar method: how it authenticated (basic, wsse-text, wsse-digest).
    @ivar target, detail: what the audit row records, set by the handlers.
    @ivar at: when the request arrived (epoch ms; the audit row's time).
    @ivar audited: the core writes this call's audit row (with its activation).
    """

    __slots__ = ("handlers", "address", "at", "client", "method", "claimed", "operation",
                 "target", "detail", "audited")

    def __init__(self, handlers, address, at):
        self.handlers = handlers
        self.address = address
        self.at = at
        self.audited = False
        self.client = None
        self.method = None
        self.claimed = None
        self.operation = None
        self.target = None
        self.detail = None


class SoapResource(resource.Resource):
    """C{GET ?wsdl} publishes the WSDL; C{POST} runs one SOAP 1.1 operation."""

    isLeaf = True
    log = Logger()

    def __init__(self, app, handlers, authenticator, queries, *, clock,
                 max_request_bytes: int = 65536, public_url: str = "",
                 realm: str = "iVOMS SOAP"):
        """
        @param app: the spyne Application (L{protocols.soap.app.make_application}).
        @param handlers: a L{protocols.soap.handlers.SoapHandlers}.
        @param authenticator: a L{protocols.soap.auth.Authenticator}.
        @param queries: provides L{core.interfaces.ITransactionQueries} (audit rows).
        @param clock: an C{IReactorTime} for audit times.
        @param public_url: the address written into the WSDL; empty to use
            the URL each C{?wsdl} request was made to.
        """
        super().__init__()
        self.app = app
        self.spyne = InProcessServer(app)
        self.handlers = handlers
        self.auth = authenticator
        self.queries = queries
        self.clock = clock
        self.max_request_bytes = max_request_bytes
        self.public_url = public_url
        self.realm = realm.replace('"', "'")
        self._wsdl: dict[str, bytes] = {}

    # -- WSDL -----------------------------------------------------------------
    def render_GET(self, request):
        query = request.uri.partition(b"?")[2].lower()
        if not any(p.partition(b"=")[0] == b"wsdl" for p in query.split(b"&")):
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"iVOMS SOAP 1.1 endpoint: POST requests here; the WSDL is at ?wsdl\n"
        url = self.public_url or self._request_url(request)
        doc = self._wsdl.get(url)
        if doc is None:
            wsdl = Wsdl11(self.app.interface)
            wsdl.build_interface_document(url)
            doc = wsdl.get_interface_document()
            if len(self._wsdl) >= 16:
                self._wsdl.clear()
            self._wsdl[url] = doc
        request.setHeader(b"content-type", XML_TYPE)
        return doc

    @staticmethod
    def _request_url(request) -> str:
        """The URL this resource was asked under, as text (spyne wanted a str)."""
        url = request.prePathURL().decode("ascii", "replace")
        if request.postpath and request.postpath != [b""]:
            url = url.rstrip("/")
        return url if _URL.match(url) else "http://localhost/soap"

    # -- operations -----------------------------------------------------------
    def render_POST(self, request):
        address = getattr(request.getClientAddress(), "host", None)
        call = SoapCall(self.handlers, address, now_ms(self.clock))
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = defer.ensureDeferred(self._process(request, call))
        d.addErrback(self._as_fault, call)
        d.addCallback(self._audited, call)
        d.addCallback(self._respond, request, gone)
        d.addErrback(self._crashed, request, gone)
        return server.NOT_DONE_YET

    async def _process(self, request, call):
        """Run the request; return C{(status, body)} or raise a fault."""
        basic = parse_basic(request.getHeader(b"authorization"))
        if basic is not None:
            call.method, call.claimed = "basic", basic[0]
            call.client = await self.auth.check_basic(basic[0], basic[1], call.address)
        ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != b"text/xml":
            raise SoapFault("Client.UnsupportedMediaType",
                            "SOAP 1.1 requests must be text/xml")
        body = self._read_body(request)
        root, ids = parse_envelope(body)
        if call.client is None:
            token = find_username_token(header_elements(root))
            if token is None:
                raise AuthFailed("no credentials", method="none")
            call.method, call.claimed = token.method, token.username
            call.client = await self.auth.check_token(token, call.address)
        args = activate_voucher_args(root, ids)
        if args is not None:            # the common request: read without spyne
            call.operation = "ActivateVoucher"
            values = await self.handlers.activate(call, *args)
            try:
                return 200, activate_voucher_response_values(values)
            except NotWritable:
                return 200, self._spyne_answer(root, ids, call, result_model(values))
        ctx = self._context(root, ids, call)
        call.operation = ctx.descriptor.name
        self.spyne.get_in_object(ctx)
        if ctx.in_error is not None:
            raise ctx.in_error
        self.spyne.get_out_object(ctx)
        if ctx.out_error is not None:
            raise ctx.out_error
        value = await defer.maybeDeferred(lambda: ctx.out_object[0])
        if call.operation == "ActivateVoucher":
            try:
                return 200, activate_voucher_response(value)
            except NotWritable:      # a value the template does not write as spyne: spyne does
                pass
        ctx.out_object = [value]
        self.spyne.get_out_string(ctx)
        return 200, b"".join(ctx.out_string)

    def _context(self, root, ids, call):
        """spyne's method context for the parsed request: decomposed, validated
        against the schema, its operation found (or a fault raised)."""
        ctx = MethodContext(self.spyne, MethodContext.SERVER)
        ctx.udc = call
        ctx.in_document = (root, ids)
        protocol = self.app.in_protocol
        protocol.decompose_incoming_envelope(ctx, ProtocolBase.REQUEST)
        return protocol.generate_method_contexts(ctx)[0]

    def _spyne_answer(self, root, ids, call, value) -> bytes:
        """spyne's answer to the request with C{value}."""
        ctx = self._context(root, ids, call)
        ctx.out_object = [value]
        self.spyne.get_out_string(ctx)
        return b"".join(ctx.out_string)

    def _read_body(self, request) -> bytes:
        limit = self.max_request_bytes
        length = request.getHeader(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise SoapFault("Client.RequestTooLarge", "request body over %d bytes" % limit)
        request.content.seek(0)
        body = request.content.read(limit + 1)
        if len(body) > limit:
            raise SoapFault("Client.RequestTooLarge", "request body over %d bytes" % limit)
        return body

    def _fault_body(self, fault) -> bytes:
        ctx = MethodContext(self.spyne, MethodContext.SERVER)
        ctx.out_error = fault
        self.spyne.get_out_string(ctx)
        return b"".join(ctx.out_string)

    def _as_fault(self, failure, call):
        call.audited = False                    # a fault has a row of its own
        fault = failure.value
        if not isinstance(fault, Fault):
            self.log.failure("SOAP {operation} failed unexpectedly", failure,
                             operation=call.operation)
            fault = SoapFault("Server", reason=type(fault).__name__)
        elif not isinstance(fault, SoapFault) and str(fault.faultcode).startswith("Server"):
            fault = SoapFault("Server", reason=str(fault.faultstring)[:200])
        detail = dict(call.detail or {})
        detail["fault"] = str(fault.faultcode)
        detail["reason"] = getattr(fault, "reason", None) or str(fault.faultstring)[:200]
        if isinstance(fault, AuthThrottled):    # logged once when the throttle began
            call.operation = "auth_throttled"
            call.detail = None
            return http_status_of(fault), self._fault_body(fault)
        if isinstance(fault, AuthFailed):
            call.operation = "auth_failed"
            detail["method"] = fault.method
            if call.claimed or fault.claimed:
                detail["claimed"] = (call.claimed or fault.claimed)[:48]
            self.log.warn("SOAP authentication failed from {address} ({method}): {reason}",
                          address=call.address, method=fault.method, reason=fault.reason)
        else:
            self.log.info("SOAP fault {faultcode} for {client} from {address}",
                          faultcode=str(fault.faultcode), address=call.address,
                          client=call.client.name if call.client else "-")
        call.detail = detail
        return http_status_of(fault), self._fault_body(fault)

    def _audited(self, status_body, call):
        if call.operation == "auth_throttled" or call.audited:  # none, or the core's
            return status_body
        client = call.client.name if call.client is not None else "-"
        entry = AuditEntry(at=now_ms(self.clock), actor="soap:%s" % client,
                           action="soap.%s" % (call.operation or "request"),
                           target=(call.target or "")[:256] or None, origin=call.address,
                           detail=call.detail)
        d = self.queries.record(entry)
        d.addErrback(lambda f: self.log.failure("SOAP audit row not written", f))
        d.addCallback(lambda _: status_body)
        return d

    def _respond(self, status_body, request, gone):
        status, body = status_body
        if gone:
            return
        request.setResponseCode(status)
        request.setHeader(b"content-type", XML_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-length", b"%d" % len(body))
        if status == 401:
            request.setHeader(b"www-authenticate",
                              ('Basic realm="%s", charset="UTF-8"' % self.realm).encode())
        request.write(body)
        request.finish()

    def _crashed(self, failure, request, gone):
        self.log.failure("SOAP response failed", failure)
        if not gone and not request.finished:
            request.setResponseCode(500)
            request.finish()
