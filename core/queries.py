"""The transactions query: the one place activation and reward transactions are read."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select, true
from zope.interface import implementer

from core.audit import audit
from core.interfaces import ITransactionQueries
from core.results import DEFAULT_TEXT, ResultCode
from core.schema import batch, txn, voucher

LIMIT = 200
_TXN_COLS = (txn.c.id, txn.c.kind, txn.c.started_at, txn.c.finished_at, txn.c.channel,
             txn.c.msisdn, txn.c.account, txn.c.serial, txn.c.state, txn.c.result_code,
             txn.c.amount, txn.c.currency, txn.c.operator_user, txn.c.channel_ref, txn.c.detail)


def result_text(code: int) -> str:
    """Name and default text of result C{code} (or "unknown result N").

    @param code: a numeric result code.
    """
    try:
        rc = ResultCode(code)
    except ValueError:
        return "unknown result %d" % code
    return "%s: %s" % (rc.name, DEFAULT_TEXT[rc])


def transactions(tx, *, msisdn=None, serial=None, start=None, end=None, limit=LIMIT) -> list[dict]:
    """Transactions (activations and loyalty rewards) matching every criterion, newest first.

    @param tx: the unit of work's transaction.
    @param msisdn: the subscriber (as sender or as credited account), or None.
    @param serial: the voucher serial, or None.
    @param start: earliest start (epoch ms, inclusive), or None.
    @param end: latest start (epoch ms, exclusive), or None.
    @param limit: at most this many rows.
    @return: one dict per transaction, keyed by column name, plus C{result}
        (the result code's name and text).
    """
    cond = []
    if msisdn:
        cond.append(or_(txn.c.msisdn == msisdn, txn.c.account == msisdn))
    if serial is not None:
        cond.append(txn.c.serial == serial)
    if start is not None:
        cond.append(txn.c.started_at >= start)
    if end is not None:
        cond.append(txn.c.started_at < end)
    q = select(*_TXN_COLS).where(and_(true(), *cond)).order_by(txn.c.started_at.desc()).limit(limit)
    out = []
    for r in tx.execute(q).rows:
        d = dict(zip((c.name for c in _TXN_COLS), r))
        d["result"] = result_text(d["result_code"])
        out.append(d)
    return out


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


@implementer(ITransactionQueries)
class TransactionQueries:
    """L{ITransactionQueries} over a read-only L{core.units.UnitRunner}.

    @ivar runner: runs the query units.
    """

    def __init__(self, runner):
        """
        @param runner: a L{core.units.UnitRunner}; L{record} writes, so a read-only
            runner serves only the reads.
        """
        self.runner = runner

    def transactions(self, msisdn=None, serial=None, start=None, end=None, limit=LIMIT):
        """See L{ITransactionQueries.transactions}."""
        return self.runner.submit(transactions, msisdn=msisdn, serial=serial, start=start,
                                  end=end, limit=limit)

    def transaction(self, txn_id: str | None = None, channel_ref: str | None = None,
                    channel: str = "soap", source: str | None = None):
        """The activation transaction with id C{txn_id}, else the latest with
        C{channel_ref}.

        @param source: when given, only a transaction of C{channel} entered
            by this source (the SOAP client's name) is returned.
        @return: a Deferred firing with a dict of the row's fields, or None.
        """
        return self.runner.submit(_transaction, txn_id=txn_id, ref=channel_ref, channel=channel,
                                  source=source)

    def voucher(self, serial: int):
        """@return: a Deferred firing with C{serial, state, type_code,
        batch_id, expires_at} of the voucher, or None."""
        return self.runner.submit(_voucher, serial)

    def record(self, entry: AuditEntry):
        """Write one audit row.  @return: a Deferred firing once it is committed."""
        return self.runner.submit(_audit, entry)
