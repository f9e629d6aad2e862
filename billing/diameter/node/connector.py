"""C{DiameterBilling}: the billing port over Diameter credit-control (RFC 4006).

A credit is one CCR EVENT_REQUEST (C{credit.build_ccr}) whose Session-Id
carries the idempotency key, sent through a C{DiameterClient}.  The answer
is judged once by C{results.credit_outcome}:

| answer                                   | port result                        |
| ---------------------------------------- | ---------------------------------- |
| 2001                                     | CreditOutcome(credited=True, 0)    |
| 5030 USER_UNKNOWN (Result or Experimental)| CreditOutcome(False, 102)         |
| other 4xxx/5xxx refusals                 | CreditOutcome(False, 115)          |
| 3xxx, 5012, malformed, timeout, peer lost| BillingUnavailable(sent=True)      |
| no open peer, queue full, bad input      | BillingUnavailable(sent=False)     |

Reconciliation (C{lookup}) re-sends the *same* CCR — same Session-Id, same
Event-Timestamp, CC-Request-Number 0 — with the T flag (RFC 6733 §5.5.4).
An OCS detects the duplicate by Session-Id and CC-Request-Number
(RFC 4006 §5.1, §7) and answers what it did the first time without
applying it again; if the first never reached it, it applies it now,
while the voucher is still reserved.  Either way the answer is definite,
so C{lookup} never needs to answer None.  The request parameters come from
C{lookup_credit} (the reconciler's row) or, within the same process, from
a bounded book of credits whose outcome is unknown.
"""
from __future__ import annotations

import collections
import datetime

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from billing.currency import Currencies
from billing.diameter.config import DOC_VENDOR_ID
from billing.diameter.message.credit import (
    CreditRequest, CreditSettings, build_ccr, session_id_for)
from billing.diameter.message.errors import (
    DiameterDecodeError, DiameterEncodeError, DiameterTransportError)
from billing.diameter.message.messages import LocalIdentity
from billing.diameter.message.parsing import DecodedMessage
from billing.diameter.message.results import credit_outcome
from core.billing import BillingUnavailable, CreditOutcome, IBillingPort
from core.interfaces import IBillingReadiness
from core.results import ResultCode

#: Optional report AVPs in a CCA (the billing simulator sends them):
#: balance after the credit (Integer64, minor units) and the new account
#: expiry (Time), under the documentation enterprise number (RFC 5612).
AVP_SIM_BALANCE = 2
AVP_SIM_EXPIRY = 3

_UTC = datetime.timezone.utc


