"""ESME client mode: iVOMS binds to an SMSC and keeps the bind(s) up (DESIGN §5).

Each configured SMSC is an L{SmscConnector}: one C{ClientService} binding
as transceiver, or two (receiver and transmitter).  C{ClientService}
reconnects with exponential back-off on the injected clock; a bind that
fails or a link that dies is simply reconnected and bound again.  MO
messages (deliver_sm, data_sm) go to the L{protocols.smpp.channel.SmsChannel};
replies go out as submit_sm on a transmitter or transceiver bind.
"""

from __future__ import annotations

import itertools
import random

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer, endpoints
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from protocols.smpp.pdus import SubmitSm
from protocols.smpp.protocol import (
    RECEIVER, TRANSCEIVER, TRANSMITTER, SmppProtocol, send_all)
from protocols.smpp.throttle import Throttle


class _EsmeFactory(Factory):
    """Builds the esme-role sessions of one bind of a connector."""

    def __init__(self, connector: "SmscConnector", bind_type: str) -> None:
        self.connector = connector
        self.bind_type = bind_type

    def buildProtocol(self, addr) -> SmppProtocol:
        c = self.connector
        p = SmppProtocol(c, c.session_settings, c.clock, role="esme",
                         local_system_id=c.smsc.system_id,
                         out_throttle=c.throttle if self.bind_type != RECEIVER else None)
        p.factory = self
        return p


class SmscConnector(service.MultiService):
    """The bind(s) to one SMSC and the owner of their sessions.

    @ivar sessions: the sessions bound now.
    """

    log = Logger()

    def __init__(self, smsc, session, channel, *, reactor, clock=None, endpoint=None,
                 jitter=random.random) -> None:
        """
        @param smsc: a L{protocols.smpp.config.SmscSettings}.
        @param session: a L{protocols.smpp.config.SessionSettings}.
        @param channel: the L{protocols.smpp.channel.SmsChannel}.
        @param reactor: used to build the endpoint from C{smsc.endpoint}.
        @param clock: timers and back-off (default: C{reactor}).
        @param endpoint: an C{IStreamClientEndpoint} to use instead.
        @param jitter: back-off noise, seconds (tests pass C{lambda: 0}).
        """
        super().__init__()
        self.setName("smpp-smsc-" + smsc.name)
        self.smsc = smsc
        self.session_settings = session
        self.channel = channel
        self.clock = clock or reactor
        self.throttle = Throttle(smsc.throughput, self.clock)
        self.sessions: list[SmppProtocol] = []
        self._ids = itertools.count(1)
        self._next = itertools.count()
        ep = endpoint or endpoints.clientFromString(reactor, smsc.endpoint)
        # backoffPolicy waits initial * factor ** n before attempt n (n >= 1):
        # scale it so that the first retry comes after retry_initial.
        policy = backoffPolicy(smsc.retry_initial / smsc.retry_factor, smsc.retry_max,
                               smsc.retry_factor, jitter=jitter)
        binds = [TRANSCEIVER] if smsc.bind == "transceiver" else [RECEIVER, TRANSMITTER]
        self.binders: dict[str, ClientService] = {}
        for bind_type in binds:
            cs = ClientService(ep, _EsmeFactory(self, bind_type), retryPolicy=policy,
                               clock=self.clock,
                               prepareConnection=lambda p, b=bind_type: self._bind(p, b))
            cs.setServiceParent(self)
            self.binders[bind_type] = cs

    def _bind(self, session: SmppProtocol, bind_type: str) -> defer.Deferred:
        s = self.smsc
        d = session.bind(bind_type, s.system_id, s.password, system_type=s.system_type,
                         address_range=s.address_range)

        def refused(failure):
            # ClientService counts a failed prepareConnection as a failed
            # attempt and schedules the retry (with back-off) itself.  The
            # connection that bind() closes must then not be reported to it a
            # second time: in its Waiting state that is an invalid transition.
            if hasattr(session, "_lostNotification"):
                session._lostNotification = lambda reason: None
            return failure
        d.addErrback(refused)
        return d

    # -- owner interface -------------------------------------------------

    def session_bound(self, session: SmppProtocol) -> None:
        self.sessions.append(session)
        self.log.info("bound to SMSC {smsc} as {bind_type}", smsc=self.smsc.name,
                      bind_type=session.bind_type)

    def session_lost(self, session: SmppProtocol) -> None:
        if session in self.sessions:
            self.sessions.remove(session)
            self.log.warn("bind to SMSC {smsc} ({bind_type}) lost; reconnecting",
                          smsc=self.smsc.name, bind_type=session.bind_type)

    def message_received(self, session: SmppProtocol, pdu):
        """Hand an MO to the channel; return C{(status, message_id, follow_up)}."""
        ref = "%s:%d" % (self.smsc.name, next(self._ids))
        status, follow_up = self.channel.accept(
            pdu, origin=self.smsc.name, ref=ref, source="smsc:" + self.smsc.name,
            send=self.send_reply)
        return status, "", follow_up

    def outbind_received(self, session: SmppProtocol, pdu) -> None:
        """An outbind (§4.1.7): answer with bind_receiver on that connection."""
        self.log.info("outbind from SMSC {smsc}", smsc=self.smsc.name)
        self._bind(session, RECEIVER).addErrback(lambda f: None)

    # -- replies ---------------------------------------------------------

    def _transmitter(self) -> defer.Deferred:
        ready = [s for s in self.sessions if s.can_send_mt]
        if ready:
            return defer.succeed(ready[next(self._next) % len(ready)])
        binder = self.binders.get(TRANSCEIVER) or self.binders[TRANSMITTER]
        d = binder.whenConnected()
        d.addTimeout(self.session_settings.response_timeout, self.clock)
        return d

    def send_reply(self, parts: list[dict]) -> defer.Deferred:
        """Send the parts of one reply as submit_sm.

        @return: a Deferred firing when every part was answered ESME_ROK;
            failing with L{SmppError}, a timeout, or C{ConnectionLost}.
        """
        d = self._transmitter()

        d.addCallback(lambda session: send_all(
            session, [SubmitSm.build(**fields) for fields in parts], "submit_sm"))
        return d

    def stopService(self) -> defer.Deferred:
        unbinds = [s.unbind() for s in list(self.sessions)]
        d = defer.DeferredList(unbinds, consumeErrors=True)
        d.addCallback(lambda _: super(SmscConnector, self).stopService())
        return d
