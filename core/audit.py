"""The audit log: who did what, when, from where (DESIGN §10)."""
from __future__ import annotations

import json

from core.schema import audit_log


def audit(tx, *, at: int, actor: str, action: str, target: str | None = None,
          origin: str | None = None, detail: dict | None = None) -> None:
    """Append one audit entry inside the caller's unit of work.

    C{detail} must never hold an HRN, key or password.
    """
    tx.insert(audit_log, {"at": at, "actor": actor, "action": action, "target": target,
                          "origin": origin,
                          "detail": json.dumps(detail, sort_keys=True) if detail else None})
