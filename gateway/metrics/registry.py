"""L{PrometheusMetrics}: the L{core.metrics.IMetrics} that counts into a prometheus_client registry.

Each node has its own C{CollectorRegistry} (never the library's global one),
so tests and several nodes in one process do not mix their counts.  Process
metrics (CPU, memory, file descriptors, GC) are registered in it too.
"""
from __future__ import annotations

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram,
                               PlatformCollector, ProcessCollector)
from zope.interface import implementer

from core.metrics import IMetrics
from core.requests import Channel
from core.results import ResultCode

#: Activation latency buckets (seconds): an activation waits for a commit and billing.
ACTIVATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Billing latency buckets (seconds).
BILLING_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Group-commit sizes (units of work per COMMIT).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: Housekeeping run durations (seconds).
HOUSEKEEPING_BUCKETS = (0.1, 1, 10, 60, 300, 900, 3600, 4 * 3600)

CHANNELS = frozenset(c.value for c in Channel)


def code_labels(code) -> tuple[str, str]:
    """(numeric code, name) of a result code; unknown codes are C{("other", "OTHER")}."""
    try:
        rc = ResultCode(int(code))
    except (TypeError, ValueError):
        return "other", "OTHER"
    return str(int(rc)), rc.name


@implementer(IMetrics)
class PrometheusMetrics:
    """Counters and histograms of one node.

    @ivar registry: the node's C{CollectorRegistry}; L{gateway.metrics.collectors}
        adds the scrape-time collectors to it.
    """

    def __init__(self, clock, registry: CollectorRegistry | None = None, *,
                 process: bool = True):
        """
        @param clock: C{IReactorTime} for the time a housekeeping run ended.
        @param process: also register the process, platform and GC collectors.
        """
        self.clock = clock
        self._activation_children: dict = {}
        self._billing_children: dict = {}
        r = self.registry = registry if registry is not None else CollectorRegistry()
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        self.activations = Counter(
            "ivoms_activations", "Activations answered, by channel and result code.",
            ["channel", "code", "result"], registry=r)
        self.activation_seconds = Histogram(
            "ivoms_activation_seconds", "Activation latency, from the core to the answer.",
            ["channel"], buckets=ACTIVATION_BUCKETS, registry=r)
        self.billing = Counter(
            "ivoms_billing_requests", "Billing port requests, by connector, peer, operation "
            "and result.", ["connector", "peer", "operation", "result"], registry=r)
        self.billing_seconds = Histogram(
            "ivoms_billing_request_seconds", "Billing port request latency.",
            ["connector", "operation"], buckets=BILLING_BUCKETS, registry=r)
        self.batch_size = Histogram(
            "ivoms_unit_batch_size", "Units of work committed together (group-commit size).",
            buckets=BATCH_BUCKETS, registry=r)
        self.unit_failures = Counter(
            "ivoms_unit_failures", "Units of work that did not commit, by reason: conflict "
            "(a deadlock or serialization failure, run again) or unavailable (the database "
            "could not be reached; answered 152).", ["reason"], registry=r)
        # "job_name", not "job": Prometheus gives every scraped series its own "job" label.
        self.housekeeping = Counter(
            "ivoms_housekeeping_runs", "Housekeeping runs, by job and outcome.",
            ["job_name", "outcome"], registry=r)
        self.housekeeping_seconds = Histogram(
            "ivoms_housekeeping_run_seconds", "Housekeeping run duration.",
            ["job_name"], buckets=HOUSEKEEPING_BUCKETS, registry=r)
        self.housekeeping_last = Gauge(
            "ivoms_housekeeping_last_run_timestamp_seconds",
            "When each job's last run ended, by outcome (UNIX time).",
            ["job_name", "outcome"], registry=r)
        self.peer_refusals = Counter(
            "ivoms_peer_refusals", "Requests to a peer channel (USSD, IVR) that no configured "
            "peer claims, by channel and reason.", ["channel", "reason"], registry=r)

    # The labelled children are looked up once per label set and kept: the
    # hot path then costs one locked increment and one locked observation.
    def activation_done(self, channel, code, seconds):
        key = (channel if channel in CHANNELS else "other", code)
        pair = self._activation_children.get(key)
        if pair is None:
            pair = self._activation_children[key] = (
                self.activations.labels(key[0], *code_labels(code)),
                self.activation_seconds.labels(key[0]))
        pair[0].inc()
        pair[1].observe(seconds if seconds > 0 else 0.0)

    def billing_request(self, connector, peer, operation, result, seconds):
        key = (connector, peer, operation, result)
        pair = self._billing_children.get(key)
        if pair is None:
            pair = self._billing_children[key] = (
                self.billing.labels(connector, peer, operation, result),
                self.billing_seconds.labels(connector, operation))
        pair[0].inc()
        pair[1].observe(seconds if seconds > 0 else 0.0)

    def unit_batch(self, size):
        self.batch_size.observe(size)

    def units_failed(self, reason, count):
        self.unit_failures.labels(reason).inc(count)

    def housekeeping_run(self, job, outcome, seconds):
        self.housekeeping.labels(job, outcome).inc()
        self.housekeeping_seconds.labels(job).observe(max(0.0, seconds))
        self.housekeeping_last.labels(job, outcome).set(self.clock.seconds())

    def peer_refused(self, channel, reason):
        self.peer_refusals.labels(channel, reason).inc()
