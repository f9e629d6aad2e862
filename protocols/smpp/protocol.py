"""The SMPP 3.4 session as a Twisted protocol: framing, bind state, window, keep-alive.

One class serves both modes: C{role="smsc"} when a peer binds to our
listener (server mode), C{role="esme"} when we bind to an SMSC (client
mode).  What to do with a bind or a message is asked of an injected
I{owner} (the listener factory or the client connector), which provides::

    bind_requested(session, pdu) -> (command_status, throttle or None)   # smsc role
    session_bound(session)
    session_lost(session)
    message_received(session, pdu) -> (command_status, message_id, follow_up or None)
                                       (command_status may be a Deferred status)
    outbind_received(session, pdu)                                        # esme role, optional

C{follow_up()} is called right after the response is written (it starts
the activation, so a reply never overtakes the response to its MO).

A refused bind is answered with its C{bind_resp} and the connection is
then closed, so credentials cannot be tried again and again on one
connection (the listener also throttles failed binds per account and per
address: L{protocols.smpp.server.SmppServerFactory}).

Bad input (SMPP v3.4 §2.3, §3.3, §5.1.3): a PDU that fails to decode is
answered per L{protocols.smpp.codec.error_response}; if framing is lost
(a fatal L{DecodeError}) only this connection closes.
"""

from __future__ import annotations

import itertools
from collections import deque

from twisted.internet import defer, error
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from protocols.smpp.codec import (
    BindReceiver, BindTransceiver, BindTransmitter, DataSm, DecodeError,
    DeliverSm, EnquireLink, GenericNack, Outbind, SubmitSm, Unbind,
    command_name, decode_pdu, encode_pdu, error_response, make_response, split_frames)
from protocols.smpp.errors import (
    ESME_RALYBND, ESME_RINVBNDSTS, ESME_RINVCMDID, ESME_RMSGQFUL, ESME_ROK,
    ESME_RSYSERR, ESME_RTHROTTLED, status_name)
from protocols.smpp.pdus import RESPONSE_BIT

OPEN = "open"
BINDING = "binding"
BOUND = "bound"
UNBINDING = "unbinding"
CLOSED = "closed"

TRANSMITTER = "transmitter"
RECEIVER = "receiver"
TRANSCEIVER = "transceiver"

BIND_CLASSES = {BindTransmitter: TRANSMITTER, BindReceiver: RECEIVER,
                BindTransceiver: TRANSCEIVER}
BIND_REQUEST = {v: k for k, v in BIND_CLASSES.items()}
MESSAGE_CLASSES = (SubmitSm, DeliverSm, DataSm)

_session_ids = itertools.count(1)


class SmppError(Exception):
    """A request that did not get an ESME_ROK answer.

    @ivar status: the command_status received (or a local one).
    """

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__("%s%s" % (status_name(status), ": " + message if message else ""))
        self.status = status


class ResponseTimeout(SmppError):
    """No response within the session's response_timeout."""

    def __init__(self, what: str) -> None:
        super().__init__(ESME_RSYSERR, "no response to %s" % (what,))


