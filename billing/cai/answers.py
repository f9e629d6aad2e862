"""How a CAI lookup answer is read: which fields and values mean credited or refused (configurable).

The lookup's answer is C{RESP:<code>[:NAME,VALUE...];}.  Its code is read
first: a not-found code -> no record; a code that is neither success nor a
refusal -> unknown.  A refusal code (unknown subscriber, refused) without a
status field concludes as that refusal.  A success code:

- with the status field (default C{STATUS}): a value of C{credited_values}
  -> credited; of C{refused_values} -> refused with the code in C{code_field}
  (default C{CODE}; absent: 115); any other value -> unknown;
- without it (C{RESP:0;}): credited, unless C{status_required}.

A credited answer may carry the balance (C{balance_field}, minor units) and
the expiry (C{expiry_field}, C{YYYYMMDDhhmmss} UTC).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CaiLookupAnswer:
    """Field names and values of the lookup's answer (see the module doc)."""

    status_field: str = "STATUS"
    credited_values: tuple[str, ...] = ("CREDITED",)
    refused_values: tuple[str, ...] = ("REFUSED",)
    code_field: str = "CODE"
    status_required: bool = False
    balance_field: str = "BALANCE"
    expiry_field: str = "EXPIRY"

    def __post_init__(self):
        if set(self.credited_values) & set(self.refused_values):
            raise ValueError("lookup_credited_values and lookup_refused_values overlap")
        if self.status_required and not self.status_field:
            raise ValueError("lookup_status_required needs lookup_status_field")
