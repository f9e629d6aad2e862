"""The simulator's UCIP server role: an AIR answering UpdateBalanceAndDate over HTTP.

POST any path with an XML-RPC C{UpdateBalanceAndDate}; Basic auth with
C{ucip_user}/C{ucip_password} (401 otherwise).  The credit is recorded by
its C{originTransactionID}: a duplicate is answered exactly as the first
time (never applied twice), which is what C{[billing.ucip] lookup = "replay"}
relies on.  Codes: 0 credited, 102 unknown subscriber, 123 refused (other
currency or injected reject), 100 busy (injected, nothing applied).
"""
from __future__ import annotations

import base64

from twisted.web import resource, server

from billing.sim.faults import FaultPlan
from billing.sim.ledger import SimLedger
from billing.ucip import codec

OK, OTHER_ERROR, UNKNOWN_SUBSCRIBER, REFUSED = 0, 100, 102, 123
_CODE = {"unknown": UNKNOWN_SUBSCRIBER, "refused": REFUSED, "void": REFUSED}


class SimUcipResource(resource.Resource):
    """The AIR endpoint (every path)."""

    isLeaf = True

    def __init__(self, ledger: SimLedger, faults: FaultPlan, clock, *,
                 user: str = "ivoms", password: str = "ivoms"):
        super().__init__()
        self.ledger = ledger
        self.faults = faults
        self.clock = clock
        self.auth = b"Basic " + base64.b64encode(("%s:%s" % (user, password)).encode("utf-8"))
        self.answers: dict[str, bytes] = {}
        self.stats = {"update": 0, "duplicates": 0, "dropped": 0, "malformed": 0}

    def render_POST(self, request):
        if request.getHeader(b"authorization") != self.auth:
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Basic realm="AIR"')
            return b""
        request.setHeader(b"Content-Type", b"text/xml")
        try:
            method, p = codec.decode_call(request.content.read())
        except codec.UcipSyntaxError as e:
            return codec.xmlrpc_fault(1000, "Illegal request: %s" % e)
        if method != codec.METHOD:
            return codec.xmlrpc_fault(1000, "Unsupported method")
        try:
            key = str(p["originTransactionID"])
            msisdn = str(p["subscriberNumber"])
            amount = int(p.get("adjustmentAmountRelative", "0"))
            currency = str(p["transactionCurrency"])
            days = int(p.get("supervisionExpiryDateRelative", 0))
        except (KeyError, ValueError):
            return codec.xmlrpc_fault(1001, "Inconsistent request")
        self.stats["update"] += 1
        if key in self.answers:
            self.stats["duplicates"] += 1
            return self._later(request, self.answers[key], self.faults.delay(True))
        action = self.faults.action()
        if action == "busy":
            return self._later(request, codec.encode_response(
                {"responseCode": OTHER_ERROR, "originTransactionID": key}), self.faults.delay())
        if action == "reject":
            record = self.ledger.record(key, "refused")
        else:
            record, _ = self.ledger.credit(key, msisdn, amount, currency, days)
        answer = {"responseCode": OK if record.credited else _CODE[record.status],
                  "originTransactionID": key}
        if record.credited:
            answer["accountValue1"] = str(record.balance)
            answer["supervisionExpiryDate"] = codec.xmlrpc_date(record.expires_at / 1000)
        body = codec.encode_response(answer)
        self.answers[key] = body
        if action == "drop":
            self.stats["dropped"] += 1
            request.notifyFinish().addErrback(lambda _: None)
            return server.NOT_DONE_YET          # applied, never answered
        if action == "malformed":
            self.stats["malformed"] += 1
            body = b"<methodResponse>garbage"
        return self._later(request, body, self.faults.delay())

    def _later(self, request, body: bytes, delay: float):
        if delay <= 0:
            return body
        call = self.clock.callLater(delay, self._finish, request, body)
        request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
        return server.NOT_DONE_YET

    @staticmethod
    def _finish(request, body: bytes):
        request.write(body)
        request.finish()


class _QuietSite(server.Site):
    """A site without an access log: formatting a combined-log line for every
    request cost about a tenth of the simulator's time per refill."""

    def log(self, request):
        pass


def site(ledger, faults, clock, *, user="ivoms", password="ivoms") -> server.Site:
    """The HTTP site serving L{SimUcipResource} on every path (no access log).

    Bodies are never parsed as HTML form submissions: an XML-RPC body has
    no form arguments, and Twisted would otherwise parse every request's
    Content-Type with the email package (about a fifth of the time per refill).
    """
    s = _QuietSite(SimUcipResource(ledger, faults, clock, user=user, password=password),
                   parsePOSTFormSubmission=False)
    s.displayTracebacks = False
    s.noisy = False
    return s