class SmppProtocol(Protocol):
    """One SMPP connection.

    @ivar state: L{OPEN}, L{BINDING}, L{BOUND}, L{UNBINDING} or L{CLOSED}.
    @ivar bind_type: L{TRANSMITTER}, L{RECEIVER} or L{TRANSCEIVER} once bound.
    @ivar system_id: the peer's system_id (smsc role) or ours (esme role).
    @ivar throttle: limits the messages the peer sends (smsc role).
    @ivar out_throttle: limits the messages we send (esme role).
    """

    log = Logger()

    def __init__(self, owner, settings, clock, *, role: str = "smsc",
                 local_system_id: str = "ivoms", out_throttle=None) -> None:
        """
        @param owner: see the module docstring.
        @param settings: a L{protocols.smpp.config.SessionSettings}.
        @param clock: an C{IReactorTime}; every timer runs on it.
        @param role: C{"smsc"} (peers bind to us) or C{"esme"} (we bind).
        @param local_system_id: the system_id we put in bind responses.
        """
        if role not in ("smsc", "esme"):
            raise ValueError("role must be 'smsc' or 'esme'")
        self.owner = owner
        self.settings = settings
        self.clock = clock
        self.role = role
        self.local_system_id = local_system_id
        self.out_throttle = out_throttle
        self.throttle = None
        self.id = "smpp-%d" % (next(_session_ids),)
        self.state = OPEN
        self.bind_type: str | None = None
        self.system_id = ""
        self.peer = ""
        self.account = None
        self._buffer = b""
        self._closing = False
        self._sequence = 0
        # seq -> (Deferred, deadline, command_id), oldest first: every
        # request has the same response_timeout, so one timer serves them all
        self._pending: dict[int, tuple[defer.Deferred, float, int]] = {}
        self._expiry_call = None
        self._queue: deque = deque()
        self._pump_call = None
        self._bind_timer = None
        self._idle_timer = None
        self._unbind_timer = None
        self._last_rx = 0.0
        self._lost = defer.Deferred()
        self.received = 0
        self.sent = 0

    # -- connection ------------------------------------------------------

    def connectionMade(self) -> None:
        nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if nodelay is not None:
            try:
                nodelay(True)
            except Exception:  # noqa: BLE001 - not a TCP socket (UNIX, TLS wrappers)
                pass
        peer = self.transport.getPeer()
        self.peer = getattr(peer, "host", str(peer))
        self._last_rx = self.clock.seconds()
        if self.role == "smsc":
            self._bind_timer = self.clock.callLater(self.settings.bind_timeout,
                                                    self._bind_expired)
        self.log.info("{session} connected from {peer} ({role} role)",
                      session=self.id, peer=self.peer, role=self.role)

    def connectionLost(self, reason=None) -> None:
        was_bound = self.state == BOUND or self.state == UNBINDING
        self.state = CLOSED
        for timer in (self._bind_timer, self._idle_timer, self._unbind_timer, self._pump_call,
                      self._expiry_call):
            if timer is not None and timer.active():
                timer.cancel()
        pending, self._pending = self._pending, {}
        queued, self._queue = self._queue, deque()
        lost = Failure(error.ConnectionLost("SMPP session %s closed" % (self.id,)))
        for d, _, _ in pending.values():
            d.errback(lost)
        for _, d in queued:
            d.errback(lost)
        self.log.info("{session} ({system_id}) disconnected", session=self.id,
                      system_id=self.system_id or "-")
        try:
            self.owner.session_lost(self)
        finally:
            if not self._lost.called:
                self._lost.callback(was_bound)

    def when_lost(self) -> defer.Deferred:
        """A Deferred that fires once the connection is gone."""
        d = defer.Deferred()
        if self._lost.called:
            d.callback(None)
        else:
            self._lost.addBoth(lambda r: (d.callback(None), r)[1])
        return d

    def close(self) -> None:
        """Drop the connection (after anything already written)."""
        if self.transport is not None and self.state != CLOSED and not self._closing:
            self._closing = True
            self.transport.loseConnection()

    # -- receiving -------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._buffer += data
        self._last_rx = self.clock.seconds()
        while not self._closing and self._buffer:
            try:
                frames, self._buffer = split_frames(self._buffer, self.settings.max_pdu_length)
            except DecodeError as e:
                self._buffer = b""
                self._bad_pdu(e)
                return
            if not frames:
                return
            for frame in frames:
                try:
                    pdu = decode_pdu(frame, self.settings.max_pdu_length)
                except DecodeError as e:
                    self._bad_pdu(e)
                    if e.fatal:
                        self._buffer = b""
                        return
                    continue
                self.received += 1
                try:
                    self._dispatch(pdu)
                except Exception:  # noqa: BLE001 - a bug must not kill the link
                    self.log.failure("{session}: handling {command} failed",
                                     session=self.id, command=pdu.command_name)
                    if not pdu.is_response:
                        self._answer(pdu, ESME_RSYSERR)
                if self._closing:
                    return

    def _bad_pdu(self, e: DecodeError) -> None:
        self.log.warn("{session} ({system_id}): bad PDU from {peer}: {error}",
                      session=self.id, system_id=self.system_id or "-", peer=self.peer,
                      error=str(e))
        answer = error_response(e)
        if answer is not None:
            self._write(answer)
        if e.fatal:
            self.log.warn("{session}: framing lost, closing this connection", session=self.id)
            self.close()

    def _dispatch(self, pdu) -> None:
        if pdu.command_id & RESPONSE_BIT:
            self._response(pdu)
            return
        kind = type(pdu)
        if kind is EnquireLink:
            self._write(make_response(pdu))
        elif kind in MESSAGE_CLASSES:
            self._message(pdu)
        elif kind in BIND_CLASSES:
            self._bind_request(pdu)
        elif kind is Unbind:
            self._unbind_request(pdu)
        elif kind is Outbind:
            self._outbind(pdu)
        else:  # pragma: no cover - every decodable request is listed above
            self._write(GenericNack(sequence_number=pdu.sequence_number,
                                    command_status=ESME_RINVCMDID))

    def _answer(self, pdu, status: int, **values) -> None:
        if isinstance(pdu, Outbind):
            self._write(GenericNack(sequence_number=pdu.sequence_number,
                                    command_status=status))
        else:
            self._write(make_response(pdu, status, **values))

    def _message(self, pdu) -> None:
        if not self._may_send_us(type(pdu)):
            self._answer(pdu, ESME_RINVBNDSTS)
            return
        if self.throttle is not None and not self.throttle.allow():
            self._answer(pdu, ESME_RTHROTTLED)
            return
        status, message_id, follow_up = self.owner.message_received(self, pdu)
        if isinstance(status, defer.Deferred):
            # answered once the MO is durable (see SmsChannel.accept)
            status.addCallback(self._respond, pdu, message_id, follow_up)
            return
        self._respond(status, pdu, message_id, follow_up)

    def _respond(self, status: int, pdu, message_id: str, follow_up) -> None:
        if isinstance(pdu, (SubmitSm, DataSm)) and status == ESME_ROK:
            self._answer(pdu, status, message_id=message_id or "")
        else:
            self._answer(pdu, status)
        if follow_up is not None:
            try:
                follow_up()
            except Exception:  # noqa: BLE001 - the MO is already answered
                self.log.failure("{session}: starting work for {command} failed",
                                 session=self.id, command=pdu.command_name)

    def _may_send_us(self, kind) -> bool:
        """Whether the peer may send this message PDU in the current state."""
        if self.state != BOUND:
            return False
        if self.role == "smsc":
            # The peer transmits MO to us (submit_sm, or deliver_sm/data_sm).
            return self.bind_type in (TRANSMITTER, TRANSCEIVER)
        # We are the ESME: the SMSC delivers to a receiver/transceiver.
        return kind is not SubmitSm and self.bind_type in (RECEIVER, TRANSCEIVER)

    @property
    def can_send_mt(self) -> bool:
        """Whether we may send a message PDU on this bind now."""
        if self.state != BOUND:
            return False
        if self.role == "smsc":
            return self.bind_type in (RECEIVER, TRANSCEIVER)
        return self.bind_type in (TRANSMITTER, TRANSCEIVER)

    def _bind_request(self, pdu) -> None:
        if self.role != "smsc":
            self._answer(pdu, ESME_RINVBNDSTS)
            return
        if self.state != OPEN:
            self._answer(pdu, ESME_RALYBND)
            return
        bind_type = BIND_CLASSES[type(pdu)]
        status, throttle = self.owner.bind_requested(self, pdu)
        if status != ESME_ROK:
            self.log.warn("{session}: {bind_type} bind as {system_id!r} from {peer} "
                          "refused: {status}", session=self.id, bind_type=bind_type,
                          system_id=pdu.system_id, peer=self.peer, status=status_name(status))
            self._answer(pdu, status)
            self.close()        # a refused bind gets no second try on this connection
            return
        self.system_id = pdu.system_id
        self.throttle = throttle
        self._answer(pdu, ESME_ROK, system_id=self.local_system_id)
        self._bound(bind_type)

    def _bound(self, bind_type: str) -> None:
        self.state = BOUND
        self.bind_type = bind_type
        if self._bind_timer is not None and self._bind_timer.active():
            self._bind_timer.cancel()
        self._arm_idle(self.settings.enquire_link_interval)
        self.log.info("{session} bound {bind_type} as {system_id} ({peer})",
                      session=self.id, bind_type=bind_type, system_id=self.system_id,
                      peer=self.peer)
        self.owner.session_bound(self)
        self._pump()

    def _unbind_request(self, pdu) -> None:
        if self.state not in (BOUND, UNBINDING):
            self._answer(pdu, ESME_RINVBNDSTS)
            return
        self._answer(pdu, ESME_ROK)
        self.log.info("{session} ({system_id}) unbound by the peer", session=self.id,
                      system_id=self.system_id)
        self.state = UNBINDING
        self.close()

    def _outbind(self, pdu) -> None:
        handler = getattr(self.owner, "outbind_received", None)
        if self.role != "esme" or self.state != OPEN or handler is None:
            self._answer(pdu, ESME_RINVBNDSTS)
            return
        handler(self, pdu)

    def _response(self, pdu) -> None:
        entry = self._pending.pop(pdu.sequence_number, None)
        if entry is None:
            if not isinstance(pdu, GenericNack):
                self.log.debug("{session}: {command} for unknown sequence {seq} ignored",
                               session=self.id, command=pdu.command_name,
                               seq=pdu.sequence_number)
            else:
                self.log.warn("{session}: generic_nack {status} for sequence {seq}",
                              session=self.id, status=status_name(pdu.command_status),
                              seq=pdu.sequence_number)
            return
        if not self._pending and self._expiry_call is not None:
            self._expiry_call.cancel()
            self._expiry_call = None
        entry[0].callback(pdu)
        if self._queue:
            self._pump()

    # -- sending ---------------------------------------------------------

    def _write(self, pdu) -> None:
        if self.transport is not None and self.state != CLOSED:
            self.sent += 1
            self.transport.write(encode_pdu(pdu))

    def _next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        while self._sequence in self._pending:
            self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    @property
    def queued(self) -> int:
        """Requests waiting for a window slot."""
        return len(self._queue)

    def send_request(self, pdu, *, control: bool = False) -> defer.Deferred:
        """Send a request PDU (its sequence_number is assigned here).

        Message PDUs wait in a local queue while the window is full (or the
        out_throttle is empty); C{control} PDUs (bind, unbind, enquire_link)
        go at once.

        @return: a Deferred firing with the response PDU, whatever its
            command_status (generic_nack included); failing with
            L{ResponseTimeout}, C{ConnectionLost}, or L{SmppError}
            C{ESME_RMSGQFUL} when the local queue is full.
        """
        d = defer.Deferred()
        if self.state == CLOSED:
            d.errback(error.ConnectionLost("SMPP session %s closed" % (self.id,)))
            return d
        if control:
            self._transmit(pdu, d)
            return d
        if not self._queue and self.out_throttle is None and self.state == BOUND \
                and len(self._pending) < self.settings.window:
            self._transmit(pdu, d)          # nothing waits before it: straight out
            return d
        if len(self._queue) >= self.settings.max_queued:
            d.errback(SmppError(ESME_RMSGQFUL, "local queue full"))
            return d
        self._queue.append((pdu, d))
        self._pump()
        return d

    def _pump(self) -> None:
        if self._pump_call is not None and self._pump_call.active():
            return
        window = self.settings.window
        while self._queue and self.state == BOUND and len(self._pending) < window:
            if self.out_throttle is not None and not self.out_throttle.allow():
                self._pump_call = self.clock.callLater(self.out_throttle.delay() or 0.001,
                                                       self._pump)
                return
            pdu, d = self._queue.popleft()
            self._transmit(pdu, d)

    def _transmit(self, pdu, d: defer.Deferred) -> None:
        seq = self._next_sequence()
        timeout = self.settings.response_timeout
        self._pending[seq] = (d, self.clock.seconds() + timeout, pdu.command_id)
        if self._expiry_call is None:
            self._expiry_call = self.clock.callLater(timeout, self._expire_due)
        if self.transport is not None and self.state != CLOSED:
            self.sent += 1
            self.transport.write(encode_pdu(pdu, sequence_number=seq))

    def _expire_due(self) -> None:
        """Fail every request whose response_timeout has passed (oldest first),
        then wait for the next deadline."""
        self._expiry_call = None
        now = self.clock.seconds()
        due = []
        while self._pending:
            seq = next(iter(self._pending))
            entry = self._pending[seq]
            if entry[1] > now:
                self._expiry_call = self.clock.callLater(entry[1] - now, self._expire_due)
                break
            del self._pending[seq]
            due.append((seq, entry))
        for seq, (d, _, command_id) in due:
            what = command_name(command_id)
            self.log.warn("{session} ({system_id}): no response to {command} seq {seq} "
                          "within {timeout}s", session=self.id, system_id=self.system_id or "-",
                          command=what, seq=seq, timeout=self.settings.response_timeout)
            d.errback(ResponseTimeout(what))
        if due:
            self._pump()

    # -- keep-alive and timers -------------------------------------------

    def _arm_idle(self, delay: float) -> None:
        self._idle_timer = self.clock.callLater(delay, self._idle_check)

    def _idle_check(self) -> None:
        if self.state != BOUND:
            return
        interval = self.settings.enquire_link_interval
        idle = self.clock.seconds() - self._last_rx
        if idle < interval:
            self._arm_idle(interval - idle)
            return
        d = self.send_request(EnquireLink(), control=True)
        d.addErrback(self._keepalive_failed)
        self._arm_idle(interval)

    def _keepalive_failed(self, failure) -> None:
        if failure.check(ResponseTimeout):
            self.log.warn("{session} ({system_id}): enquire_link unanswered, closing",
                          session=self.id, system_id=self.system_id or "-")
            self.close()

    def _bind_expired(self) -> None:
        if self.state == OPEN:
            self.log.warn("{session}: not bound within {timeout}s, closing",
                          session=self.id, timeout=self.settings.bind_timeout)
            self.close()

    # -- esme role -------------------------------------------------------

    def bind(self, bind_type: str, system_id: str, password: str, *,
             system_type: str = "", address_range: str = "") -> defer.Deferred:
        """Bind to the SMSC (esme role).

        @return: a Deferred firing with this session once bound; failing
            with L{SmppError} (the refusal's status) or L{ResponseTimeout},
            after which the connection is closed.
        """
        cls = BIND_REQUEST[bind_type]
        self.state = BINDING
        self.system_id = system_id
        d = self.send_request(cls(system_id=system_id, password=password,
                                  system_type=system_type, address_range=address_range),
                              control=True)

        def answered(resp):
            if isinstance(resp, GenericNack) or resp.command_status != ESME_ROK:
                raise SmppError(resp.command_status, "%s bind refused" % (bind_type,))
            if self.state == CLOSED:
                raise error.ConnectionLost("closed while binding")
            self._bound(bind_type)
            return self

        def failed(failure):
            self.log.warn("{session}: {bind_type} bind as {system_id} failed: {why}",
                          session=self.id, bind_type=bind_type, system_id=system_id,
                          why=failure.getErrorMessage())
            self.close()
            return failure
        d.addCallback(answered)
        d.addErrback(failed)
        return d

    def unbind(self) -> defer.Deferred:
        """Unbind and close; the Deferred fires once the connection is gone."""
        done = self.when_lost()
        if self.state == CLOSED:
            return done
        if self.state != BOUND:
            self.close()
            return done
        self.state = UNBINDING
        d = self.send_request(Unbind(), control=True)
        d.addBoth(lambda _: self.close())
        self._unbind_timer = self.clock.callLater(self.settings.unbind_timeout, self.close)
        return done


