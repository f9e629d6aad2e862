"""One test fake per core interface (L{core.interfaces}), shared by every test package.

Each fake provides its interface (checked with C{verifyObject} in
C{tests/unit/test_fakes.py}) and records what it was asked, so that an
adapter's tests need no store, no billing peer and no L{gateway.node.Node}.
"""
from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from core.billing import BillingUnavailable, CreditOutcome
from core.interfaces import IActivationService, IBillingPort, INumberingPlan, ITransactionQueries
from core.requests import ActivationResult
from core.results import ResultCode

#: What L{FakeActivationService} answers unless told otherwise.
SUCCESS = ActivationResult(ResultCode.SUCCESS, txn_id="abcdef0123456789", amount=1000,
                           currency="EUR", validity_days=30, new_expiry=1767225600000)


@implementer(IActivationService)
class FakeActivationService:
    """Records each request; answers at once, or holds the answers until L{release}.

    The answer to a request is, in this order: the next of C{results} (a
    queue), else C{result_for(req)} when given, else C{result}.  An answer
    that is an exception fails the Deferred.

    @ivar requests: every L{core.requests.ActivationRequest} received, in order.
    @ivar audits: the audit entries channels handed over with them (C{audit=}), in order.
    @ivar hold: when true, C{activate} returns an unfired Deferred kept in
        C{waiting} as C{(request, Deferred)}.
    """

    def __init__(self, result=SUCCESS, *, result_for=None, hold: bool = False) -> None:
        """
        @param result: the answer (an L{ActivationResult} or an exception).
        @param result_for: C{request -> answer}, used instead of C{result}.
        @param hold: see the class's C{hold}.
        """
        self.result = result
        self.result_for = result_for
        self.results: list = []
        self.hold = hold
        self.requests: list = []
        self.audits: list = []
        self.waiting: list = []
        self.in_flight = 0
        self.running: set = set()

    def answer(self, req):
        """The answer C{req} gets (see the class's documentation)."""
        if self.results:
            return self.results.pop(0)
        if self.result_for is not None:
            return self.result_for(req)
        return self.result

    def activate(self, req, durable=None, audit=None):
        self.requests.append(req)
        if audit is not None:
            self.audits.append(audit)
        if durable is not None:
            durable(True)
        if self.hold:
            d = defer.Deferred()
            self.waiting.append((req, d))
            return d
        return self.fire(defer.Deferred(), req)

    def fire(self, d, req):
        """Fire C{d} with the answer to C{req}; return C{d}."""
        answer = self.answer(req)
        if isinstance(answer, BaseException):
            d.errback(answer)
        else:
            d.callback(answer)
        return d

    @property
    def held(self) -> list:
        """The Deferreds of the held requests, in order."""
        return [d for _, d in self.waiting]

    def release(self) -> None:
        """Answer every held request."""
        waiting, self.waiting = self.waiting, []
        for req, d in waiting:
            self.fire(d, req)


@implementer(ITransactionQueries)
class FakeTransactionQueries:
    """Answers from in-memory rows; records audit entries.

    @ivar rows: transaction dicts (C{id}, C{channel_ref}, C{channel},
        C{source}, C{msisdn}, C{account}, C{serial}, C{started_at}, ...).
    @ivar vouchers: serial -> voucher status dict.
    @ivar recorded: the L{core.queries.AuditEntry} rows written.
    """

    def __init__(self, rows=(), vouchers=None) -> None:
        self.rows = list(rows)
        self.vouchers = dict(vouchers or {})
        self.recorded: list = []

    def transactions(self, msisdn=None, serial=None, start=None, end=None, limit=None):
        found = [r for r in self.rows
                 if (not msisdn or msisdn in (r.get("msisdn"), r.get("account")))
                 and (serial is None or r.get("serial") == serial)
                 and (start is None or r.get("started_at", 0) >= start)
                 and (end is None or r.get("started_at", 0) < end)]
        found.sort(key=lambda r: r.get("started_at", 0), reverse=True)
        return defer.succeed(found[:limit] if limit is not None else found)

    def transaction(self, txn_id=None, channel_ref=None, channel="soap", source=None):
        if txn_id is not None:
            found = [r for r in self.rows if r.get("id") == txn_id]
        else:
            found = sorted((r for r in self.rows if r.get("channel_ref") == channel_ref),
                           key=lambda r: r.get("started_at", 0), reverse=True)[:1]
        if found and source is not None and (found[0].get("channel") != channel
                                             or found[0].get("source") != source):
            found = []
        return defer.succeed(dict(found[0]) if found else None)

    def voucher(self, serial):
        return defer.succeed(self.vouchers.get(serial))

    def record(self, entry):
        self.recorded.append(entry)
        return defer.succeed(None)


