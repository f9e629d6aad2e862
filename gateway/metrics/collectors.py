"""Scrape-time collectors: figures read from the running node when Prometheus scrapes.

Live state (unit-of-work queue depth, billing peers, SMPP binds and message
counters) is read from memory on every scrape.  Store figures (stock by type
and state, fraud bars) come from L{StoreFigures}, which reads them at most
once per C{cache_seconds} off the reactor thread.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.internet import defer, threads
from twisted.logger import Logger

from core import gauges
from core.timeutil import now_ms


class StoreFigures:
    """The last stock and fraud figures, read again when older than C{ttl} seconds.

    @ivar values: the last reading (L{core.gauges.figures}), or None before the first.
    @ivar read_at: when it was read (clock seconds).
    """

    log = Logger()

    def __init__(self, store, reactor, clock, ttl: float):
        self.store = store
        self.reactor = reactor
        self.clock = clock
        self.ttl = ttl
        self.values = None
        self.read_at = None
        self.reads = 0
        self._pending = None

    def fresh(self) -> defer.Deferred:
        """Fire (with None) once the figures are at most C{ttl} seconds old.

        Concurrent scrapes share one read; a failed read keeps the previous
        figures (logged) and is tried again at the next scrape.
        """
        now = self.clock.seconds()
        if self.read_at is not None and now - self.read_at < self.ttl:
            return defer.succeed(None)
        if self._pending is None:
            self._pending = threads.deferToThreadPool(
                self.reactor, self.reactor.getThreadPool(), self.store.run_sync,
                gauges.figures, now_ms(self.clock), read_only=True)
            self._pending.addCallbacks(self._read, self._failed)
        out = defer.Deferred()
        self._pending.addBoth(lambda r: (out.callback(None), r)[1])
        return out

    def _read(self, values):
        self._pending = None
        self.values = values
        self.read_at = self.clock.seconds()
        self.reads += 1

    def _failed(self, failure):
        self._pending = None
        self.log.failure("metrics: reading stock and fraud figures failed", failure)


def peer_states(connector: str, service, clock) -> list[tuple[str, int]]:
    """(peer label, 1 if usable else 0) of a billing connector's client C{service}."""
    if service is None:
        return [("embedded", 1)] if connector == "ledger" else []
    links = getattr(service, "links", None)
    if links is not None:                                   # Diameter peer pool
        return [(link.label, int(bool(link.usable))) for link in links]
    down = getattr(service, "down_until", None)
    if down is not None:                                    # UCIP hosts
        now = clock.seconds()
        return [(_host(h), int(down.get(h, 0) <= now)) for h in service.settings.hosts]
    ready = getattr(service, "ready", None)
    if ready is not None:                                   # CAI session pool
        s = service.settings
        return [("%s:%s" % (s.host, s.port), int(len(ready) > 0))]
    return []


def peer_label(connector: str, service) -> str:
    """The C{peer} label of a connector's requests: its peer group."""
    if connector == "ledger":
        return "embedded"
    labels = [p for p, _ in peer_states(connector, service, _NoClock())]
    return ",".join(labels) if labels else connector


class _NoClock:
    def seconds(self):
        return 0.0


def _host(url: str) -> str:
    """host:port of a URL, without any user or password it carries."""
    u = urlsplit(url)
    return "%s:%s" % (u.hostname, u.port or (443 if u.scheme == "https" else 80))


