"""The Diameter peer pool: several peers, priority, failover, window, timeouts.

C{DiameterClient} is an C{IService}.  On start it connects to every
configured peer through its own C{ClientService} (reconnection with
exponential back-off on the injected clock); each connection is a
C{DiameterPeerProtocol}.  C{request(data)} sends one encoded request to the
best open peer — lowest priority number first, then the one with the
fewest outstanding requests — and returns a Deferred firing with the
C{DecodedMessage} answer.  Per RFC 6733 §5.5.4 a request whose connection
fails (closed, or watchdog SUSPECT) is retransmitted with the T flag and
the same End-to-End identifier to another open peer, or to the same peer
once it is back, until its timeout.  On stop it waits for outstanding
answers (bounded), sends DPR to every open peer, then closes.

Failures are C{DiameterTransportError}s whose C{sent} says whether a peer
may have seen the request: C{NoPeerAvailable} (never sent),
C{RequestTimedOut}, C{PeerLost}; a malformed answer fails the request with
the C{DiameterDecodeError}.
"""
from __future__ import annotations

import collections
import random
from typing import Callable

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.logger import Logger

from billing.diameter.config import PeerAddress, TransportSettings
from billing.diameter.message.errors import (
    NoPeerAvailable, PeerLost, RequestTimedOut)
from billing.diameter.message.header import set_identifiers
from billing.diameter.message.identifiers import EndToEndIds
from billing.diameter.message.messages import LocalIdentity
from billing.diameter.node.protocol import DiameterPeerProtocol, PeerState
from billing.readiness import poll_until
from core.tls import TlsError, client_options


class PendingRequest:
    """One request in flight: wire bytes, identifiers, where it went."""

    __slots__ = ("data", "end_to_end", "deferred", "timer", "proto", "hbh",
                 "sent", "attempts", "done")

    def __init__(self, data: bytes, end_to_end: int):
        self.data = data
        self.end_to_end = end_to_end
        self.deferred: defer.Deferred | None = None
        self.timer = None
        self.proto: DiameterPeerProtocol | None = None
        self.hbh = 0
        self.sent = False
        self.attempts = 0
        self.done = False


class PeerLink:
    """One configured peer: its ClientService and current connection."""

    log = Logger()

    def __init__(self, pool: "DiameterClient", address: PeerAddress,
                 index: int):
        self.pool = pool
        self.address = address
        self.index = index
        self.label = address.label
        self.proto: DiameterPeerProtocol | None = None
        self.service: ClientService | None = None
        self.answers = 0        # answers this peer gave (read by the node's metrics)

    # factory side
    def build(self) -> DiameterPeerProtocol:
        p = self.pool
        self.proto = DiameterPeerProtocol(self, p.local, p.settings, p.clock,
                                          p.rng)
        return self.proto

    @property
    def usable(self) -> bool:
        return self.proto is not None and self.proto.usable

    # reports from the protocol
    def protocol_open(self, proto):
        self.pool._drain()

    def protocol_suspect(self, proto):
        self.pool._fail_over(proto)

    def protocol_recovered(self, proto):
        self.pool._drain()

    def protocol_closing(self, proto):
        pass

    def protocol_closed(self, proto, previous: PeerState, reason):
        if self.proto is proto:
            self.proto = None
        if previous is PeerState.OPEN and not self.pool.stopping:
            self.log.warn("Diameter peer {peer} connection lost: {why}",
                          peer=self.label,
                          why=reason.getErrorMessage() if reason else "")
        self.pool._fail_over(proto)


class _LinkFactory(protocol.Factory):
    def __init__(self, link: PeerLink):
        self.link = link

    def buildProtocol(self, addr):
        return self.link.build()


def peer_endpoint(reactor, address, timeout: float):
    """The client endpoint of one peer: TCP, or TLS/TCP when C{address.tls}.

    @param address: a L{billing.diameter.config.PeerAddress}.
    @raise core.tls.TlsError: a TLS file cannot be used.
    """
    endpoint = TCP4ClientEndpoint(reactor, address.host, address.port, timeout=timeout)
    if not address.tls:
        return endpoint
    try:
        options = client_options(address.tls_server_name or address.host, address.tls_ca,
                                 address.tls_key, address.tls_cert)
    except TlsError as e:
        raise TlsError("billing.diameter peer %s: %s" % (address.label, e)) from None
    return wrapClientTLS(options, endpoint)


