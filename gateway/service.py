"""The node's service tree: one MultiService built from the config (``ivoms run``, ``twist ivoms``)."""
from __future__ import annotations

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from core.generation import recover_interrupted
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


class ReconcileService(service.Service):
    """Runs reconciliation at start-up and then every configured interval."""

    log = Logger()
    name = "reconcile"

    def __init__(self, node: Node):
        self.node = node
        self._loop = None
        self._last = None

    def startService(self):
        super().startService()
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.node.clock
        self._loop.start(self.node.config.activation.reconcile_interval_seconds, now=True)

    def _tick(self):
        d = self.node.reconciler.run()
        d.addErrback(lambda f: self.log.failure("reconciliation run failed", f))
        self._last = d
        return None  # never stop the loop on a failed run

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self._last if self._last is not None and not self._last.called else defer.succeed(None)


def make_service(config, reactor, clock=None) -> service.MultiService:
    """Build the whole service tree of one node from ``config``.

    @param clock: time source for schedules and timestamps (default: reactor).
    """
    node = Node(config, reactor, clock)
    top = service.MultiService()
    top.node = node
    StoreService(node).setServiceParent(top)
    node.billing                                  # builds the connector's client, if any
    if node.billing_service is not None:
        node.billing_service.setServiceParent(top)
    ReconcileService(node).setServiceParent(top)
    if config.http.enabled:
        from twisted.application import strports

        from gateway.http import make_site
        http = strports.service(config.http.listen, make_site(node))
        http.setName("http")
        http.setServiceParent(top)
    return top
