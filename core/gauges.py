"""Figures read for monitoring: stock by type and state, fraud bars (units of work, read-only).

Each function runs inside the caller's read transaction and returns plain
tuples; none returns an MSISDN, an HRN or a source's identity, only counts.
"""
from __future__ import annotations

from sqlalchemy import bindparam, case, func, select

from core.schema import batch, fraud_counter as fc, voucher

_STOCK = select(batch.c.type_code, voucher.c.state, func.count()) \
    .select_from(voucher.join(batch, batch.c.id == voucher.c.batch_id)) \
    .group_by(batch.c.type_code, voucher.c.state)

_KIND = case((fc.c.subject.like("msisdn:%"), "msisdn"), else_="source")
_FRAUD = select(_KIND, func.count(),
                func.sum(case((fc.c.barred_until > bindparam("now"), 1), else_=0))) \
    .group_by(_KIND)


def stock(tx) -> list[tuple[str, str, int]]:
    """(voucher type, state, count) for every pair that has vouchers."""
    return [(r[0], r[1], int(r[2])) for r in tx.execute(_STOCK).rows]


def fraud(tx, now: int) -> list[tuple[str, int, int]]:
    """(kind, subjects with failures counted, subjects barred at C{now}) per kind
    (C{msisdn} or C{source})."""
    return [(r[0], int(r[1]), int(r[2] or 0)) for r in tx.execute(_FRAUD, {"now": now}).rows]


def figures(tx, now: int) -> dict:
    """Both readings of this module in one transaction: C{{"stock": ..., "fraud": ...}}."""
    return {"stock": stock(tx), "fraud": fraud(tx, now)}
