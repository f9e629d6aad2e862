"""The metrics seam: what the core and the adapters report, without a metrics library.

The core and the adapters call an L{IMetrics} at the few points where an
outcome is known (an activation's result, a billing answer, a committed
batch, a finished housekeeping run).  L{NULL_METRICS} does nothing and is
the default everywhere; the composition root (C{gateway/metrics/}) hands in
the Prometheus implementation.  Nothing here imports C{prometheus_client}.

Labels are bounded names (a channel, a result code, a connector, a peer
label, a job): never an MSISDN, an HRN or another per-subscriber value.
"""
from __future__ import annotations

from zope.interface import Interface, implementer

__all__ = ["IMetrics", "NullMetrics", "NULL_METRICS"]


class IMetrics(Interface):
    """Receives the node's measurements; every method is cheap and never raises."""

    def activation_done(channel, code, seconds):
        """One activation answered.

        @param channel: the channel name (C{"sms"}, C{"ussd"}, ...).
        @param code: the L{core.results.ResultCode} answered.
        @param seconds: from the request reaching the core to its answer.
        """

    def billing_request(connector, peer, operation, result, seconds):
        """One request to the billing port answered (or given up).

        @param connector: C{ledger}, C{diameter}, C{cai}, C{ucip}.
        @param peer: the peer (group) label; never a subscriber value.
        @param operation: C{credit} or C{lookup}.
        @param result: a result code name, or C{unavailable}, C{timeout}, C{error}.
        @param seconds: the request's latency.
        """

    def unit_batch(size):
        """One group commit of C{size} units of work committed (called on a worker thread)."""

    def units_failed(reason, count):
        """C{count} units of work did not commit (called on a worker thread), for
        C{reason}: C{conflict} (lost to a concurrent transaction, a deadlock or a
        serialization failure, and run again) or C{unavailable} (the database
        could not be reached: answered as result 152)."""

    def housekeeping_run(job, outcome, seconds):
        """One housekeeping run ended with C{outcome} (C{ok}, C{failed}, C{dry-run},
        C{skipped}, C{error}) after C{seconds}."""

    def peer_refused(channel, reason):
        """A request of a peer channel (C{ussd}, C{ivr}) that no configured peer
        claims was refused, for C{reason} (C{unknown_peer}, C{bad_credentials}, ...)."""


@implementer(IMetrics)
class NullMetrics:
    """Discards every measurement (the default when no metrics are configured)."""

    def activation_done(self, channel, code, seconds):
        pass

    def billing_request(self, connector, peer, operation, result, seconds):
        pass

    def unit_batch(self, size):
        pass

    def units_failed(self, reason, count):
        pass

    def housekeeping_run(self, job, outcome, seconds):
        pass

    def peer_refused(self, channel, reason):
        pass


#: The shared do-nothing instance.
NULL_METRICS = NullMetrics()


@implementer(IMetrics)
class RecordedMetrics:
    """Keeps every measurement as C{(method, args)} for another process to replay.

    The writer process (L{core.unit_worker}) has no registry of its own: what
    its units measure travels back to the node with their results.
    """

    def __init__(self):
        self.calls: list = []

    def take(self) -> list:
        """The measurements since the last C{take}, oldest first."""
        calls, self.calls = self.calls, []
        return calls

    def __getattr__(self, name):
        if name.startswith("_") or name not in IMetrics:
            raise AttributeError(name)
        calls = self.calls
        return lambda *args: calls.append((name, args))


def replay(metrics, calls) -> None:
    """Tell C{metrics} the measurements C{calls} (from L{RecordedMetrics.take})."""
    for name, args in calls:
        getattr(metrics, name)(*args)


#: what units measure in this process: the node's metrics are told directly
#: (NULL here, the wrappers hold their own); a writer process sets a
#: L{RecordedMetrics} whose measurements go back to the node
_PROCESS_METRICS = [NULL_METRICS]


def process_metrics():
    """The IMetrics that objects rebuilt in a writer process report to."""
    return _PROCESS_METRICS[0]


def set_process_metrics(metrics) -> None:
    """Make C{metrics} what L{process_metrics} answers (a writer process, at start)."""
    _PROCESS_METRICS[0] = metrics