@implementer(IBillingPort, IBillingReadiness)
class DiameterBilling:
    """IBillingPort over a C{DiameterClient} (see the module doc).

    @param client: the started C{DiameterClient}.
    @param local: our identity (Origin-Host/Realm in the CCR).
    @param credit_settings: realm, Service-Context-Id, Requested-Action,
        validity AVPs.
    @param clock: IReactorTime for Event-Timestamp.
    @param session_host: DiameterIdentity starting every Session-Id (default
        our Origin-Host; set the same on every node of one store).
    @param currencies: a C{Currencies} table (ISO 4217 + overrides).
    @param book_limit: most unknown-outcome credits remembered for C{lookup}.
    """

    log = Logger()

    def __init__(self, client, local: LocalIdentity,
                 credit_settings: CreditSettings, *, clock,
                 session_host: str | None = None,
                 currencies: Currencies | None = None,
                 book_limit: int = 100_000):
        self.client = client
        self.local = local
        self.settings = credit_settings
        self.clock = clock
        self.session_host = session_host
        self.currencies = currencies or Currencies()
        self.book_limit = book_limit
        self._book: collections.OrderedDict[str, CreditRequest] = \
            collections.OrderedDict()

    # -- IBillingReadiness ------------------------------------------------
    def when_ready(self, timeout: float) -> defer.Deferred:
        """True once a peer is open (CEA received), False after C{timeout}."""
        return self.client.when_open(timeout)

    # -- IBillingPort ----------------------------------------------------
    def credit(self, account, amount, currency, validity_days,
               idempotency_key, voucher_type=None) -> defer.Deferred:
        """Credit C{amount} minor units; Deferred[CreditOutcome] or
        BillingUnavailable (see the module table)."""
        try:
            req = self._credit_request(account, amount, currency,
                                       validity_days, idempotency_key)
            data = self._encode(req)
        except (KeyError, ValueError) as e:
            return defer.fail(BillingUnavailable(
                "credit not sendable over Diameter: %s" % (e,), sent=False))
        self._remember(req)
        return self._send(data, req)

    def lookup(self, idempotency_key, account=None, amount=None, currency=None,
               validity_days=None, voucher_type=None) -> defer.Deferred:
        """Re-send the CCR with the T flag (module doc).

        The request is the one remembered in this process or, after a
        restart, rebuilt from the credit's parameters.  Fails with
        BillingUnavailable when neither is at hand or billing does not
        answer definitely.  Never answers None.
        """
        if account is not None:
            return self.lookup_credit(idempotency_key, account, amount, currency, validity_days)
        req = self._book.get(idempotency_key)
        if req is None:
            return defer.fail(BillingUnavailable(
                "no parameters for %s in this process; the reconciler must "
                "call lookup_credit" % idempotency_key))
        return self._replay(req)

    def lookup_credit(self, idempotency_key, account, amount, currency,
                      validity_days) -> defer.Deferred:
        """C{lookup} with the credit's parameters (from the pending row)."""
        req = self._book.get(idempotency_key)
        if req is None:
            try:
                req = self._credit_request(account, amount, currency,
                                           validity_days, idempotency_key)
            except (KeyError, ValueError) as e:
                return defer.fail(BillingUnavailable(str(e)))
        return self._replay(req)

    # -- internals --------------------------------------------------------
    def _credit_request(self, account, amount, currency, validity_days, key):
        numeric, _ = self.currencies.numeric(currency)
        return CreditRequest(
            key=key, msisdn=account,
            amount=self.currencies.to_decimal(int(amount), currency),
            currency_code=numeric,
            event_time=datetime.datetime.fromtimestamp(
                int(self.clock.seconds()), _UTC),
            validity_days=validity_days if self.settings.validity_avps
            else None)

    def _encode(self, req: CreditRequest) -> bytes:
        return build_ccr(self.local, self.settings, req,
                         session_host=self.session_host)

    def _remember(self, req: CreditRequest):
        self._book[req.key] = req
        self._book.move_to_end(req.key)
        while len(self._book) > self.book_limit:
            self._book.popitem(last=False)

    def _replay(self, req: CreditRequest) -> defer.Deferred:
        try:
            data = self._encode(req)
        except DiameterEncodeError as e:
            return defer.fail(BillingUnavailable(str(e)))
        # Mark as a retransmission: the header's T flag (RFC 6733 §5.5.4).
        data = data[:4] + bytes([data[4] | 0x10]) + data[5:]
        d = self._send(data, req, replay=True)

        def unsent_is_unknown(f):
            # For a lookup, "never sent" still means "outcome unknown".
            f.trap(BillingUnavailable)
            raise BillingUnavailable(str(f.value), sent=True)
        d.addErrback(unsent_is_unknown)
        return d

    def _send(self, data: bytes, req: CreditRequest,
              replay: bool = False) -> defer.Deferred:
        d = self.client.request(data)
        d.addCallbacks(self._answered, self._failed,
                       callbackArgs=(req,), errbackArgs=(req, replay))
        return d

    def _answered(self, answer: DecodedMessage, req: CreditRequest):
        expected = session_id_for(self.session_host or self.local.origin_host,
                                  req.key)
        outcome = credit_outcome(answer, expected)
        if outcome.is_unknown:
            raise BillingUnavailable("Diameter: %s" % outcome.reason,
                                     sent=True)
        self._book.pop(req.key, None)
        if outcome.is_success:
            balance, expiry = _sim_report(answer)
            return CreditOutcome(True, ResultCode.SUCCESS, balance, expiry,
                                 detail=outcome.reason)
        return CreditOutcome(False, outcome.result, detail=outcome.reason)

    def _failed(self, failure, req: CreditRequest, replay: bool = False):
        exc = failure.value
        if isinstance(exc, BillingUnavailable):
            return failure
        if isinstance(exc, DiameterTransportError):
            if not exc.sent and not replay:
                self._book.pop(req.key, None)
            raise BillingUnavailable("Diameter: %s" % exc.reason,
                                     sent=exc.sent)
        if isinstance(exc, DiameterDecodeError):
            raise BillingUnavailable("Diameter: malformed answer: %s"
                                     % exc.reason, sent=True)
        return failure   # CancelledError (caller's timeout) and the rest


def _sim_report(answer: DecodedMessage) -> tuple[int | None, int | None]:
    """(balance, expiry epoch ms) from the simulator's report AVPs, if any."""
    try:
        balance = expiry = None
        avp = answer.find(AVP_SIM_BALANCE, DOC_VENDOR_ID)
        if avp is not None and len(avp.payload) == 8:
            balance = int.from_bytes(avp.payload, "big", signed=True)
        when = answer.get_time(AVP_SIM_EXPIRY, DOC_VENDOR_ID)
        if when is not None:
            expiry = int(when.timestamp() * 1000)
        return balance, expiry
    except (DiameterDecodeError, ValueError):
        return None, None


__all__ = ["DiameterBilling", "AVP_SIM_BALANCE", "AVP_SIM_EXPIRY"]