def send_all(session, requests, name: str) -> defer.Deferred:
    """Send the message PDUs C{requests} (e.g. the parts of one reply) on C{session}.

    @param name: the PDUs' command name, for the error message.
    @return: a Deferred firing with C{None} when every one was answered
        ESME_ROK; failing with L{SmppError} for the first one refused
        (generic_nack included), or with the first failure of
        L{SmppProtocol.send_request}.
    """
    def check(responses):
        for resp in responses:
            if isinstance(resp, GenericNack) or resp.command_status != ESME_ROK:
                raise SmppError(resp.command_status, "%s refused (%s)" % (
                    name, status_name(resp.command_status)))

    if len(requests) == 1:           # the usual reply: one part, no gathering
        d = session.send_request(requests[0])
        d.addCallback(lambda resp: check((resp,)))
        return d
    d = defer.gatherResults([session.send_request(pdu) for pdu in requests],
                            consumeErrors=True)
    d.addCallback(check)
    d.addErrback(lambda f: f.value.subFailure if isinstance(f.value, defer.FirstError) else f)
    return d


__all__ = [
    "SmppProtocol", "SmppError", "ResponseTimeout", "OPEN", "BINDING", "BOUND",
    "UNBINDING", "CLOSED", "TRANSMITTER", "RECEIVER", "TRANSCEIVER", "BIND_CLASSES",
    "BIND_REQUEST", "send_all",
]
