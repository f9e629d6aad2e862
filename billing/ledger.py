"""The embedded ledger: prepaid accounts in the iVOMS store, the default billing connector (DESIGN §6).

Balances and expiry dates live in C{ledger_account}; every credit leaves a
C{ledger_entry} keyed by its idempotency key, so a repeated credit answers
what the first did (without the balance, which has moved on since).  C{lookup} of an unknown key writes a C{void} entry, so
a credit still in flight for that key can never apply afterwards: reconciliation
may then release the voucher safely.
"""
from __future__ import annotations

from sqlalchemy import and_, bindparam, case, select, update
from zope.interface import alsoProvides, implementer

from core.billing import CreditOutcome, IBillingPort
from core.interfaces import IStoreLedger
from core.results import ResultCode as R
from core.schema import ledger_account as acc, ledger_entry as ent
from core.timeutil import DAY_MS, now_ms

_ENTRY = select(ent.c.outcome, ent.c.result_code, ent.c.balance_after, ent.c.expires_after) \
    .where(ent.c.idempotency_key == bindparam("key"))

# Validity: the account stays valid at least `days` from now; a later
# expiry is kept (the usual refill rule; validity does not accumulate).
_CREDIT = update(acc).where(and_(acc.c.msisdn == bindparam("msisdn"),
                                 acc.c.currency == bindparam("currency"))).values(
    balance=acc.c.balance + bindparam("amount"),
    expires_at=case((acc.c.expires_at > bindparam("until"), acc.c.expires_at),
                    else_=bindparam("until")),
    updated_at=bindparam("now"),
).returning(acc.c.balance, acc.c.expires_at)

_ACCOUNT = select(acc.c.currency).where(acc.c.msisdn == bindparam("msisdn"))
_GET = select(acc.c.balance, acc.c.currency, acc.c.expires_at).where(acc.c.msisdn == bindparam("msisdn"))


def _outcome(row) -> CreditOutcome:
    outcome, code, balance, expires = row
    if outcome == "credited":
        return CreditOutcome(True, R.SUCCESS, balance, expires)
    return CreditOutcome(False, R(code), detail="ledger: %s" % outcome)


_SET_OUTCOME = update(ent).where(ent.c.idempotency_key == bindparam("key")).values(
    outcome=bindparam("outcome"), result_code=bindparam("code"),
    balance_after=bindparam("balance"), expires_after=bindparam("expires"))


def credit_unit(tx, msisdn, amount, currency, validity_days, key, now, auto_create):
    """Credit C{msisdn} once for C{key} (a unit of work); return a L{CreditOutcome}.

    The entry is claimed first (C{INSERT ... ON CONFLICT DO NOTHING} on the
    key), so a repeated or voided key is detected before any money moves.
    """
    claimed = tx.insert_ignore(ent, {
        "idempotency_key": key, "msisdn": msisdn, "amount": amount, "currency": currency,
        "validity_days": validity_days, "outcome": "credited", "result_code": int(R.SUCCESS),
        "at": now})
    if not claimed:
        return _outcome(tx.execute(_ENTRY, {"key": key}).first())
    until = now + validity_days * DAY_MS
    got = tx.execute(_CREDIT, {"msisdn": msisdn, "currency": currency, "amount": amount,
                               "until": until, "now": now}).first()
    if got is not None:
        return CreditOutcome(True, R.SUCCESS, got[0], got[1])
    if auto_create:
        # ON CONFLICT waits for a concurrent first credit of the same new
        # account to commit; then the UPDATE sees that account.
        if tx.insert_ignore(acc, {"msisdn": msisdn, "balance": amount, "currency": currency,
                                  "expires_at": until, "created_at": now, "updated_at": now}):
            return CreditOutcome(True, R.SUCCESS, amount, until)
        got = tx.execute(_CREDIT, {"msisdn": msisdn, "currency": currency, "amount": amount,
                                   "until": until, "now": now}).first()
        if got is not None:
            return CreditOutcome(True, R.SUCCESS, got[0], got[1])
    if tx.execute(_ACCOUNT, {"msisdn": msisdn}).first() is not None:
        outcome, code = "rejected", R.BILLING_REJECTED      # account in another currency
    else:
        outcome, code = "rejected", R.SUBSCRIBER_UNKNOWN
    tx.execute(_SET_OUTCOME, {"key": key, "outcome": outcome, "code": int(code),
                              "balance": None, "expires": None})
    return _outcome((outcome, code, None, None))


def lookup_unit(tx, key, now):
    """The outcome for C{key}, or None after voiding it (a unit of work)."""
    row = tx.execute(_ENTRY, {"key": key}).first()
    if row is not None:
        out = _outcome(row)
        return None if (not out.credited and row[0] == "void") else out
    tx.insert(ent, {"idempotency_key": key, "msisdn": "", "amount": 0, "currency": "XXX",
                    "validity_days": 0, "outcome": "void", "result_code": int(R.BILLING_UNAVAILABLE),
                    "balance_after": None, "expires_after": None, "at": now})
    return None


def account_unit(tx, msisdn):
    """(balance, currency, expires_at) of C{msisdn}, or None."""
    row = tx.execute(_GET, {"msisdn": msisdn}).first()
    return tuple(row) if row is not None else None


@implementer(IBillingPort)
class EmbeddedLedger:
    """Billing port backed by the iVOMS store."""

    def __init__(self, runner, *, clock, auto_create: bool = True, in_transaction: bool = True):
        """
        @param in_transaction: let the core credit inside the activation's own
            unit of work (L{credit_in}): one commit per activation instead of
            three, and nothing to reconcile.  False runs the credit as a
            separate step, like an external billing system.
        """
        self.runner = runner
        self.clock = clock
        self.auto_create = auto_create
        self.in_transaction = in_transaction
        if in_transaction:
            # credits are the plain SQL of credit_unit, which the PostgreSQL
            # function ivoms_activate (core.db_activate) repeats
            alsoProvides(self, IStoreLedger)

    def __reduce__(self):
        """Travels to a writer process (L{core.unit_process}) as what units use
        of it there: its in-transaction credit, without runner or clock."""
        return _in_writer, (self.auto_create, self.in_transaction)

    def credit_in(self, tx, account, amount, currency, validity_days, idempotency_key, now):
        """L{credit} inside the caller's unit of work C{tx} (same database)."""
        return credit_unit(tx, account, amount, currency, validity_days, idempotency_key, now,
                           self.auto_create)

    def credit(self, account, amount, currency, validity_days, idempotency_key,
               voucher_type=None):
        return self.runner.submit(credit_unit, account, amount, currency, validity_days,
                                  idempotency_key, now_ms(self.clock), self.auto_create)

    def lookup(self, idempotency_key, account=None, amount=None, currency=None,
               validity_days=None, voucher_type=None):
        return self.runner.submit(lookup_unit, idempotency_key, now_ms(self.clock))

    def account(self, msisdn):
        """Deferred (balance, currency, expires_at) or None."""
        return self.runner.submit(account_unit, msisdn)


def _in_writer(auto_create: bool, in_transaction: bool) -> EmbeddedLedger:
    """An L{EmbeddedLedger} for units in a writer process (no runner, no clock)."""
    return EmbeddedLedger(None, clock=None, auto_create=auto_create,
                          in_transaction=in_transaction)
