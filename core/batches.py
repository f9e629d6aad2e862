"""Batch reads for operators: the newest batches and one batch's detail (the GUI's batch pages).

Both are read units of work (C{fn(tx, ...)}).
"""
from __future__ import annotations

from sqlalchemy import bindparam, func, select

from core.schema import batch, voucher

_COLS = (batch.c.id, batch.c.type_code, batch.c.count, batch.c.first_serial, batch.c.last_serial,
         batch.c.state, batch.c.expires_at, batch.c.created_at, batch.c.finished_at,
         batch.c.requested_by, batch.c.generated, batch.c.face_value, batch.c.currency,
         batch.c.key_id, batch.c.message)
_NAMES = tuple(c.name for c in _COLS)

_ONE = select(*_COLS).where(batch.c.id == bindparam("id"))
_STATES = select(voucher.c.state, func.count(), func.sum(voucher.c.exported)) \
    .where(voucher.c.batch_id == bindparam("id")).group_by(voucher.c.state)


def list_batches(tx, before: int | None, limit: int) -> list[dict]:
    """The newest C{limit} batches with an id below C{before} (None: the newest).

    @return: one dict per batch, keyed by the batch's column names (C{id},
        C{type_code}, C{count}, C{first_serial}, C{last_serial}, C{state}, ...).
    """
    q = select(*_COLS).order_by(batch.c.id.desc()).limit(limit)
    if before is not None:
        q = q.where(batch.c.id < before)
    return [dict(zip(_NAMES, r)) for r in tx.execute(q).rows]


def batch_detail(tx, batch_id: int) -> dict | None:
    """Batch C{batch_id} with its vouchers counted by state and how many were exported.

    @return: the batch's dict (as L{list_batches}) plus C{states} (state ->
        count) and C{exported}, or None when there is no such batch.
    """
    r = tx.execute(_ONE, {"id": batch_id}).first()
    if r is None:
        return None
    b = dict(zip(_NAMES, r))
    rows = tx.execute(_STATES, {"id": batch_id}).rows
    b["states"] = {s: n for s, n, _ in rows}
    b["exported"] = sum(int(e or 0) for _, _, e in rows)
    return b
