"""PostgreSQL: activations with the embedded ledger as ONE statement (issue 19, point 1).

L{activate_in_one} has the contract of L{core.saga.activate_in_one} and the
same effect on the database.  On PostgreSQL, when the credit goes to the
embedded ledger, it calls the server-side function C{ivoms_activate}
(installed by migration 0004, given the attempt's fraud counter by 0005): bar check, reservation, credit and conclusion
run in the server within the caller's transaction, so the unit of work costs
one round trip instead of one per statement.  Its C{many} attribute
(L{activate_many}) lets the unit runner send every such unit of a group
commit as one C{ivoms_activate_many} statement: one round trip per group.

Everything else, and every refusal (barred, unknown, used, expired ...),
takes the portable path of L{core.saga}; a refusal has written nothing when it
falls back, so the portable path decides and records it exactly as on SQLite.
"""
from __future__ import annotations

from core.interfaces import IStoreLedger
from core.billing import CreditOutcome
from core.results import ResultCode as R
from core.saga import attempt_lock_key as saga_lock_key

CALL = "SELECT * FROM ivoms_activate(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

CALL_MANY = ("SELECT * FROM ivoms_activate_many(%s::text[], %s::text[], %s::text[], %s::bytea[], "
             "%s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::boolean[], "
             "%s::boolean[], %s::text[])")

_PRESENT = ("SELECT to_regprocedure('ivoms_activate(text, text, text, bytea, text, text, text, "
            "text, bigint, boolean, boolean, text)') IS NOT NULL AND to_regprocedure("
            "'ivoms_activate_many(text[], text[], text[], bytea[], text[], text[], text[], text[], "
            "bigint[], boolean[], boolean[], text[])') IS NOT NULL")


def call_args(a, auto_create: bool, reset_on_success: bool) -> tuple:
    """The parameters of C{ivoms_activate} for the attempt C{a} (in order)."""
    return (a.txn_id, a.msisdn, a.account, a.blind_index, a.channel, a.channel_ref,
            a.operator_user, a.source, a.now, auto_create, reset_on_success, a.fraud_subject)


def in_store_ledger(credit_in):
    """The connector behind the bound method C{credit_in} when it provides
    L{IStoreLedger} (its credit is plain SQL in the store), else None."""
    owner = getattr(credit_in, "__self__", None)     # a bound method's object
    return owner if IStoreLedger.providedBy(owner) else None


def usable(tx, credit_in) -> bool:
    """Whether the one-statement path applies: PostgreSQL, the embedded ledger,
    and a database that has the functions (checked once per store)."""
    if tx.is_sqlite or in_store_ledger(credit_in) is None:
        return False
    store = tx.store
    has = getattr(store, "has_activate_function", None)
    if has is None:
        has = store.has_activate_function = bool(tx.execute_raw(_PRESENT).scalar())
    return has


def _unit(a, fraud_settings, credit_in, reset_on_success, after_factory=None):
    """The arguments of one unit, in L{activate_in_one}'s order."""
    return a, fraud_settings, credit_in, reset_on_success, after_factory


def _conclude(tx, row, a, fraud_settings, credit_in, reset_on_success, after_factory):
    """What L{activate_in_one} returns, from the function's answer C{row}."""
    from core import saga
    (status, serial, batch_id, amount, currency, days, type_code, loyalty, has_failures,
     balance, expires, code) = row
    if status == "refused":
        return saga.activate_in_one(tx, a, fraud_settings, credit_in, reset_on_success,
                                    after_factory)
    out = saga.Reservation(a.txn_id, serial, batch_id, amount, currency, days, type_code,
                           loyalty, has_failures)
    if status != "credited":
        return saga.ConcludedInOne(out, CreditOutcome(False, R(code), detail="ledger: rejected"))
    after = after_factory(out) if after_factory is not None else None
    rewards = after(tx) if after is not None else None
    return saga.ConcludedInOne(out, CreditOutcome(True, R.SUCCESS, balance, expires), rewards)


def activate_in_one(tx, a, fraud_settings, credit_in, reset_on_success: bool, after_factory=None):
    """L{core.saga.activate_in_one}, in one statement where L{usable}.

    @return: as L{core.saga.activate_in_one}.
    """
    if not usable(tx, credit_in):
        from core import saga
        return saga.activate_in_one(tx, a, fraud_settings, credit_in, reset_on_success,
                                    after_factory)
    ledger = in_store_ledger(credit_in)
    row = tx.execute_raw(CALL, call_args(a, bool(ledger.auto_create), reset_on_success)).first()
    return _conclude(tx, row, a, fraud_settings, credit_in, reset_on_success, after_factory)


def activate_many(tx, calls: list) -> list:
    """Run the units C{calls} (a list of (args, kwargs) of L{activate_in_one})
    in order, as few statements as possible: one for the whole group, plus one
    more after each refusal (the group stops there, the refusal takes the
    portable path, and the rest goes on in a new statement).

    @return: what L{activate_in_one} returned for each unit, in order.
    @raise Exception: what a unit raised; the caller then runs each unit alone.
    """
    units = [_unit(*args, **kw) for args, kw in calls]
    if len(units) == 1 or not all(usable(tx, u[2]) for u in units):
        return [activate_in_one(tx, *u) for u in units]
    results: list = []
    while len(results) < len(units):
        todo = units[len(results):]
        cols = list(zip(*(call_args(u[0], bool(in_store_ledger(u[2]).auto_create), u[3])
                          for u in todo)))
        rows = tx.execute_raw(CALL_MANY, tuple(list(c) for c in cols)).rows
        if not rows:
            raise RuntimeError("ivoms_activate_many answered nothing")
        for u, row in zip(todo, rows):
            results.append(_conclude(tx, row, *u))
    return results


activate_in_one.many = activate_many
activate_in_one.lock_key = saga_lock_key
