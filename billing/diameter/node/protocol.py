"""One Diameter peer connection, client side (RFC 6733 §5, RFC 3539 watchdog).

C{DiameterPeerProtocol} frames the TCP stream with C{framing.split_frames},
exchanges CER/CEA, answers DWR and DPR, runs the DWR/DWA watchdog on an
injected clock and matches answers to requests by Hop-by-Hop identifier.
It owns no policy: it reports to its C{link} (a C{billing.diameter.node.client}
peer link) when it opens, turns suspect and closes, and hands answers to
the link's pool.  Bad bytes never escape: a broken stream closes the
connection, a malformed request gets an error answer, a malformed answer
is handed to its request as a C{DiameterDecodeError}.

States: WAIT_CEA (CER sent) -> OPEN (watchdog OKAY or SUSPECT) ->
CLOSING (DPR sent or received) -> CLOSED.
"""
from __future__ import annotations

import enum
import random
from typing import TYPE_CHECKING

from twisted.internet import defer, protocol
from twisted.logger import Logger

from billing.diameter.message.constants import (
    CMD_CAPABILITIES_EXCHANGE, CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER,
    DIAMETER_COMMAND_UNSUPPORTED, DIAMETER_SUCCESS, DIAMETER_UNABLE_TO_COMPLY,
    DISCONNECT_REBOOTING)
from billing.diameter.message.errors import (
    DiameterDecodeError, DiameterEncodeError, DiameterFramingError)
from billing.diameter.message.framing import decode_message, split_frames
from billing.diameter.message.header import mark_retransmission, set_identifiers
from billing.diameter.message.identifiers import HopByHopIds
from billing.diameter.message.messages import (
    LocalIdentity, build_answer, build_cea, build_cer, build_dpa, build_dpr,
    build_dwa, build_dwr, build_error_answer)
from billing.diameter.message.parsing import (
    DecodedMessage, PeerCapabilities, parse_capabilities)

if TYPE_CHECKING:  # pragma: no cover
    from billing.diameter.node.client import PeerLink, PendingRequest