class DiameterClient(service.Service):
    """Pool of Diameter peer connections (see the module doc).

    @param local: how we present ourselves (CER, DWR, DPR).
    @param settings: C{TransportSettings} (peers, timers, window).
    @param reactor: provides C{connectTCP} for the default endpoints.
    @param clock: IReactorTime for every timer (defaults to C{reactor}).
    @param rng: randomness for jitter and identifiers (tests seed it).
    @param endpoint_factory: C{PeerAddress -> IStreamClientEndpoint} (tests).
    """

    log = Logger()
    name = "diameter-client"

    def __init__(self, local: LocalIdentity, settings: TransportSettings, *,
                 reactor, clock=None, rng: random.Random | None = None,
                 endpoint_factory: Callable | None = None):
        self.local = local
        self.settings = settings
        self.reactor = reactor
        self.clock = clock or reactor
        self.rng = rng or random.SystemRandom()
        self.e2e = EndToEndIds(self.clock.seconds(), self.rng)
        self.links = [PeerLink(self, a, i)
                      for i, a in enumerate(sorted(settings.peers,
                                                   key=lambda a: a.priority))]
        self._endpoint = endpoint_factory or (
            lambda a: peer_endpoint(reactor, a, settings.cea_timeout))
        self.queue: collections.deque[PendingRequest] = collections.deque()
        self.stopping = False
        self._idle: list[defer.Deferred] = []
        self.stats = collections.Counter()

    # -- service -----------------------------------------------------------
    def startService(self):
        super().startService()
        self.stopping = False
        s = self.settings
        for link in self.links:
            policy = backoffPolicy(s.reconnect_initial, s.reconnect_max,
                                   s.reconnect_factor, jitter=self.rng.random)
            link.service = ClientService(self._endpoint(link.address),
                                         _LinkFactory(link), policy,
                                         clock=self.clock)
            link.service.startService()

    def stopService(self):
        """Drain (bounded), DPR every open peer, close. Deferred fires when done."""
        super().stopService()
        self.stopping = True
        for req in list(self.queue):
            if not req.sent:
                self._fail(req, NoPeerAvailable("Diameter client stopping"))
        return defer.ensureDeferred(self._stop())

    async def _stop(self):
        if self.outstanding_count():
            waiter = defer.Deferred()
            self._idle.append(waiter)
            waiter.addTimeout(self.settings.drain_timeout, self.clock,
                              onTimeoutCancel=lambda *a: None)
            await waiter
        for req in list(self.queue):
            self._fail(req, PeerLost("Diameter client stopped"))
        await defer.gatherResults([link.proto.disconnect() for link in self.links
                                   if link.proto is not None
                                   and link.proto.state is PeerState.OPEN])
        await defer.gatherResults([link.service.stopService()
                                   for link in self.links if link.service])

    # -- queries -------------------------------------------------------------
    def open_peers(self) -> list[str]:
        """Labels of the peers currently usable."""
        return [link.label for link in self.links if link.usable]

    def outstanding_count(self) -> int:
        return sum(len(link.proto.outstanding) for link in self.links
                   if link.proto is not None) + sum(
            1 for r in self.queue if r.sent)

    def when_open(self, timeout: float) -> defer.Deferred:
        """Fires (True) once any peer is open, or False after C{timeout}."""
        return poll_until(self.clock, lambda: bool(self.open_peers()), timeout)

    # -- requests ------------------------------------------------------------
    def request(self, data: bytes) -> defer.Deferred:
        """Send one encoded request; the Deferred fires with its answer.

        @param data: a whole encoded request; its identifiers are restamped.

        @return: Deferred firing with the C{DecodedMessage} answer, failing with C{NoPeerAvailable} (never sent), C{RequestTimedOut}, C{PeerLost} or C{DiameterDecodeError} (malformed answer).  Cancelling it abandons the request (a late answer is dropped).
        """
        e2e = self.e2e.next()
        req = PendingRequest(set_identifiers(data, end_to_end=e2e), e2e)
        req.deferred = defer.Deferred(lambda d: self._abandon(req))
        if self.stopping or not self.running:
            req.done = True
            req.deferred.errback(NoPeerAvailable("Diameter client not running"))
            return req.deferred
        proto = self._pick()
        if proto is None:
            if not any(link.usable for link in self.links):
                self.stats["no_peer"] += 1
                req.done = True
                req.deferred.errback(NoPeerAvailable())
                return req.deferred
            if len(self.queue) >= self.settings.queue_limit:
                self.stats["queue_full"] += 1
                req.done = True
                req.deferred.errback(NoPeerAvailable(
                    "Diameter request queue full"))
                return req.deferred
            self.queue.append(req)
        else:
            proto.send_request(req)
        self.stats["requests"] += 1
        req.timer = self.clock.callLater(self.settings.request_timeout,
                                         self._timed_out, req)
        return req.deferred

    def _pick(self, exclude=None) -> DiameterPeerProtocol | None:
        best, best_key = None, None
        window = self.settings.window
        for link in self.links:
            p = link.proto
            if p is None or p is exclude or not p.usable:
                continue
            n = len(p.outstanding)
            if n >= window:
                continue
            key = (link.address.priority, n, link.index)
            if best_key is None or key < best_key:
                best, best_key = p, key
        return best

    def _drain(self):
        while self.queue:
            proto = self._pick()
            if proto is None:
                return
            req = self.queue.popleft()
            if req.sent:
                self.stats["retransmitted"] += 1
            proto.send_request(req)

    def _release(self, req: PendingRequest):
        req.done = True
        if req.timer is not None and req.timer.active():
            req.timer.cancel()
        req.timer = None
        if req.proto is not None:
            req.proto.forget(req)
        try:
            self.queue.remove(req)
        except ValueError:
            pass

    def _after_release(self):
        if self.queue:
            self._drain()
        if self._idle and not self.outstanding_count():
            idle, self._idle = self._idle, []
            for d in idle:
                if not d.called:
                    d.callback(None)

    def _fail(self, req: PendingRequest, error: Exception):
        if req.done:
            return
        self._release(req)
        req.deferred.errback(error)
        self._after_release()

    def answered(self, req: PendingRequest, answer):
        """Called by a protocol: C{answer} is a DecodedMessage or a
        DiameterDecodeError for this request."""
        if req.done:
            return
        if req.proto is not None:
            req.proto.link.answers += 1
        self._release(req)
        self.stats["answers"] += 1
        if isinstance(answer, Exception):
            self.stats["malformed"] += 1
            req.deferred.errback(answer)
        else:
            req.deferred.callback(answer)
        self._after_release()

    def _timed_out(self, req: PendingRequest):
        req.timer = None
        self.stats["timeouts"] += 1
        self._fail(req, RequestTimedOut(
            "no Diameter answer within %.1f s" % self.settings.request_timeout
            if req.sent else "no Diameter peer window free within %.1f s"
            % self.settings.request_timeout, sent=req.sent))

    def _abandon(self, req: PendingRequest):
        if not req.done:
            self._release(req)
            self._after_release()

    def _fail_over(self, proto: DiameterPeerProtocol):
        """Move C{proto}'s outstanding requests to another peer (T flag)."""
        moved = list(proto.outstanding.values())
        proto.outstanding.clear()
        for req in moved:
            req.proto = None
            if req.done:
                continue
            if not self.settings.failover or self.stopping:
                self._fail(req, PeerLost())
                continue
            alt = self._pick(exclude=proto)
            if alt is not None:
                self.stats["retransmitted"] += 1
                self.log.info("Diameter request e2e={e2e:#x} retransmitted "
                              "to {peer} (T flag)", e2e=req.end_to_end,
                              peer=alt.link.label)
                alt.send_request(req)
            else:
                # Wait (until its timeout) for any peer to open, then resend.
                self.queue.appendleft(req)
        self._after_release()
