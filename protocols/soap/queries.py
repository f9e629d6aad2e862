"""The SOAP channel's read queries and audit rows, served by the core's L{core.queries}.

GetTransactionStatus and GetVoucherStatus read through
L{core.interfaces.ITransactionQueries}; nothing here touches the store.
"""
from __future__ import annotations

from core.queries import AuditEntry, TransactionQueries as SoapQueries

__all__ = ["AuditEntry", "SoapQueries"]
