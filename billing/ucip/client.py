"""HTTP/1.1 POSTs to a list of AIR hosts with failover (Twisted Agent over a persistent pool).

A request goes to the first host not marked down.  When the connection to a
host cannot be made (nothing was sent), that host is marked down for
C{host_retry_seconds} and the next one is tried.  Once the request may have
been written, it is never sent to another host: a timeout, a lost
connection or an HTTP error then fails with C{sent=True}, the outcome is
unknown and reconciliation decides (re-sending could credit twice).
"""
from __future__ import annotations

import base64

from twisted.application import service
from twisted.internet import defer, error
from twisted.logger import Logger
from twisted.internet import protocol
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer
from zope.interface import implementer

#: Failures of Agent.request that prove the request was never written.
_NOT_SENT = (error.ConnectError, error.DNSLookupError)
#: HTTP statuses by which a server says it did not process the request.
_NOT_PROCESSED = (401, 403, 503)


class UcipTransportError(Exception):
    """No UCIP answer.

    @ivar sent: False when no AIR can have received the request.
    """

    def __init__(self, message: str, sent: bool):
        super().__init__(message)
        self.sent = sent


@implementer(IBodyProducer)
class _Body:
    def __init__(self, data: bytes):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def stopProducing(self):
        pass


class _BodyReader(protocol.Protocol):
    """Collects a response body (as C{readBody}, without its per-call deprecation check)."""

    def __init__(self, done: defer.Deferred):
        self.done = done
        self.parts: list[bytes] = []

    def dataReceived(self, data):
        self.parts.append(data)

    def connectionLost(self, reason):
        if self.done.called:           # cancelled (timeout) before the end
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def _read_body(response) -> defer.Deferred:
    """The answer body; cancelling it aborts the connection (never pooled again)."""
    def cancel(_):
        # The body's transport is Twisted's proxy of the connection: it can
        # close it (loseConnection), and a newer one may abort it.
        t = reader.transport
        close = getattr(t, "abortConnection", None) or getattr(t, "loseConnection", None)
        if close is not None:
            close()
    done = defer.Deferred(cancel)
    reader = _BodyReader(done)
    response.deliverBody(reader)
    return done


@implementer(IAgentEndpointFactory)
class _Endpoints:
    """The AIRs' endpoints, built once per host (the Agent's own factory
    builds a new one for every request)."""

    def __init__(self, reactor, connect_timeout: float):
        self.reactor = reactor
        self.connect_timeout = connect_timeout
        self.tls = BrowserLikePolicyForHTTPS()
        self.cache: dict = {}

    def endpointForURI(self, uri):
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self.cache.get(key)
        if endpoint is None:
            endpoint = HostnameEndpoint(self.reactor, uri.host.decode("ascii"), uri.port,
                                        timeout=self.connect_timeout)
            if uri.scheme == b"https":
                endpoint = wrapClientTLS(self.tls.creatorForNetloc(uri.host, uri.port), endpoint)
            self.cache[key] = endpoint
        return endpoint


class UcipClient(service.Service):
    """POSTs XML-RPC bodies to the AIR hosts.

    @param settings: a L{billing.ucip.config.UcipSettings}.
    @param reactor: the reactor for connections.
    @param clock: the C{IReactorTime} of timeouts and host retry (default C{reactor}).
    """

    log = Logger()

    def __init__(self, settings, reactor, clock=None, agent=None):
        self.settings = settings
        self.clock = clock if clock is not None else reactor
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = settings.pool_size
        self.pool.retryAutomatically = False    # never re-send a POST by itself
        self.agent = agent or Agent.usingEndpointFactory(
            reactor, _Endpoints(reactor, settings.connect_timeout), pool=self.pool)
        token = base64.b64encode(("%s:%s" % (settings.user, settings.password)).encode("utf-8"))
        # Agent copies the headers of each request before adding Host.
        self.headers = Headers({b"Content-Type": [b"text/xml"],
                                b"User-Agent": [settings.user_agent.encode("ascii")],
                                b"Authorization": [b"Basic " + token]})
        self.down_until: dict[str, float] = {}
        # At most pool_size requests in flight per AIR; the others wait for a
        # connection rather than opening (and then closing) extra ones.
        self.slots = {url: defer.DeferredSemaphore(settings.pool_size) for url in settings.hosts}

    def _order(self) -> list[str]:
        now = self.clock.seconds()
        up = [h for h in self.settings.hosts if self.down_until.get(h, 0) <= now]
        down = [h for h in self.settings.hosts if h not in up]
        return up + down

    async def post(self, body: bytes) -> bytes:
        """POST C{body} to the first AIR that takes the connection.

        @return: the answer body (HTTP 200).
        @raise UcipTransportError: no answer (C{sent} tells whether any AIR
            may have received the request).
        """
        last = "no AIR host"
        for url in self._order():
            try:
                return await self._post_one(url, body)
            except UcipTransportError as e:
                if e.sent:
                    raise
                self.down_until[url] = self.clock.seconds() + self.settings.host_retry_seconds
                self.log.warn("UCIP: AIR {url} not reachable ({why}); trying the next host",
                              url=url, why=str(e))
                last = str(e)
        raise UcipTransportError("UCIP: no AIR host reachable (%s)" % last, sent=False)

    async def _post_one(self, url: str, body: bytes) -> bytes:
        slot = self.slots[url]
        await slot.acquire()
        try:
            return await self._exchange(url, body)
        finally:
            slot.release()

    async def _exchange(self, url: str, body: bytes) -> bytes:
        # One timer for the whole exchange (answer head and body): it cancels
        # whichever Deferred is being waited for.
        waiting = self.agent.request(b"POST", url.encode("ascii"), self.headers, _Body(body))
        expired = []

        def expire():
            expired.append(True)
            waiting.cancel()
        timer = self.clock.callLater(self.settings.request_timeout, expire)
        try:
            try:
                response = await waiting
            except _NOT_SENT as e:
                raise UcipTransportError("%s: %s" % (url, e.__class__.__name__),
                                         sent=False) from None
            except Exception as e:
                raise UcipTransportError(
                    "%s: no answer within %.1f s" % (url, self.settings.request_timeout)
                    if expired else "%s: %s" % (url, e.__class__.__name__), sent=True) from None
            waiting = _read_body(response)
            try:
                data = await waiting
            except Exception as e:
                raise UcipTransportError(
                    "%s: answer body lost (%s)"
                    % (url, "timeout" if expired else e.__class__.__name__), sent=True) from None
        finally:
            if timer.active():
                timer.cancel()
        if response.code in _NOT_PROCESSED:
            raise UcipTransportError("%s: HTTP %d" % (url, response.code), sent=False)
        if response.code != 200:
            raise UcipTransportError("%s: HTTP %d" % (url, response.code), sent=True)
        return data

    def stopService(self) -> defer.Deferred:
        """Close the pooled connections."""
        service.Service.stopService(self)
        return self.pool.closeCachedConnections()
