"""The audit log: who did what, when, from where (DESIGN §10)."""
from __future__ import annotations

import json

from sqlalchemy import and_, select, true

from core.schema import audit_log

#: The most entries one L{entries} call gives by default (a page of the GUI).
PAGE = 100
#: C{json.dumps(detail, sort_keys=True)}, without building an encoder per row
_detail_json = json.JSONEncoder(sort_keys=True).encode


def audit(tx, *, at: int, actor: str, action: str, target: str | None = None,
          origin: str | None = None, detail: dict | None = None) -> None:
    """Append one audit entry inside the caller's unit of work.

    C{detail} must never hold an HRN, key or password.
    """
    tx.insert(audit_log, {"at": at, "actor": actor, "action": action, "target": target,
                          "origin": origin,
                          "detail": _detail_json(detail) if detail else None})


def entries(tx, *, actor: str | None = None, action: str | None = None,
            target: str | None = None, start: int | None = None, end: int | None = None,
            before: int | None = None, limit: int = PAGE) -> list[dict]:
    """Audit entries matching every given filter, newest first (a read unit of work).

    @param actor: exactly this actor.
    @param action: actions starting with this text (C{voucher.} gives every
        voucher action; C{_} and C{%} match only themselves).
    @param target: targets containing this text.
    @param start: earliest time (epoch ms, inclusive).
    @param end: latest time (epoch ms, exclusive).
    @param before: only entries with an id below this one (the next page).
    @param limit: at most this many entries.
    @return: one dict per entry, keyed by column name (C{id}, C{at}, C{actor},
        C{action}, C{target}, C{origin}, C{detail}).
    """
    cond = []
    if actor:
        cond.append(audit_log.c.actor == actor)
    if action:
        cond.append(audit_log.c.action.startswith(action, autoescape=True))
    if target:
        cond.append(audit_log.c.target.contains(target, autoescape=True))
    if start is not None:
        cond.append(audit_log.c.at >= start)
    if end is not None:
        cond.append(audit_log.c.at < end)
    if before is not None:
        cond.append(audit_log.c.id < before)
    q = select(audit_log).where(and_(true(), *cond)).order_by(audit_log.c.id.desc()).limit(limit)
    return [dict(zip(audit_log.c.keys(), r)) for r in tx.execute(q).rows]
