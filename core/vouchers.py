"""Voucher state transitions as conditional UPDATEs, each with its history (DESIGN §3).

Every function here is a unit of work (C{fn(tx, ...)}) or a helper of one.
A transition changes only vouchers still in the state it expects
(C{... WHERE state = <expected>}), so two nodes or two channels can never
both win; vouchers in any other state are counted as skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, select, update

from core.schema import batch, voucher, voucher_history
from core.states import ADMIN_SOURCES, VoucherState as S

CHUNK = 5000


class SelectionError(ValueError):
    """A voucher selection is malformed (empty range, unknown batch...)."""


@dataclass(frozen=True)
class Selection:
    """Which vouchers an operation targets: one serial, a serial range, or a batch."""

    first: int | None = None
    last: int | None = None
    batch_id: int | None = None

    @classmethod
    def serial(cls, serial: int) -> "Selection":
        return cls(first=serial, last=serial)

    @classmethod
    def range(cls, first: int, last: int) -> "Selection":
        if first > last:
            raise SelectionError("range %d-%d is empty: the first serial is after the last" % (first, last))
        return cls(first=first, last=last)

    @classmethod
    def of_batch(cls, batch_id: int) -> "Selection":
        return cls(batch_id=batch_id)

    def where(self):
        """The SQL condition selecting these vouchers."""
        if self.batch_id is not None:
            return in_batch(self.batch_id)
        return voucher.c.serial.between(self.first, self.last)

    def describe(self) -> str:
        if self.batch_id is not None:
            return "batch %d" % self.batch_id
        if self.first == self.last:
            return "serial %d" % self.first
        return "serials %d-%d" % (self.first, self.last)


def in_batch(batch_id: int):
    """Condition for the vouchers of C{batch_id}: its serial range (a primary-key
    range scan; there is no index on C{voucher.batch_id})."""
    b = batch.alias("b")
    return and_(
        voucher.c.serial.between(
            select(b.c.first_serial).where(b.c.id == batch_id).scalar_subquery(),
            select(b.c.last_serial).where(b.c.id == batch_id).scalar_subquery()),
        voucher.c.batch_id == batch_id)


@dataclass(frozen=True)
class TransitionResult:
    """How many vouchers a transition changed, and how many it skipped."""

    changed: int
    skipped: int
    by_source: dict


def count_by_state(tx, sel: Selection) -> dict:
    """C{{state: count}} of the vouchers C{sel} selects (a preview)."""
    rows = tx.execute(select(voucher.c.state, func.count()).where(sel.where())
                      .group_by(voucher.c.state)).rows
    return {state: n for state, n in rows}


def _record(tx, serials, at, actor, from_state, to_state, reason) -> None:
    tx.insert_many(voucher_history, [
        {"serial": s, "at": at, "actor": actor, "from_state": from_state,
         "to_state": to_state, "reason": reason} for s in serials])


def _chunks(sel: Selection):
    """Split a selection into serial sub-ranges so RETURNING lists stay small."""
    if sel.batch_id is not None:
        yield sel.where()
        return
    lo = sel.first
    while lo <= sel.last:
        hi = min(lo + CHUNK - 1, sel.last)
        yield voucher.c.serial.between(lo, hi)
        lo = hi + 1


def set_state(tx, sel: Selection, target: str, *, actor: str, reason: str | None,
              now: int, sources=None) -> TransitionResult:
    """Move the vouchers of C{sel} to C{target} from the states that allow it.

    C{target} is one of C{available}, C{blocked}, C{expired},
    C{generated}, or C{unblock} (back to the state recorded at block time).
    Making vouchers available needs their batch to be C{ready} and their
    expiry in the future.

    @param sources: restrict the source states (default: every allowed one).
    @return: counts of changed and skipped vouchers.
    """
    if target not in ("unblock",) + tuple(s.value for s in ADMIN_SOURCES):
        raise SelectionError("vouchers cannot be set to %r by hand (allowed: available, blocked, "
                             "expired, generated, unblock)" % (target,))
    total = sum(count_by_state(tx, sel).values())
    by_source: dict = {}
    if target == "unblock":
        for prev in (S.GENERATED, S.AVAILABLE, S.EXPIRED):
            n = 0
            for cond in _chunks(sel):
                serials = [r[0] for r in tx.execute(
                    update(voucher).where(and_(cond, voucher.c.state == S.BLOCKED.value,
                                               voucher.c.prev_state == prev.value))
                    .values(state=prev.value, prev_state=None, reason=None)
                    .returning(voucher.c.serial)).rows]
                _record(tx, serials, now, actor, S.BLOCKED.value, prev.value, reason)
                n += len(serials)
            if n:
                by_source[S.BLOCKED.value + "->" + prev.value] = n
    else:
        tgt = S(target)
        allowed = ADMIN_SOURCES[tgt]
        for src in (sources or allowed):
            src = S(src)
            if src not in allowed:
                continue
            values = {"state": tgt.value}
            extra = []
            if tgt is S.BLOCKED:
                values.update(prev_state=src.value, reason=reason)
            if tgt is S.AVAILABLE:
                extra.append(voucher.c.expires_at > now)
                extra.append(voucher.c.batch_id.in_(
                    select(batch.c.id).where(batch.c.state == "ready").scalar_subquery()))
            n = 0
            for cond in _chunks(sel):
                serials = [r[0] for r in tx.execute(
                    update(voucher).where(and_(cond, voucher.c.state == src.value, *extra))
                    .values(**values).returning(voucher.c.serial)).rows]
                _record(tx, serials, now, actor, src.value, tgt.value, reason)
                n += len(serials)
            if n:
                by_source[src.value] = n
    changed = sum(by_source.values())
    return TransitionResult(changed, total - changed, by_source)


def extend_expiry(tx, sel: Selection, new_expires_at: int, *, actor: str, now: int,
                  reason: str | None = None) -> TransitionResult:
    """Set the expiry of not-yet-used vouchers of C{sel} to C{new_expires_at}.

    Only generated, available, blocked and expired vouchers change; expired
    ones stay expired until made available explicitly.
    """
    total = sum(count_by_state(tx, sel).values())
    n = 0
    for cond in _chunks(sel):
        rows = tx.execute(
            update(voucher).where(and_(cond, voucher.c.state.in_(
                [S.GENERATED.value, S.AVAILABLE.value, S.BLOCKED.value, S.EXPIRED.value])))
            .values(expires_at=new_expires_at).returning(voucher.c.serial, voucher.c.state)).rows
        for serial, state in rows:
            _record(tx, [serial], now, actor, state, state, reason or "expiry extended")
        n += len(rows)
    return TransitionResult(n, total - n, {"extended": n})


_VOUCHER_BY_SERIAL = select(voucher).where(voucher.c.serial == bindparam("serial"))
_HISTORY = select(voucher_history.c.at, voucher_history.c.actor, voucher_history.c.from_state,
                  voucher_history.c.to_state, voucher_history.c.reason) \
    .where(voucher_history.c.serial == bindparam("serial")) \
    .order_by(voucher_history.c.at, voucher_history.c.id)
_BATCH = select(batch).where(batch.c.id == bindparam("id"))


def get_voucher(tx, serial: int) -> dict | None:
    """The voucher C{serial} with its batch's terms and its history, or None.

    The HRN stays encrypted in C{hrn_ct}; callers never show it.
    """
    row = tx.execute(_VOUCHER_BY_SERIAL, {"serial": serial}).first()
    if row is None:
        return None
    v = dict(zip(voucher.c.keys(), row))
    b = tx.execute(_BATCH, {"id": v["batch_id"]}).first()
    v["batch"] = dict(zip(batch.c.keys(), b))
    v["history"] = [dict(zip(("at", "actor", "from_state", "to_state", "reason"), h))
                    for h in tx.execute(_HISTORY, {"serial": serial}).rows]
    return v