@implementer(INumberingPlan)
class FakeNumberingPlan:
    """A numbering plan: C{+}, C{00} or the national C{0} prefix, then 11 or 12 digits."""

    def __init__(self, country_code: str = "381") -> None:
        self.cc = country_code

    def normalise(self, raw):
        if not raw:
            return None
        s = "".join(ch for ch in raw if ch not in " -.()/")
        if s.startswith("+"):
            s = s[1:]
        elif s.startswith("00"):
            s = s[2:]
        elif s.startswith("0"):
            s = self.cc + s[1:]
        return s if s.isascii() and s.isdigit() and len(s) in (11, 12) else None


@implementer(IBillingPort)
class FakeBilling:
    """A billing port for unit tests: accepts, rejects, times out, hangs or is down.

    C{mode} is one of 'accept', 'reject', 'unknown-subscriber', 'down'
    (never reached: BillingUnavailable(sent=False)), 'lost' (sent, no answer:
    BillingUnavailable), 'hang' (a Deferred that never fires).
    """

    def __init__(self, mode: str = "accept"):
        self.mode = mode
        self.credits: dict = {}       # key -> (account, amount, currency, days)
        self.voucher_types: dict = {}  # key -> voucher_type of each credit call
        self.lookups: list = []        # the keyword arguments of each lookup
        self.calls = 0
        self.lookup_answer = "record"  # 'record' | 'error'
        self._waiting: list = []       # (call count, Deferred)

    def called(self, n: int) -> defer.Deferred:
        """A Deferred that fires once C{credit} has been called C{n} times."""
        d = defer.Deferred()
        if self.calls >= n:
            d.callback(None)
        else:
            self._waiting.append((n, d))
        return d

    def credit(self, account, amount, currency, validity_days, idempotency_key,
               voucher_type=None):
        self.calls += 1
        self.voucher_types[idempotency_key] = voucher_type
        ready = [w for w in self._waiting if w[0] <= self.calls]
        for w in ready:
            self._waiting.remove(w)
            w[1].callback(None)
        if self.mode == "accept":
            self.credits.setdefault(idempotency_key, (account, amount, currency, validity_days))
            return defer.succeed(CreditOutcome(True, ResultCode.SUCCESS, balance=amount))
        if self.mode == "reject":
            return defer.succeed(CreditOutcome(False, ResultCode.BILLING_REJECTED))
        if self.mode == "unknown-subscriber":
            return defer.succeed(CreditOutcome(False, ResultCode.SUBSCRIBER_UNKNOWN))
        if self.mode == "down":
            return defer.fail(BillingUnavailable("connection refused", sent=False))
        if self.mode == "lost":
            return defer.fail(BillingUnavailable("connection lost"))
        if self.mode == "hang":
            return defer.Deferred()
        raise AssertionError(self.mode)

    def lookup(self, idempotency_key, account=None, amount=None, currency=None,
               validity_days=None, voucher_type=None):
        self.lookups.append(dict(account=account, amount=amount, currency=currency,
                                 validity_days=validity_days, voucher_type=voucher_type))
        if self.lookup_answer == "error":
            return defer.fail(BillingUnavailable("still down"))
        if idempotency_key in self.credits:
            return defer.succeed(CreditOutcome(True, ResultCode.SUCCESS))
        return defer.succeed(None)
