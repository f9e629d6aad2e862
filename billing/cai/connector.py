"""C{CaiBilling}: the billing port over the CAI line protocol.

credit = the C{credit} template (SET ... REF,{key};): success codes ->
credited (BALANCE/EXPIRY read when present); unknown-subscriber codes ->
102; refusal codes -> 115; anything else, a timeout, a lost connection or
a malformed answer -> BillingUnavailable(sent=True); no logged-in
connection -> BillingUnavailable(sent=False).

lookup = the C{lookup} template (GET:RECHARGE:REF,{key};), its answer read
as C{answers.CaiLookupAnswer} says: RESP:0; or STATUS,CREDITED -> credited;
STATUS,REFUSED -> its CODE; a refusal code -> that refusal; a not-found
code -> None when C{not_found_is_final} (the IN closed the reference, see
C{codec}), else BillingUnavailable (left pending).
"""
from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from billing.cai.codec import CaiSyntaxError, parse_time
from billing.cai.config import CaiSettings
from billing.cai.protocol import CaiError
from billing.readiness import poll_until
from core.billing import BillingUnavailable, CreditOutcome, IBillingPort
from core.interfaces import IBillingReadiness
from core.results import ResultCode


@implementer(IBillingPort, IBillingReadiness)
class CaiBilling:
    def __init__(self, pool, settings: CaiSettings):
        self.pool = pool
        self.settings = settings

    def when_ready(self, timeout: float) -> defer.Deferred:
        """True once a pooled connection has logged in, False after C{timeout}."""
        return poll_until(self.pool.clock, lambda: bool(self.pool.ready), timeout)

    def credit(self, account, amount, currency, validity_days, idempotency_key,
               voucher_type=None):
        try:
            line = self.settings.templates.render(
                "credit", msisdn=account, amount=int(amount), currency=currency,
                days=int(validity_days or 0), key=idempotency_key)
        except (CaiSyntaxError, ValueError) as e:
            return defer.fail(BillingUnavailable("CAI: %s" % e, sent=False))
        d = defer.ensureDeferred(self.pool.run(line))
        d.addCallbacks(self._credited, self._failed)
        return d

    def lookup(self, idempotency_key, account=None, amount=None, currency=None,
               validity_days=None, voucher_type=None):
        try:
            line = self.settings.templates.render("lookup", key=idempotency_key)
        except CaiSyntaxError as e:
            return defer.fail(BillingUnavailable("CAI: %s" % e))
        d = defer.ensureDeferred(self.pool.run(line))
        d.addCallbacks(self._looked_up, self._failed, errbackArgs=(True,))
        return d

    def _outcome(self, code: int, resp) -> CreditOutcome:
        c = self.settings.codes
        a = self.settings.lookup_answer
        if code in c.success:
            expiry = resp.get(a.expiry_field)
            balance = resp.get(a.balance_field)
            try:
                return CreditOutcome(
                    True, ResultCode.SUCCESS,
                    int(balance) if balance and balance.lstrip("-").isdigit() else None,
                    parse_time(expiry) if expiry else None, detail="CAI %d" % code)
            except CaiSyntaxError:
                return CreditOutcome(True, ResultCode.SUCCESS, detail="CAI %d" % code)
        if code in c.unknown_subscriber:
            return CreditOutcome(False, ResultCode.SUBSCRIBER_UNKNOWN, detail="CAI %d" % code)
        if code in c.refused:
            return CreditOutcome(False, ResultCode.BILLING_REJECTED, detail="CAI %d" % code)
        raise BillingUnavailable("CAI: code %d gives no definite outcome" % code)

    def _credited(self, resp):
        return self._outcome(resp.code, resp)

    def _looked_up(self, resp):
        c = self.settings.codes
        a = self.settings.lookup_answer
        if resp.code in c.not_found:
            if c.not_found_is_final:
                return None
            raise BillingUnavailable("CAI: recharge not found (not final)")
        status = resp.get(a.status_field) if a.status_field else None
        if status is None:
            if a.status_required and resp.code in c.success:
                raise BillingUnavailable("CAI lookup: answer without %s" % a.status_field)
            return self._outcome(resp.code, resp)       # the code alone decides
        if resp.code not in c.success:
            raise BillingUnavailable("CAI lookup: code %d" % resp.code)
        if status in a.credited_values:
            return self._outcome(resp.code, resp)
        if status in a.refused_values:
            raw = resp.get(a.code_field) if a.code_field else None
            if raw is None:
                return CreditOutcome(False, ResultCode.BILLING_REJECTED,
                                     detail="CAI lookup: %s" % status)
            try:
                code = int(raw)
            except ValueError:
                raise BillingUnavailable("CAI lookup: %s %r is not a code"
                                         % (a.code_field, raw)) from None
            out = self._outcome(code, resp)
            if out.credited:
                raise BillingUnavailable("CAI lookup: contradictory answer")
            return out
        raise BillingUnavailable("CAI lookup: unknown %s %r" % (a.status_field, status))

    def _failed(self, failure, lookup=False):
        exc = failure.value
        if isinstance(exc, CaiError):
            raise BillingUnavailable("CAI: %s" % exc, sent=exc.sent or lookup)
        return failure
