"""Measuring wrappers around the billing port and the housekeeper (the seams they plug into).

L{MeteredBilling} stands in for an L{core.billing.IBillingPort} and reports
each credit and lookup to an L{core.metrics.IMetrics}; it provides
L{core.interfaces.IInTransactionCredit} exactly when the connector it wraps
does.  L{MeteredHousekeeper} does the same for the scheduler's
C{run(job, slot=...)}.
"""
from __future__ import annotations

import time

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from core.billing import BillingUnavailable, IBillingPort
from core.interfaces import IInTransactionCredit, IStoreLedger


def billing_result(outcome_or_failure) -> str:
    """The C{result} label of a billing answer: the result code's name, or why there was none."""
    if isinstance(outcome_or_failure, Failure):
        outcome_or_failure = outcome_or_failure.value
    if isinstance(outcome_or_failure, BillingUnavailable):
        return "unavailable"
    if isinstance(outcome_or_failure, (defer.TimeoutError, defer.CancelledError)):
        return "timeout"
    if isinstance(outcome_or_failure, BaseException):
        return "error"
    code = getattr(outcome_or_failure, "code", None)
    name = getattr(code, "name", None)
    if name is not None:
        return name
    state = getattr(outcome_or_failure, "state", None)   # a lookup answer
    return str(state) if state is not None else "answered"


@implementer(IBillingPort)
class MeteredBilling:
    """An L{IBillingPort} that times and counts every request of the connector it wraps."""

    def __init__(self, billing, metrics, *, connector: str, peer: str, clock):
        """
        @param billing: the connector (an L{IBillingPort}).
        @param connector: the connector's name (the C{connector} label).
        @param peer: the C{peer} label of its requests (the peer group: the
            connector does not tell which of its peers answered one request).
        @param clock: C{IReactorTime} for latencies.
        """
        self.billing = billing
        self.metrics = metrics
        self.connector = connector
        self.peer = peer
        self.clock = clock
        for iface in (IStoreLedger, IInTransactionCredit):
            if iface.providedBy(billing):
                alsoProvides(self, iface)
                break

    def __reduce__(self):
        """Travels to the writer process (L{core.unit_process}) as the wrapped
        connector's in-transaction credit, reporting to the measurements that
        go back to the node with the unit's result."""
        return _metered_in_writer, (self.billing, self.connector, self.peer)

    def __getattr__(self, name):
        # anything else the connector offers (settings, service) reads through
        if name == "billing":
            raise AttributeError(name)
        return getattr(self.billing, name)

    def _report(self, result, operation, started):
        self.metrics.billing_request(self.connector, self.peer, operation,
                                     billing_result(result), self.clock.seconds() - started)
        return result

    def credit(self, account, amount, currency, validity_days, idempotency_key,
               voucher_type=None):
        started = self.clock.seconds()
        d = defer.maybeDeferred(self.billing.credit, account, amount, currency, validity_days,
                                idempotency_key, voucher_type=voucher_type)
        return d.addBoth(self._report, "credit", started)

    def lookup(self, idempotency_key, account=None, amount=None, currency=None,
               validity_days=None, voucher_type=None):
        started = self.clock.seconds()
        d = defer.maybeDeferred(self.billing.lookup, idempotency_key, account=account,
                                amount=amount, currency=currency, validity_days=validity_days,
                                voucher_type=voucher_type)
        return d.addBoth(self._report, "lookup", started)

    def credit_in(self, tx, account, amount, currency, validity_days, idempotency_key, now):
        """Like the wrapped connector's C{credit_in}; called on a worker thread."""
        started = self.clock.seconds()
        try:
            outcome = self.billing.credit_in(tx, account, amount, currency, validity_days,
                                             idempotency_key, now)
        except BaseException as e:
            self._report(e, "credit", started)
            raise
        return self._report(outcome, "credit", started)


class MeteredHousekeeper:
    """The housekeeper as the scheduler sees it, reporting each run's outcome and duration."""

    def __init__(self, keeper, metrics, clock):
        self.keeper = keeper
        self.metrics = metrics
        self.clock = clock

    def __getattr__(self, name):
        if name == "keeper":
            raise AttributeError(name)
        return getattr(self.keeper, name)

    def run(self, job, **kw):
        started = self.clock.seconds()
        d = self.keeper.run(job, **kw)

        def report(result):
            outcome = getattr(result, "outcome", "error")
            self.metrics.housekeeping_run(job, outcome, self.clock.seconds() - started)
            return result
        return d.addBoth(report)


def metered_billing(node) -> MeteredBilling:
    """The node's billing connector wrapped to report to the node's metrics."""
    from gateway.metrics.collectors import peer_label
    connector = node.config.billing.connector
    billing = node.billing                      # builds node.billing_service too
    return MeteredBilling(billing, node.metrics, connector=connector,
                          peer=peer_label(connector, node.billing_service), clock=node.clock)


class _WallClock:
    """C{seconds()} of the wall clock (the reactor's, in a process without one)."""

    seconds = staticmethod(time.time)


def _metered_in_writer(billing, connector: str, peer: str) -> MeteredBilling:
    """L{MeteredBilling} rebuilt in a writer process: its measurements go to the
    process's recorded metrics (L{core.metrics.process_metrics})."""
    from core.metrics import process_metrics
    return MeteredBilling(billing, process_metrics(), connector=connector, peer=peer,
                          clock=_WallClock())
