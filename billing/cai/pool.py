"""A pool of logged-in CAI connections with re-login after loss (an IService).

Each of C{pool_size} connections is a C{ClientService} (exponential
back-off on the injected clock) whose C{prepareConnection} logs in; only
logged-in, idle connections take commands.  C{run(line)} waits (bounded by
C{queue_limit} and the command timeout) for an idle connection; with no
logged-in connection at all it fails at once with C{CaiError(sent=False)}.
"""
from __future__ import annotations

import collections

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import Logger

from billing.cai.config import CaiSettings
from billing.cai.protocol import CaiError, CaiProtocol


class _Factory(protocol.Factory):
    def __init__(self, pool):
        self.pool = pool

    def buildProtocol(self, addr):
        return CaiProtocol(self.pool, self.pool.clock)


class CaiPool(service.Service):
    log = Logger()
    name = "cai-pool"

    def __init__(self, settings: CaiSettings, *, reactor, clock=None,
                 endpoint_factory=None):
        self.settings = settings
        self.clock = clock or reactor
        self._endpoint = endpoint_factory or (lambda: TCP4ClientEndpoint(
            reactor, settings.host, settings.port, timeout=settings.login_timeout))
        self.services: list[ClientService] = []
        self.idle: list[CaiProtocol] = []
        self.ready: set[CaiProtocol] = set()
        self.waiters: collections.deque = collections.deque()
        self.logins = 0

    def startService(self):
        super().startService()
        s = self.settings
        for _ in range(s.pool_size):
            svc = ClientService(self._endpoint(), _Factory(self),
                                backoffPolicy(s.reconnect_initial, s.reconnect_max),
                                clock=self.clock, prepareConnection=self._login)
            svc.startService()
            self.services.append(svc)

    async def _stop(self):
        s = self.settings
        for proto in list(self.idle):
            try:
                await proto.command(s.templates.render("logout"), s.login_timeout)
            except CaiError:
                pass
        await defer.gatherResults([svc.stopService() for svc in self.services])

    def stopService(self):
        super().stopService()
        while self.waiters:
            self.waiters.popleft().errback(CaiError("CAI pool stopping", sent=False))
        return defer.ensureDeferred(self._stop())

    async def _login(self, proto: CaiProtocol):
        s = self.settings
        resp = await proto.command(s.templates.render(
            "login", user=s.user, password=s.password), s.login_timeout)
        if resp.code not in s.codes.success:
            self.log.error("CAI login refused (code {code})", code=resp.code)
            raise CaiError("CAI login refused: %d" % resp.code, sent=False)
        proto.logged_in = True
        self.logins += 1
        self.ready.add(proto)
        self._release(proto)

    def connection_lost(self, proto: CaiProtocol):
        self.ready.discard(proto)
        if proto in self.idle:
            self.idle.remove(proto)

    def _release(self, proto: CaiProtocol):
        if proto not in self.ready:
            return
        while self.waiters:
            w = self.waiters.popleft()
            if not w.called:
                w.callback(proto)
                return
        self.idle.append(proto)

    def _acquire(self) -> defer.Deferred:
        if self.idle:
            return defer.succeed(self.idle.pop())
        if not self.ready:
            return defer.fail(CaiError("no logged-in CAI connection", sent=False))
        if len(self.waiters) >= self.settings.queue_limit:
            return defer.fail(CaiError("CAI queue full", sent=False))
        d = defer.Deferred(lambda d: self.waiters.remove(d) if d in self.waiters else None)
        self.waiters.append(d)
        return d

    async def run(self, line: str):
        """Run one command; the CaiResponse, or CaiError (with C{sent})."""
        s = self.settings
        waiter = self._acquire()
        waiter.addTimeout(s.command_timeout, self.clock)
        try:
            proto = await waiter
        except defer.TimeoutError:
            raise CaiError("no free CAI connection in time", sent=False) from None
        for attempt in (1, 2):
            try:
                resp = await proto.command(line, s.command_timeout)
            except defer.CancelledError:
                # The caller gave up mid-command: the line's state is unknown.
                proto.transport.abortConnection()
                raise
            if resp.code in s.codes.not_logged_in and attempt == 1:
                # The IN forgot our session: nothing was done; log in again.
                await self._login_again(proto)
                continue
            self._release(proto)
            return resp
        self._release(proto)
        return resp

    async def _login_again(self, proto):
        s = self.settings
        resp = await proto.command(s.templates.render(
            "login", user=s.user, password=s.password), s.login_timeout)
        if resp.code not in s.codes.success:
            proto.transport.abortConnection()
            raise CaiError("CAI re-login refused: %d" % resp.code, sent=False)
