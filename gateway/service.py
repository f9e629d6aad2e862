"""The node's service tree: one MultiService built from the config (C{ivoms run}, C{twist ivoms})."""
from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from core.generation import recover_interrupted
from core.metrics import NULL_METRICS
from core.timeutil import now_ms
from gateway.node import Node


class StoreService(service.Service):
    """Checks the schema, recovers interrupted batches, runs the units-of-work threads."""

    log = Logger()
    name = "store"

    def __init__(self, node: Node):
        self.node = node

    def startService(self):
        node = self.node
        node.check_schema()
        node.cipher          # load the key file now: fail at start, not on first use
        failed = node.store.run_sync(recover_interrupted, now_ms(node.clock))
        for bid in failed:
            self.log.warn("batch {batch_id} was interrupted while generating; marked failed",
                          batch_id=bid)
        node.runner.start()
        super().startService()
        self.log.info("store ready ({dialect}, {workers} writer thread(s))",
                      dialect=node.store.dialect.name, workers=node.runner.workers)

    def stopService(self):
        super().stopService()
        d = self.node.runner.stop()
        d.addCallback(lambda _: self.node.store.dispose())
        return d


class NodeService(service.MultiService):
    """The top of the tree: children start in order and stop one at a time, in reverse.

    Twisted's C{MultiService} stops every child at once; here the store (the
    first child) stops only after the channels and the housekeeping jobs
    that still submit units of work to it have stopped.  A child that never
    started (start-up failed before it) is not stopped; a child whose stop
    fails is logged and the others still stop.
    """

    log = Logger()

    @defer.inlineCallbacks
    def stopService(self):
        service.Service.stopService(self)
        for child in reversed(list(self)):
            if not child.running:
                continue
            try:
                yield defer.maybeDeferred(child.stopService)
            except Exception:
                self.log.failure("stopping {service} failed", service=child.name or repr(child))


def housekeeping_service(node: Node) -> service.Service:
    """The housekeeping scheduler (DESIGN §8): every enabled job on its schedule, reconcile
    also at start-up; with C{housekeeping.enabled = false} it schedules nothing."""
    from core.housekeeping.housekeeper import Housekeeper
    from core.housekeeping.scheduler import Scheduler, schedule_plans
    keeper = Housekeeper.from_node(node)
    if node.metrics is not NULL_METRICS:
        from gateway.metrics.wrappers import MeteredHousekeeper
        keeper = MeteredHousekeeper(keeper, node.metrics, node.clock)
    hk = node.config.housekeeping
    plans = schedule_plans(hk, keeper.jobs,
                           default_interval=node.config.activation.reconcile_interval_seconds) \
        if hk.enabled else {}
    return Scheduler(keeper, plans, node.clock)


def make_service(config, reactor, clock=None) -> service.MultiService:
    """Build the whole service tree of one node from C{config}.

    @param clock: time source for schedules and timestamps (default: reactor).
    """
    node = Node(config, reactor, clock)
    top = NodeService()
    top.node = node
    StoreService(node).setServiceParent(top)
    node.billing                                  # builds the connector's client, if any
    if node.billing_service is not None:
        node.billing_service.setServiceParent(top)
    housekeeping_service(node).setServiceParent(top)
    from gateway.metrics.wiring import install as install_metrics
    metrics, metrics_listener = install_metrics(node, top)
    if config.http.enabled:
        from core.tls import listener_service
        from gateway.http import make_site
        site = make_site(node)
        if metrics is not None and config.metrics.on_http:
            site.resource.putChild(b"metrics", metrics)
        listener_service(reactor, config.http.listen, config.http, site, "http").setServiceParent(top)
    if config.smpp.enabled:
        from gateway.adapters import smpp_service
        smpp_service(node).setServiceParent(top)
    if config.admin.enabled:
        from gateway.adapters import admin_service
        admin_service(node).setServiceParent(top)
    if metrics_listener is not None:
        metrics_listener.setServiceParent(top)
    return top
