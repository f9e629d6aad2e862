"""The transactions query: the one place activation and reward transactions are read."""
from __future__ import annotations

from sqlalchemy import and_, or_, select, true
from zope.interface import implementer

from core.interfaces import ITransactionQueries
from core.results import DEFAULT_TEXT, ResultCode
from core.schema import txn

LIMIT = 200
_TXN_COLS = (txn.c.id, txn.c.kind, txn.c.started_at, txn.c.finished_at, txn.c.channel,
             txn.c.msisdn, txn.c.account, txn.c.serial, txn.c.state, txn.c.result_code,
             txn.c.amount, txn.c.currency, txn.c.operator_user, txn.c.channel_ref, txn.c.detail)


def result_text(code: int) -> str:
    """Name and default text of result ``code`` (or "unknown result N").

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
    @return: one dict per transaction, keyed by column name, plus ``result``
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


@implementer(ITransactionQueries)
class TransactionQueries:
    """L{ITransactionQueries} over a read-only L{core.units.UnitRunner}.

    @ivar runner: runs the query units.
    """

    def __init__(self, runner):
        """
        @param runner: a L{core.units.UnitRunner} (read-only is enough).
        """
        self.runner = runner

    def transactions(self, msisdn=None, serial=None, start=None, end=None, limit=LIMIT):
        """See L{ITransactionQueries.transactions}."""
        return self.runner.submit(transactions, msisdn=msisdn, serial=serial, start=start,
                                  end=end, limit=limit)
