"""The billing port: the one interface the core credits accounts through (DESIGN §6)."""
from __future__ import annotations

from dataclasses import dataclass

from zope.interface import Interface

from core.results import ResultCode


@dataclass(frozen=True)
class CreditOutcome:
    """A definite answer from billing for one idempotency key.

    @ivar credited: True when the account was credited, False when billing
        definitely refused (and never will apply) this key.
    @ivar code: L{ResultCode.SUCCESS} when credited, otherwise the refusal
        (L{ResultCode.SUBSCRIBER_UNKNOWN}, L{ResultCode.BILLING_REJECTED}).
    @ivar balance: the account balance afterwards, when billing tells it.
    @ivar new_expiry: the account expiry afterwards (epoch ms), when known.
    """

    credited: bool
    code: ResultCode
    balance: int | None = None
    new_expiry: int | None = None
    detail: str | None = None


class BillingUnavailable(Exception):
    """Billing gave no definite answer.

    @ivar sent: False when the request certainly never reached billing (no
        connection), so nothing can have been credited; True (the default)
        when the outcome is unknown and must be reconciled.
    """

    def __init__(self, message: str = "billing unavailable", sent: bool = True):
        super().__init__(message)
        self.sent = sent


class IBillingPort(Interface):
    """Credits prepaid accounts; every connector implements this."""

    def credit(account, amount, currency, validity_days, idempotency_key, voucher_type=None):
        """Credit C{amount} minor units of C{currency} to C{account} (E.164
        digits) and extend its validity by C{validity_days}.

        Repeating a call with the same C{idempotency_key} never credits twice;
        it answers what the first call did.

        C{voucher_type} is the code of the voucher type being activated
        (None for a credit that is no voucher, such as a loyalty reward).
        Connectors that credit per voucher type (UCIP dedicated accounts)
        use it; the others ignore it.

        @return: a Deferred firing with a L{CreditOutcome}, or failing with
            L{BillingUnavailable} when the outcome is not known.
        """

    def lookup(idempotency_key, account=None, amount=None, currency=None, validity_days=None,
               voucher_type=None):
        """Tell what became of the credit with C{idempotency_key}.

        The other arguments repeat what the credit asked for (the pending
        transaction row holds them); connectors whose query is a replay of the
        original request (Diameter, UCIP with C{lookup = "replay"}) need them,
        others ignore them.

        @return: a Deferred firing with the L{CreditOutcome} of that credit, or
            None when billing has no record of it; a connector answers None
            only when the credit can no longer be applied later, so the
            caller may release the voucher.  Fails with L{BillingUnavailable}
            when billing cannot be asked.
        """
