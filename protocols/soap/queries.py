"""The SOAP channel's read queries and audit rows: the one place a channel reads the store.

Adapters never touch the store (DESIGN §1), except here: GetTransactionStatus
and GetVoucherStatus need to read it, and every SOAP call leaves an audit
row.  Each method submits one unit of work to the node's
L{core.units.UnitRunner} using the L{core.schema} tables; nothing here
selects or returns a voucher's HRN, ciphertext or blind index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select

from core.audit import audit
from core.schema import batch, txn, voucher

_TXN_COLUMNS = (txn.c.id, txn.c.state, txn.c.result_code, txn.c.channel, txn.c.channel_ref,
                txn.c.msisdn, txn.c.account, txn.c.serial, txn.c.amount, txn.c.currency,
                txn.c.validity_days, txn.c.started_at, txn.c.finished_at, txn.c.source)
_TXN_KEYS = ("id", "state", "result_code", "channel", "channel_ref", "msisdn", "account",
             "serial", "amount", "currency", "validity_days", "started_at", "finished_at",
             "source")

_BY_ID = select(*_TXN_COLUMNS).where(
    and_(txn.c.id == bindparam("id"), txn.c.kind == "activation"))
_BY_REF_ALL = select(*_TXN_COLUMNS).where(
    and_(txn.c.channel_ref == bindparam("ref"), txn.c.kind == "activation")) \
    .order_by(txn.c.started_at.desc()).limit(1)
_BY_REF_OWN = select(*_TXN_COLUMNS).where(
    and_(txn.c.channel_ref == bindparam("ref"), txn.c.kind == "activation",
         txn.c.channel == bindparam("channel"), txn.c.source == bindparam("source"))) \
    .order_by(txn.c.started_at.desc()).limit(1)
_VOUCHER = select(voucher.c.serial, voucher.c.state, batch.c.type_code, voucher.c.batch_id,
                  voucher.c.expires_at) \
    .select_from(voucher.join(batch, voucher.c.batch_id == batch.c.id)) \
    .where(voucher.c.serial == bindparam("serial"))


@dataclass(frozen=True)
class AuditEntry:
    """One audit row (see L{core.audit.audit}); C{detail} never holds an HRN."""

    at: int
    actor: str
    action: str
    target: str | None = None
    origin: str | None = None
    detail: dict | None = None


def _transaction(tx, txn_id, ref, channel, source):
    if txn_id is not None:
        row = tx.execute(_BY_ID, {"id": txn_id}).first()
    elif source is None:
        row = tx.execute(_BY_REF_ALL, {"ref": ref}).first()
    else:
        row = tx.execute(_BY_REF_OWN, {"ref": ref, "channel": channel, "source": source}).first()
    if row is None:
        return None
    found = dict(zip(_TXN_KEYS, row))
    if source is not None and (found["channel"] != channel or found["source"] != source):
        return None
    return found


def _voucher(tx, serial):
    row = tx.execute(_VOUCHER, {"serial": serial}).first()
    if row is None:
        return None
    return dict(zip(("serial", "state", "type_code", "batch_id", "expires_at"), row))


def _audit(tx, entry: AuditEntry):
    audit(tx, at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
          origin=entry.origin, detail=entry.detail)


class SoapQueries:
    """Read units and audit rows for the SOAP channel."""

    def __init__(self, runner):
        """@param runner: the node's L{core.units.UnitRunner}."""
        self.runner = runner

    def transaction(self, *, txn_id: str | None = None, channel_ref: str | None = None,
                    channel: str = "soap", source: str | None = None):
        """The activation transaction with id C{txn_id}, else the latest with
        C{channel_ref}.

        @param source: when given, only a transaction of C{channel} entered
            by this source (the SOAP client's name) is returned.
        @return: a Deferred firing with a dict of the row's fields, or None.
        """
        return self.runner.submit(_transaction, txn_id, channel_ref, channel, source)

    def voucher(self, serial: int):
        """@return: a Deferred firing with C{serial, state, type_code,
        batch_id, expires_at} of the voucher, or None."""
        return self.runner.submit(_voucher, serial)

    def record(self, entry: AuditEntry):
        """Write one audit row.  @return: a Deferred firing once it is committed."""
        return self.runner.submit(_audit, entry)
