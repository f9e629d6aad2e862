"""A channel's audit row for one activation, written in the activation's own unit of work.

A channel may hand L{core.activation.ActivationService.activate} an
L{core.queries.AuditEntry}; the row it writes is that entry with the
answer's C{code}, C{txn_id} and C{serial} added to its detail.  When the
activation is one unit of work (the embedded ledger), L{audited} wraps that
unit: the row commits with the activation or not at all, and costs no unit
(no group commit) of its own.  Otherwise the service writes it as a unit of
its own once the answer is known (L{write}).
"""
from __future__ import annotations

from core.lock_order import delegated
from core.audit import audit
from core.inbox import Replay
from core.results import ResultCode as R
from core.saga import ConcludedInOne, Refusal


def with_outcome(entry, code, txn_id, serial) -> dict:
    """The detail of C{entry}'s row once the answer is C{code} (C{txn_id}, C{serial})."""
    detail = dict(entry.detail or {})
    detail["code"] = int(code)
    detail["txn_id"] = txn_id
    detail["serial"] = serial
    return detail


def outcome_of(value, txn_id):
    """C{(code, txn_id, serial)} of the answer a first unit's C{value} decides, or None
    when that unit did not conclude the activation (a reservation still to credit).

    @param value: what L{core.inbox.keyed} or L{core.saga.activate_in_one} returned.
    @param txn_id: the attempt's transaction id.
    """
    if isinstance(value, Replay):
        r = value.result
        return r.code, r.txn_id, r.serial
    if not isinstance(value, ConcludedInOne):
        return None
    reserved, outcome = value.reserved, value.outcome
    if outcome is None:
        if isinstance(reserved, Refusal):
            return reserved.code, txn_id, reserved.serial
        return None
    return (R.SUCCESS if outcome.credited else outcome.code), txn_id, reserved.serial


def write(tx, entry, code, txn_id, serial) -> None:
    """Write C{entry}'s row for the answer C{code} (a unit of work, or part of one)."""
    audit(tx, at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
          origin=entry.origin, detail=with_outcome(entry, code, txn_id, serial))


def audited(tx, entry, txn_id, unit, *args):
    """Run the activation's unit C{unit(tx, *args)} and, when it concludes the
    activation, write C{entry}'s row in the same transaction.

    @return: C{(value, written)}: what C{unit} returned, and whether the row was written.
    """
    value = unit(tx, *args)
    done = outcome_of(value, txn_id)
    if done is None:
        return value, False
    write(tx, entry, *done)
    return value, True


def _audited_many(tx, calls: list) -> list:
    """L{audited} for each of C{calls} (a list of (args, kwargs)), in order; units of
    one function that has a C{many} attribute run as one C{many} call (see
    L{core.units}), then their rows are written."""
    units = [args[2] for args, _ in calls]
    first = units[0]
    many = getattr(first, "many", None)
    if many is None or any(u is not first for u in units) or any(kw for _, kw in calls):
        return [audited(tx, *args, **kw) for args, kw in calls]
    values = many(tx, [(args[3:], {}) for args, _ in calls])
    out = []
    for (args, _), value in zip(calls, values):
        entry, txn_id = args[0], args[1]
        done = outcome_of(value, txn_id)
        if done is not None:
            write(tx, entry, *done)
        out.append((value, done is not None))
    return out


audited.many = _audited_many


audited.lock_key = delegated(2)    # the activation's unit, after the entry and txn id
