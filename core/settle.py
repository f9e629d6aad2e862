"""An operator settles a pending activation by hand, when billing cannot say what became of it.

For connectors without a lookup of a past credit (UCIP with C{lookup = "none"}):
the operator checks the billing system (e.g. the AIR's records for the
originTransactionID) and records the outcome.  Conditional like every
saga step: a transaction no longer pending is left as it is.
"""
from __future__ import annotations

from sqlalchemy import bindparam, select

from core import saga
from core.results import ResultCode as R
from core.schema import txn

_ROW = select(txn.c.serial, txn.c.msisdn, txn.c.kind, txn.c.state).where(
    txn.c.id == bindparam("txn_id"))


def settle(tx, txn_id: str, credited: bool, now: int, actor: str, note: str = "") -> str:
    """Conclude pending activation C{txn_id} as credited (voucher used) or not (released).

    @param credited: what the billing system's records show.
    @param actor: who settles it (recorded in the voucher history).
    @return: C{"used"}, C{"released"}, C{"unknown"} (no such transaction),
        C{"not pending"} (already concluded) or C{"not an activation"}.
    """
    row = tx.execute(_ROW, {"txn_id": txn_id}).first()
    if row is None:
        return "unknown"
    serial, msisdn, kind, state = row
    if state != "pending":
        return "not pending"
    if kind != "activation" or serial is None:
        return "not an activation"
    why = "settled by operator%s" % (": " + note if note else "")
    if credited:
        done = saga.commit_success(tx, txn_id=txn_id, serial=serial, msisdn=msisdn, now=now,
                                   billing_ms=None, detail={"settled": True, "note": note or None},
                                   reset_fraud=False, actor=actor)
        return "used" if done.changed else "not pending"
    changed = saga.release(tx, txn_id, serial, R.BILLING_REJECTED, now, None, why, actor)
    return "released" if changed else "not pending"
