"""Server mode: the SMPP listener SMSCs bind to, its accounts and the MT reply route.

An account (from the config) says who may bind: system_id and password,
allowed bind types, allowed peer addresses, how many binds at once, and how
many messages per second its binds may send together.  MO messages go to
the L{protocols.smpp.channel.SmsChannel}; replies go back as deliver_sm on a
receiver or transceiver bind of the same account.
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import os

from twisted.application import service
from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from core.throttle import FailureThrottle
from core.tls import server_endpoint
from protocols.smpp.errors import ESME_RBINDFAIL, ESME_RINVPASWD, ESME_RINVSYSID, ESME_ROK
from protocols.smpp.pdus import DeliverSm
from protocols.smpp.protocol import BIND_CLASSES, SmppProtocol, send_all
from protocols.smpp.throttle import Throttle


#: Failed binds per minute, per system_id and per peer address, before binds
#: from it are refused unchecked until the minute ends.
BIND_FAILURES = 10


class NoRoute(Exception):
    """No receiver or transceiver bind of the account is up to carry a reply."""


class Account:
    """An account's settings and its live binds."""

    def __init__(self, settings, clock) -> None:
        self.settings = settings
        self.sessions: list[SmppProtocol] = []
        self.throttle = Throttle(settings.throughput, clock)
        self.networks = [ipaddress.ip_network(a, strict=False)
                         for a in settings.allowed_addresses]
        self._next = itertools.count()

    def address_allowed(self, host: str) -> bool:
        """Whether a peer at C{host} may bind to this account."""
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def receiver(self, preferred: SmppProtocol | None = None) -> SmppProtocol | None:
        """A bind that can take a deliver_sm: C{preferred} if it can, else round robin."""
        if preferred is not None and preferred.can_send_mt:
            return preferred
        ready = [s for s in self.sessions if s.can_send_mt]
        if not ready:
            return None
        return ready[next(self._next) % len(ready)]


class SmppServerFactory(ServerFactory):
    """Builds server-mode sessions and is their owner (see L{protocols.smpp.protocol})."""

    log = Logger()

    def __init__(self, server, session, channel, *, clock) -> None:
        """
        @param server: a L{protocols.smpp.config.ServerSettings}.
        @param session: a L{protocols.smpp.config.SessionSettings}.
        @param channel: the L{protocols.smpp.channel.SmsChannel}.
        @param clock: an C{IReactorTime} for every timer.
        """
        self.server = server
        self.session_settings = session
        self.channel = channel
        self.clock = clock
        self.accounts = {a.system_id: Account(a, clock) for a in server.accounts}
        #: failed binds per system_id and per peer address (an L{IAuthThrottle})
        self.bind_failures = FailureThrottle(clock, per_account=BIND_FAILURES,
                                             per_address=BIND_FAILURES)
        self.sessions: set[SmppProtocol] = set()
        self._prefix = os.urandom(3).hex()
        self._message_ids = itertools.count(1)

    def buildProtocol(self, addr) -> SmppProtocol:
        p = SmppProtocol(self, self.session_settings, self.clock, role="smsc",
                         local_system_id=self.server.system_id)
        p.factory = self
        self.sessions.add(p)
        return p

    # -- owner interface -------------------------------------------------

    def bind_requested(self, session: SmppProtocol, pdu):
        """Check a bind against the accounts; return C{(status, throttle)}.

        An account or an address with too many failed binds this minute
        (L{bind_failures}) is refused with C{ESME_RBINDFAIL} before its
        password is compared.
        """
        if not self.bind_failures.allowed(pdu.system_id, session.peer):
            return ESME_RBINDFAIL, None
        account = self.accounts.get(pdu.system_id)
        if account is None:
            self._bind_failed(None, session.peer)
            return ESME_RINVSYSID, None
        if not hmac.compare_digest(pdu.password.encode("latin-1"),
                                   account.settings.password.encode("latin-1")):
            self._bind_failed(pdu.system_id, session.peer)
            return ESME_RINVPASWD, None
        bind_type = BIND_CLASSES[type(pdu)]
        why = None
        if bind_type not in account.settings.bind_types:
            why = "bind type %s not allowed" % (bind_type,)
        elif not account.address_allowed(session.peer):
            why = "address %s not allowed" % (session.peer,)
        elif len(account.sessions) >= account.settings.max_binds:
            why = "already %d bind(s), the most allowed" % (len(account.sessions),)
        if why is not None:
            self.log.warn("bind of {system_id} refused: {why}", system_id=pdu.system_id, why=why)
            return ESME_RBINDFAIL, None
        session.account = account
        self.bind_failures.succeeded(pdu.system_id, session.peer)
        return ESME_ROK, account.throttle

    def _bind_failed(self, system_id, peer) -> None:
        if self.bind_failures.failed(system_id, peer):
            self.log.warn("binds throttled for system_id {system_id} or address {peer}: "
                          "too many failed binds", system_id=system_id or "-", peer=peer)

    def session_bound(self, session: SmppProtocol) -> None:
        session.account.sessions.append(session)

    def session_lost(self, session: SmppProtocol) -> None:
        self.sessions.discard(session)
        account = session.account
        if account is not None and session in account.sessions:
            account.sessions.remove(session)

    def message_received(self, session: SmppProtocol, pdu):
        """Hand an MO to the channel; return C{(status, message_id, follow_up)}."""
        message_id = "%s%x" % (self._prefix, next(self._message_ids))
        status, follow_up = self.channel.accept(
            pdu, origin=session.system_id, ref=message_id, source="smpp:" + session.system_id,
            send=lambda parts: self.send_reply(session, parts))
        return status, message_id, follow_up

    # -- replies ---------------------------------------------------------

    def send_reply(self, session: SmppProtocol, parts: list[dict]) -> defer.Deferred:
        """Send the parts of one reply as deliver_sm on a bind of C{session}'s account.

        @return: a Deferred firing when every part was answered ESME_ROK;
            failing with L{NoRoute} or L{SmppError}.
        """
        target = session.account.receiver(session) if session.account else None
        if target is None:
            return defer.fail(NoRoute("no receiver/transceiver bind of %s" % (
                session.system_id,)))
        return send_all(target, [DeliverSm.build(**fields) for fields in parts], "deliver_sm")

    def stop(self) -> defer.Deferred:
        """Unbind every session; the Deferred fires when all are gone."""
        return defer.DeferredList([s.unbind() for s in list(self.sessions)],
                                  consumeErrors=True)


