"""The operators' voucher desk: find vouchers, summarise one, and change vouchers by hand
after a previewed count (the GUI's housekeeping and customer care pages, DESIGN §8).

Every function is a unit of work (C{fn(tx, ...)}); none returns an HRN in
clear (L{core.vouchers.get_voucher} keeps it encrypted).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select, true

from core.audit import audit
from core.schema import batch, voucher
from core.vouchers import Selection, TransitionResult, count_by_state, extend_expiry, set_state

#: The most vouchers one L{search} gives by default.
LIMIT = 200

#: The hand changes an operator may apply, and the states each one changes.
CHANGES = {
    "block": ("generated", "available", "expired"),
    "unblock": ("blocked",),
    "available": ("generated", "expired"),
    "extend": ("generated", "available", "blocked", "expired"),
}

_SEARCH_KEYS = ("serial", "batch_id", "type_code", "state", "expires_at", "used_by", "used_at",
                "reason", "exported")


@dataclass(frozen=True, slots=True)
class Found:
    """What L{search} found.

    @ivar vouchers: dicts keyed by C{serial, batch_id, type_code, state,
        expires_at, used_by, used_at, reason, exported}, by serial.
    @ivar more: whether more vouchers matched than were given.
    """

    vouchers: list
    more: bool


def search(tx, *, serial: int | None = None, rng: tuple[int, int] | None = None,
           batch_id: int | None = None, state: str | None = None, msisdn: str | None = None,
           limit: int = LIMIT) -> Found:
    """Vouchers matching every given criterion, by serial (never the HRN).

    @param rng: a serial range (first, last), both included.
    @param msisdn: the subscriber who used (or reserved) the voucher.
    @return: L{Found}: at most C{limit} vouchers, and whether more matched.
    """
    q = select(voucher.c.serial, voucher.c.batch_id, batch.c.type_code, voucher.c.state,
               voucher.c.expires_at, voucher.c.used_by, voucher.c.used_at, voucher.c.reason,
               voucher.c.exported) \
        .select_from(voucher.join(batch, voucher.c.batch_id == batch.c.id))
    cond = []
    if serial is not None:
        cond.append(voucher.c.serial == serial)
    if rng is not None:
        cond.append(voucher.c.serial.between(*rng))
    if batch_id is not None:
        cond.append(voucher.c.batch_id == batch_id)
    if state:
        cond.append(voucher.c.state == state)
    if msisdn:
        cond.append(voucher.c.used_by == msisdn)
    q = q.where(and_(true(), *cond)).order_by(voucher.c.serial).limit(limit + 1)
    rows = [dict(zip(_SEARCH_KEYS, r)) for r in tx.execute(q).rows]
    return Found(rows[:limit], len(rows) > limit)


def summary(tx, serial: int) -> dict | None:
    """C{serial, state, expires_at, used_by, used_at} of voucher C{serial}, or None."""
    r = tx.execute(select(voucher.c.serial, voucher.c.state, voucher.c.expires_at,
                          voucher.c.used_by, voucher.c.used_at)
                   .where(voucher.c.serial == serial)).first()
    return dict(zip(("serial", "state", "expires_at", "used_by", "used_at"), r)) if r else None


def preview_change(tx, sel: Selection, action: str, now: int) -> dict:
    """The vouchers of C{sel} by state, and how many C{action} would change now.

    @param action: a key of L{CHANGES}.
    @return: C{{"by_state": {state: count}, "total": n, "will_change": n}}.
    """
    by_state = count_by_state(tx, sel)
    sources = CHANGES[action]
    if action == "available":
        will = tx.execute(select(func.count()).select_from(voucher).where(and_(
            sel.where(), voucher.c.state.in_(sources), voucher.c.expires_at > now,
            voucher.c.batch_id.in_(select(batch.c.id).where(batch.c.state == "ready")
                                   .scalar_subquery())))).scalar()
    else:
        will = sum(n for s, n in by_state.items() if s in sources)
    return {"by_state": by_state, "total": sum(by_state.values()), "will_change": will}


def apply_change(tx, sel: Selection, action: str, *, reason: str | None,
                 new_expiry: int | None, actor: str, origin: str | None,
                 now: int) -> TransitionResult:
    """Apply C{action} to the vouchers of C{sel} and audit it.

    @param action: a key of L{CHANGES}.
    @param new_expiry: the new expiry (epoch ms) for C{extend}.
    @return: the L{TransitionResult} (changed and skipped counts).
    """
    if action == "extend":
        res = extend_expiry(tx, sel, new_expiry, actor=actor, now=now, reason=reason)
    else:
        res = set_state(tx, sel, {"block": "blocked", "unblock": "unblock",
                                  "available": "available"}[action],
                        actor=actor, reason=reason, now=now)
    detail = {"action": action, "changed": res.changed, "skipped": res.skipped}
    if reason:
        detail["reason"] = reason
    if new_expiry is not None:
        detail["expires_at"] = new_expiry
    audit(tx, at=now, actor=actor, action="voucher." + action, target=sel.describe(),
          origin=origin, detail=detail)
    return res