class NodeCollector:
    """Yields the node's live and cached figures as metric families."""

    def __init__(self, node, figures: StoreFigures | None, top=None):
        """
        @param node: the L{gateway.node.Node}.
        @param figures: the cached store figures (None: not reported).
        @param top: the node's service tree; its C{smpp} service, when there
            is one, is the SMS channel whose binds and messages are reported.
        """
        self.node = node
        self.figures = figures
        self.top = top

    def collect(self):
        yield from self._units()
        yield from self._billing()
        smpp = self._smpp_service()
        if smpp is not None:
            yield from self._smpp(smpp)
        if self.figures is not None and self.figures.values is not None:
            yield from self._store()

    def _units(self):
        fg, bg = self.node.runner.depth()
        g = GaugeMetricFamily("ivoms_unit_queue_depth", "Units of work waiting for a "
                              "worker, by lane.", labels=["lane"])
        g.add_metric(["foreground"], fg)
        g.add_metric(["background"], bg)
        yield g
        g = GaugeMetricFamily("ivoms_activations_in_flight", "Activations under way.")
        g.add_metric([], self.node.activation.in_flight)
        yield g

    def _billing(self):
        connector = self.node.config.billing.connector
        g = GaugeMetricFamily("ivoms_billing_peer_up", "Billing peer connection state "
                              "(1 usable, 0 down).", labels=["connector", "peer"])
        for peer, up in peer_states(connector, self.node.billing_service, self.node.clock):
            g.add_metric([connector, peer], up)
        yield g
        links = getattr(self.node.billing_service, "links", None)
        if links is not None:                               # Diameter: who answered
            c = CounterMetricFamily("ivoms_billing_peer_answers", "Answers each billing peer "
                                    "gave (Diameter).", labels=["connector", "peer"])
            for link in links:
                c.add_metric([connector, link.label], link.answers)
            yield c

    def _smpp_service(self):
        if self.top is None:
            return None
        try:
            return self.top.getServiceNamed("smpp")
        except KeyError:
            return None

    def _smpp(self, top):
        g = GaugeMetricFamily("ivoms_smpp_binds", "SMPP sessions bound, by account (server "
                              "mode) or SMSC (client mode).", labels=["role", "account"])
        if top.server is not None:
            for system_id, account in top.server.factory.accounts.items():
                g.add_metric(["server", system_id], len(account.sessions))
        for name, connector in top.connectors.items():
            g.add_metric(["client", name], len(connector.sessions))
        yield g
        c = CounterMetricFamily("ivoms_smpp_messages", "SMPP messages of the SMS channel: "
                                "MO taken, receipts, MT replies confirmed and failed "
                                "(outbox_*: the durable outbox's view of recharge replies).",
                                labels=["direction", "kind"])
        counters = top.channel.counters
        for kind in ("mo", "receipts", "help", "refused"):
            c.add_metric(["mo", kind], counters.get(kind, 0))
        c.add_metric(["mt", "sent"], counters.get("replies", 0))
        c.add_metric(["mt", "failed"], counters.get("reply_failures", 0))
        outbox = top.channel.outbox
        if outbox is not None:
            for kind in ("sent", "resent", "retries", "expired", "given_up"):
                c.add_metric(["mt", "outbox_" + kind], outbox.counters.get(kind, 0))
        yield c

    def _store(self):
        v = self.figures.values
        g = GaugeMetricFamily("ivoms_voucher_stock", "Vouchers by type and state (read at "
                              "most once per cache period).", labels=["type", "state"])
        for type_code, state, n in v["stock"]:
            g.add_metric([type_code, state], n)
        yield g
        bars = GaugeMetricFamily("ivoms_fraud_barred", "Subjects barred by fraud control now, "
                                 "by kind (msisdn; source: a throttled source).", labels=["kind"])
        counted = GaugeMetricFamily("ivoms_fraud_counted", "Subjects with failed attempts "
                                    "counted in the fraud window, by kind.", labels=["kind"])
        seen = {kind: (n, barred) for kind, n, barred in v["fraud"]}
        for kind in ("msisdn", "source"):
            n, barred = seen.get(kind, (0, 0))
            bars.add_metric([kind], barred)
            counted.add_metric([kind], n)
        yield bars
        yield counted
        g = GaugeMetricFamily("ivoms_store_figures_age_seconds", "Age of the stock and fraud "
                              "figures.")
        g.add_metric([], max(0.0, self.figures.clock.seconds() - self.figures.read_at))
        yield g
