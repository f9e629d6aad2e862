"""C{UcipBilling}: the billing port over Ericsson AIR UCIP (UpdateBalanceAndDate).

credit = one UpdateBalanceAndDate whose originTransactionID is derived from
the idempotency key (L{codec.origin_transaction_id}); its responseCode is
mapped by L{results.outcome}.  No AIR reachable -> BillingUnavailable(sent=False);
sent but no answer -> BillingUnavailable(sent=True).

lookup: UCIP cannot query a past refill by transaction id.  With
C{lookup = "none"} (the default) the connector never re-sends: it fails with
BillingUnavailable (logging the originTransactionID), so the reservation
stays pending until an operator settles it with C{ivoms settle}
(docs/billing.md).  With C{lookup = "replay"} it re-sends the
identical request, which is only safe on an AIR that answers a duplicate
originTransactionID with one of C{duplicate_codes} (or with the first answer)
instead of applying it again.
"""
from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from billing.ucip import codec
from billing.ucip.client import UcipTransportError
from billing.ucip.results import outcome
from core.billing import BillingUnavailable, IBillingPort


def subscriber_number(account: str, settings) -> str:
    """C{account} (E.164 digits) in the AIR's number format."""
    if settings.number_format == "national" and account.startswith(settings.country_code):
        return settings.national_prefix + account[len(settings.country_code):]
    return account


def update_fields(settings, account, amount, currency, validity_days, key, now: float,
                  voucher_type: str | None = None) -> dict:
    """The UpdateBalanceAndDate struct for one credit (see docs/billing.md).

    @param voucher_type: the voucher type code, choosing the main account
        and dedicated accounts credited (L{UcipSettings.accounts_for}).
    """
    f = {
        "originNodeType": settings.origin_node_type,
        "originHostName": settings.origin_host_name,
        "originTransactionID": codec.origin_transaction_id(key),
        "originTimeStamp": codec.xmlrpc_date(now),
        "subscriberNumber": subscriber_number(account, settings),
        "transactionCurrency": currency,
    }
    if settings.transaction_type:
        f["transactionType"] = settings.transaction_type
    if settings.transaction_code:
        f["transactionCode"] = settings.transaction_code
    main, das = settings.accounts_for(voucher_type)
    if main:
        f["adjustmentAmountRelative"] = str(int(amount))
    if das:
        f["dedicatedAccountUpdateInformation"] = [
            {"dedicatedAccountID": da, "adjustmentAmountRelative": str(int(amount))}
            for da in das]
    days = int(validity_days or 0)
    if days > 0:
        for name in settings.validity_fields:
            f[name] = days
    return f


@implementer(IBillingPort)
class UcipBilling:
    """@param client: a L{billing.ucip.client.UcipClient}.
    @param settings: its L{billing.ucip.config.UcipSettings}.
    @param clock: the C{IReactorTime} giving originTimeStamp."""

    log = Logger()

    def __init__(self, client, settings, clock):
        self.client = client
        self.settings = settings
        self.clock = clock

    def credit(self, account, amount, currency, validity_days, idempotency_key,
               voucher_type=None):
        return defer.ensureDeferred(
            self._send(account, amount, currency, validity_days, idempotency_key, voucher_type))

    def lookup(self, idempotency_key, account=None, amount=None, currency=None,
               validity_days=None, voucher_type=None):
        if self.settings.lookup != "replay":
            self.log.warn("UCIP: outcome of transaction {txn_id} unknown; look up "
                          "originTransactionID {origin} on the AIR, then 'ivoms settle'",
                          txn_id=idempotency_key,
                          origin=codec.origin_transaction_id(idempotency_key))
            return defer.fail(BillingUnavailable(
                "UCIP has no refill lookup: transaction %s left pending for an operator "
                "(originTransactionID %s)" % (idempotency_key,
                                              codec.origin_transaction_id(idempotency_key))))
        if account is None or amount is None or currency is None:
            return defer.fail(BillingUnavailable("UCIP replay needs the original request"))
        d = defer.ensureDeferred(
            self._send(account, amount, currency, validity_days, idempotency_key, voucher_type))

        def not_sent(f):
            f.trap(BillingUnavailable)
            raise BillingUnavailable(str(f.value), sent=True)
        return d.addErrback(not_sent)

    async def _send(self, account, amount, currency, validity_days, key, voucher_type):
        fields = update_fields(self.settings, account, amount, currency, validity_days, key,
                               self.clock.seconds(), voucher_type)
        try:
            body = await self.client.post(codec.update_request(fields))
        except UcipTransportError as e:
            raise BillingUnavailable(str(e), sent=e.sent) from None
        try:
            answer = codec.decode_response(body)
        except codec.UcipSyntaxError as e:
            raise BillingUnavailable("UCIP: malformed answer (%s)" % e, sent=True) from None
        return outcome(answer, self.settings.codes)
