"""PostgreSQL: an activation with the embedded ledger as ONE statement (issue 19, point 1).

L{activate_in_one} has the contract of L{core.saga.activate_in_one} and the
same effect on the database.  On PostgreSQL, when the credit goes to the
embedded ledger, it calls the server-side function C{ivoms_activate}
(installed by migration 0004): bar check, reservation, credit and conclusion
run in the server within the caller's transaction, so the unit of work costs
one round trip instead of one per statement.  Everything else, and every
refusal (barred, unknown, used, expired ...), takes the portable path of
L{core.saga}; a refusal has written nothing when it falls back, so the
portable path decides and records it exactly as on SQLite.
"""
from __future__ import annotations

from core.billing import CreditOutcome
from core.results import ResultCode as R

CALL = ("SELECT * FROM ivoms_activate(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def call_args(a, auto_create: bool, reset_on_success: bool) -> tuple:
    """The parameters of C{ivoms_activate} for the attempt C{a} (in order)."""
    return (a.txn_id, a.msisdn, a.account, a.blind_index, a.channel, a.channel_ref,
            a.operator_user, a.source, a.now, auto_create, reset_on_success)


def in_store_ledger(credit_in):
    """The embedded ledger behind the bound method C{credit_in}, when it says it
    credits with plain SQL in the store (C{credits_in_store}), else None."""
    ledger = getattr(credit_in, "__self__", None)
    return ledger if getattr(ledger, "credits_in_store", False) else None


def usable(tx, credit_in) -> bool:
    """Whether the one-statement path applies: PostgreSQL, the embedded ledger,
    and a database that has the function (checked once per store)."""
    if tx.is_sqlite or in_store_ledger(credit_in) is None:
        return False
    store = tx.store
    has = getattr(store, "has_activate_function", None)
    if has is None:
        has = tx.execute_raw("SELECT to_regprocedure('ivoms_activate(text, text, text, bytea, "
                             "text, text, text, text, bigint, boolean, boolean)') IS NOT NULL"
                             ).scalar()
        store.has_activate_function = bool(has)
    return has


def activate_in_one(tx, a, fraud_settings, credit_in, reset_on_success: bool, after_factory=None):
    """L{core.saga.activate_in_one}, in one statement where L{usable}.

    @return: as L{core.saga.activate_in_one}.
    """
    from core import saga
    if not usable(tx, credit_in):
        return saga.activate_in_one(tx, a, fraud_settings, credit_in, reset_on_success,
                                    after_factory)
    ledger = in_store_ledger(credit_in)
    row = tx.execute_raw(CALL, call_args(a, bool(ledger.auto_create), reset_on_success)).first()
    (status, serial, batch_id, amount, currency, days, type_code, loyalty, has_failures,
     balance, expires, code) = row
    if status == "refused":
        return saga.activate_in_one(tx, a, fraud_settings, credit_in, reset_on_success,
                                    after_factory)
    out = saga.Reservation(a.txn_id, serial, batch_id, amount, currency, days, type_code,
                           loyalty, has_failures)
    if status != "credited":
        return out, (CreditOutcome(False, R(code), detail="ledger: rejected"), None)
    after = after_factory(out) if after_factory is not None else None
    rewards = after(tx) if after is not None else None
    return out, (CreditOutcome(True, R.SUCCESS, balance, expires), rewards)