class SmppServerService(service.Service):
    """Listens on the configured endpoint while running.

    @ivar port: the C{IListeningPort} once started (tests read the
        ephemeral port number from C{port.getHost().port}).
    """

    log = Logger()
    name = "smpp-server"

    def __init__(self, factory: SmppServerFactory, endpoint: str, reactor, tls=None) -> None:
        """
        @param endpoint: the Twisted server endpoint string.
        @param tls: the listener's L{core.tls.TlsListener} keys (None or unset: plain TCP).
        """
        self.factory = factory
        self.endpoint = endpoint
        self.reactor = reactor
        self.tls = tls
        self.port = None
        self._listening = None
        self._failure = None

    def startService(self) -> None:
        super().startService()
        ep = server_endpoint(self.reactor, self.endpoint, self.tls, "smpp.server")
        self._listening = ep.listen(self.factory)

        def listening(port):
            self.port = port
            self.log.info("SMPP listener on {address} ({accounts} account(s))",
                          address=port.getHost(), accounts=len(self.factory.accounts))
            return port

        def failed(failure):
            # one line (the reason is the operating system's), no traceback; the
            # failure is kept for when_listening, not left unhandled
            self.log.error("SMPP listener could not start on {endpoint}: {reason}",
                           endpoint=self.endpoint, reason=failure.getErrorMessage())
            self._failure = failure
        self._failure = None
        self._listening.addCallbacks(listening, failed)

    def when_listening(self) -> defer.Deferred:
        """A Deferred firing with the listening port, or failing with why it could not listen."""
        d = defer.Deferred()

        def tell(port):
            if self._failure is not None:
                d.errback(self._failure)
            else:
                d.callback(port)
            return port
        self._listening.addBoth(tell)
        return d

    def stopService(self) -> defer.Deferred:
        super().stopService()
        d = defer.maybeDeferred(self.port.stopListening) if self.port else defer.succeed(None)
        d.addCallback(lambda _: self.factory.stop())
        return d