class PeerState(enum.Enum):
    WAIT_CEA = "wait-cea"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class DiameterPeerProtocol(protocol.Protocol):
    """Client side of one peer connection; see the module doc.

    @ivar state: a C{PeerState}.
    @ivar suspect: True once a DWR went unanswered for Tw (RFC 3539 SUSPECT).
    @ivar capabilities: what the peer announced in its CEA, once OPEN.
    @ivar outstanding: Hop-by-Hop id -> C{PendingRequest} sent on this link.
    """

    log = Logger()

    def __init__(self, link: "PeerLink", local: LocalIdentity, settings,
                 clock, rng: random.Random):
        self.link = link
        self.local = local
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.state = PeerState.WAIT_CEA
        self.suspect = False
        self.capabilities: PeerCapabilities | None = None
        self.outstanding: dict[int, "PendingRequest"] = {}
        self._hbh = HopByHopIds(rng)
        self._buffer = b""
        self._cer_hbh: int | None = None
        self._cea_timer = None
        self._watchdog = None
        self._dwr_hbh: int | None = None
        self._dpr_hbh: int | None = None
        self._dpa: defer.Deferred | None = None
        self._dpa_timer = None
        self.closed = defer.Deferred()

    # -- connection ------------------------------------------------------
    def connectionMade(self):
        self._cer_hbh = self._hbh.next()
        self._write(build_cer(self.local, hop_by_hop=self._cer_hbh,
                              end_to_end=self.link.pool.e2e.next()))
        self._cea_timer = self.clock.callLater(self.settings.cea_timeout,
                                               self._cea_timed_out)

    def _cea_timed_out(self):
        self._cea_timer = None
        self.log.warn("Diameter peer {peer}: no CEA within {t} s; closing",
                      peer=self.link.label, t=self.settings.cea_timeout)
        self.transport.abortConnection()

    def connectionLost(self, reason=protocol.connectionDone):
        previous, self.state = self.state, PeerState.CLOSED
        for timer in (self._cea_timer, self._watchdog, self._dpa_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._cea_timer = self._watchdog = self._dpa_timer = None
        if self._dpa is not None and not self._dpa.called:
            self._dpa.callback(False)
        self.link.protocol_closed(self, previous, reason)
        self.closed.callback(None)

    def _write(self, data: bytes) -> None:
        self.transport.write(data)

    # -- requests from the pool -----------------------------------------
    @property
    def usable(self) -> bool:
        """Open, not suspect, not closing: may take new requests."""
        return self.state is PeerState.OPEN and not self.suspect

    def send_request(self, req: "PendingRequest") -> None:
        """Stamp C{req} with a new Hop-by-Hop id and write it (T flag when
        it was already sent elsewhere)."""
        hbh = self._hbh.next()
        if req.sent:
            data = mark_retransmission(req.data, hop_by_hop=hbh)
        else:
            data = set_identifiers(req.data, hop_by_hop=hbh)
        req.hbh, req.proto, req.sent = hbh, self, True
        req.attempts += 1
        self.outstanding[hbh] = req
        self._write(data)

    def forget(self, req: "PendingRequest") -> None:
        """Stop waiting on this link for C{req} (a late answer is dropped)."""
        if self.outstanding.get(req.hbh) is req:
            del self.outstanding[req.hbh]

    def disconnect(self, cause: int = DISCONNECT_REBOOTING) -> defer.Deferred:
        """Send DPR; the Deferred fires True on DPA, False on timeout/loss.

        The connection is left open: the caller closes it (RFC 6733 §5.4:
        the DPR sender closes the transport after the DPA).
        """
        if self.state is not PeerState.OPEN:
            return defer.succeed(self.state is PeerState.CLOSING)
        self.state = PeerState.CLOSING
        self._dpr_hbh = self._hbh.next()
        self._dpa = defer.Deferred()
        self._write(build_dpr(self.local, cause, hop_by_hop=self._dpr_hbh,
                              end_to_end=self.link.pool.e2e.next()))
        self._dpa_timer = self.clock.callLater(self.settings.dpa_timeout,
                                               self._dpa_timed_out)
        return self._dpa

    def _dpa_timed_out(self):
        self._dpa_timer = None
        if self._dpa is not None and not self._dpa.called:
            self._dpa.callback(False)

    # -- watchdog (RFC 3539 §3.4) ----------------------------------------
    def _arm_watchdog(self):
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()
        j = self.settings.watchdog_jitter
        delay = self.settings.watchdog_interval + self.rng.uniform(-j, j)
        self._watchdog = self.clock.callLater(delay, self._watchdog_fired)

    def _watchdog_fired(self):
        self._watchdog = None
        if self.state is not PeerState.OPEN:
            return
        if self._dwr_hbh is None:
            self._dwr_hbh = self._hbh.next()
            self._write(build_dwr(self.local, hop_by_hop=self._dwr_hbh,
                                  end_to_end=self.link.pool.e2e.next()))
            self._arm_watchdog()
        elif not self.suspect:
            self.suspect = True
            self.log.warn("Diameter peer {peer}: DWR unanswered for Tw; "
                          "suspect, failing over", peer=self.link.label)
            self.link.protocol_suspect(self)
            self._arm_watchdog()
        else:
            self.log.warn("Diameter peer {peer}: still silent; closing",
                          peer=self.link.label)
            self.transport.abortConnection()

    def _traffic(self):
        """Any message received: the peer is alive (RFC 3539 OKAY)."""
        if self.state is PeerState.OPEN:
            if self.suspect:
                self.suspect = False
                self.log.info("Diameter peer {peer} answers again",
                              peer=self.link.label)
                self.link.protocol_recovered(self)
            self._arm_watchdog()

    # -- receiving ---------------------------------------------------------
    def dataReceived(self, data: bytes):
        self._buffer += data
        try:
            frames, self._buffer = split_frames(
                self._buffer, self.settings.max_message_length)
        except DiameterFramingError as e:
            self.log.warn("Diameter peer {peer}: broken stream ({why}); "
                          "closing", peer=self.link.label, why=e.reason)
            self._buffer = b""
            self.transport.abortConnection()
            return
        for frame in frames:
            if self.state is PeerState.CLOSED:
                return
            try:
                self._frame(frame)
            except Exception:
                self.log.failure("Diameter peer {peer}: error handling a "
                                 "message; closing", peer=self.link.label)
                self.transport.abortConnection()
                return

    def _frame(self, frame: bytes):
        try:
            msg = decode_message(frame)
        except DiameterDecodeError as e:
            self._bad_message(e)
            return
        self._traffic()
        if msg.header.is_request:
            self._request(msg)
        else:
            self._answer(msg)

    def _bad_message(self, e: DiameterDecodeError):
        h = e.header
        self.log.warn("Diameter peer {peer}: malformed message ({why})",
                      peer=self.link.label, why=e.reason)
        if h is None:
            return
        self._traffic()
        if h.is_request:
            answer = build_error_answer(e, self.local)
            if answer is not None:
                self._write(answer)
            return
        if h.hop_by_hop == self._cer_hbh and self.state is PeerState.WAIT_CEA:
            self.transport.abortConnection()
            return
        if h.hop_by_hop == self._dwr_hbh:
            self._dwr_hbh = None
            return
        req = self.outstanding.pop(h.hop_by_hop, None)
        if req is not None:
            self.link.pool.answered(req, e)

    def _request(self, msg: DecodedMessage):
        cmd = msg.header.command_code
        if cmd == CMD_DEVICE_WATCHDOG:
            self._write(build_dwa(msg, self.local))
        elif cmd == CMD_DISCONNECT_PEER:
            self._write(build_dpa(msg, self.local))
            self.log.info("Diameter peer {peer} sent DPR; closing",
                          peer=self.link.label)
            if self.state is PeerState.OPEN:
                self.state = PeerState.CLOSING
                self.link.protocol_closing(self)
            self.transport.loseConnection()
        elif cmd == CMD_CAPABILITIES_EXCHANGE:
            # We only initiate; a CER on an established link is refused.
            self._write(build_cea(msg, self.local, DIAMETER_UNABLE_TO_COMPLY,
                                  error_message="CER on an open connection"))
        else:
            self._write(build_answer(msg.header, self.local,
                                     DIAMETER_COMMAND_UNSUPPORTED,
                                     session_id=_safe_session_id(msg)))

    def _answer(self, msg: DecodedMessage):
        h = msg.header
        if self.state is PeerState.WAIT_CEA:
            if h.hop_by_hop == self._cer_hbh:
                self._cea(msg)
            else:
                self.log.warn("Diameter peer {peer}: answer before CEA",
                              peer=self.link.label)
            return
        if h.hop_by_hop == self._dwr_hbh and h.command_code == CMD_DEVICE_WATCHDOG:
            self._dwr_hbh = None
            return
        if h.hop_by_hop == self._dpr_hbh and h.command_code == CMD_DISCONNECT_PEER:
            if self._dpa is not None and not self._dpa.called:
                self._dpa.callback(True)
            return
        req = self.outstanding.get(h.hop_by_hop)
        if req is None or req.end_to_end != h.end_to_end:
            self.log.debug("Diameter peer {peer}: unexpected answer "
                           "hbh={hbh:#x} (late or unknown); dropped",
                           peer=self.link.label, hbh=h.hop_by_hop)
            return
        del self.outstanding[h.hop_by_hop]
        self.link.pool.answered(req, msg)

    def _cea(self, msg: DecodedMessage):
        if self._cea_timer is not None and self._cea_timer.active():
            self._cea_timer.cancel()
        self._cea_timer = None
        try:
            caps = parse_capabilities(msg)
        except DiameterDecodeError as e:
            self.log.warn("Diameter peer {peer}: bad CEA ({why}); closing",
                          peer=self.link.label, why=e.reason)
            self.transport.abortConnection()
            return
        if caps.result_code != DIAMETER_SUCCESS or not caps.supports_credit_control:
            self.log.warn("Diameter peer {peer} ({host}) refused: Result-Code "
                          "{code}, applications {apps}; closing",
                          peer=self.link.label, host=caps.origin_host,
                          code=caps.result_code,
                          apps=sorted(caps.auth_application_ids))
            self.transport.loseConnection()
            return
        self.capabilities = caps
        self.state = PeerState.OPEN
        self._arm_watchdog()
        self.log.info("Diameter peer {peer} open: {host} / {realm}",
                      peer=self.link.label, host=caps.origin_host,
                      realm=caps.origin_realm)
        self.link.protocol_open(self)


def _safe_session_id(msg: DecodedMessage) -> str | None:
    try:
        return msg.session_id
    except (DiameterDecodeError, DiameterEncodeError):
        return None
