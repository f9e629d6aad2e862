"""The simulator's Diameter server role (RFC 6733 base + RFC 4006 credit-control).

Answers CER (CEA announcing Auth-Application-Id 4), DWR, DPR and CCR
EVENT_REQUESTs.  Duplicate detection is by Session-Id (RFC 4006 §5.1):
a CCR whose Session-Id was already answered gets the same answer again,
with or without the T flag, and is never applied twice.  A successful CCA
carries the balance (Integer64, minor units) and new expiry (Time) in
vendor AVPs 2 and 3 of enterprise 32473 (RFC 5612, for documentation).
"""
from __future__ import annotations

import dataclasses
import datetime

from twisted.internet import protocol
from twisted.logger import Logger

from billing.currency import Currencies
from billing.diameter.message import avps as _avps
from billing.diameter.config import DOC_VENDOR_ID
from billing.diameter.node.connector import AVP_SIM_BALANCE, AVP_SIM_EXPIRY
from billing.diameter.message.constants import (
    CMD_CAPABILITIES_EXCHANGE, CMD_CREDIT_CONTROL, CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER, DIAMETER_AUTHORIZATION_REJECTED,
    DIAMETER_COMMAND_UNSUPPORTED, DIAMETER_INVALID_AVP_VALUE,
    DIAMETER_MISSING_AVP, DIAMETER_SUCCESS, DIAMETER_TOO_BUSY,
    DIAMETER_USER_UNKNOWN)
from billing.diameter.message.credit import ValidityAvp, build_cca, read_credit_request
from billing.diameter.message.errors import DiameterDecodeError, DiameterFramingError
from billing.diameter.message.framing import decode_message, split_frames
from billing.diameter.message.messages import (
    LocalIdentity, build_answer, build_cea, build_dpa, build_dwa,
    build_error_answer)
from billing.sim.faults import FaultPlan
from billing.sim.ledger import SimLedger

#: The validity AVP the simulator reads by default: days to add
#: (Unsigned32, vendor 32473, code 1).
SIM_VALIDITY_AVP = ValidityAvp(DOC_VENDOR_ID, 1, "Unsigned32")

_RESULT = {"credited": DIAMETER_SUCCESS, "unknown": DIAMETER_USER_UNKNOWN,
           "refused": DIAMETER_AUTHORIZATION_REJECTED,
           "void": DIAMETER_AUTHORIZATION_REJECTED}


@dataclasses.dataclass
class DiameterSimStats:
    connections: int = 0
    ccr: int = 0
    duplicates: int = 0
    retransmissions: int = 0
    dropped: int = 0
    malformed: int = 0
    busy: int = 0
    rejected: int = 0
    dwr: int = 0
    dpr: int = 0
    cer: int = 0


class SimDiameterFactory(protocol.ServerFactory):
    """Shared state of every simulator Diameter connection.

    @param ledger: the C{SimLedger}.
    @param faults: the C{FaultPlan}.
    @param clock: IReactorTime for delayed answers.
    @param local: the simulator's identity.
    @param validity_avps: the validity AVPs it reads from a CCR.
    """

    def __init__(self, ledger: SimLedger, faults: FaultPlan, clock,
                 local: LocalIdentity | None = None,
                 validity_avps: tuple[ValidityAvp, ...] = (SIM_VALIDITY_AVP,),
                 currencies: Currencies | None = None):
        self.ledger = ledger
        self.faults = faults
        self.clock = clock
        self.local = local or LocalIdentity("ocs.sim.localdomain",
                                            "localdomain", ("127.0.0.1",))
        self.validity_avps = tuple(validity_avps)
        self.currencies = currencies or Currencies()
        self.answers: dict[str, tuple[int, int | None, int | None]] = {}
        self.stats = DiameterSimStats()
        self.protocols: set = set()

    def buildProtocol(self, addr):
        return SimDiameterProtocol(self)


class SimDiameterProtocol(protocol.Protocol):
    """One client connection to the simulator."""

    log = Logger()

    def __init__(self, factory: SimDiameterFactory):
        self.f = factory
        self._buffer = b""
        self._timers: list = []

    def connectionMade(self):
        self.f.stats.connections += 1
        self.f.protocols.add(self)

    def connectionLost(self, reason=protocol.connectionDone):
        self.f.protocols.discard(self)
        for t in self._timers:
            if t.active():
                t.cancel()
        self._timers = []

    def dataReceived(self, data):
        self._buffer += data
        try:
            frames, self._buffer = split_frames(self._buffer)
        except DiameterFramingError as e:
            self.log.warn("sim: broken Diameter stream ({why}); closing",
                          why=e.reason)
            self.transport.abortConnection()
            return
        for frame in frames:
            try:
                self._handle(frame)
            except Exception:
                self.log.failure("sim: error handling a Diameter message")

    def _send(self, data: bytes, delay: float = 0.0):
        if delay <= 0:
            self.transport.write(data)
            return
        self._timers = [t for t in self._timers if t.active()]

        def later():
            if self.transport is not None and self.transport.connected:
                self.transport.write(data)
        self._timers.append(self.f.clock.callLater(delay, later))

    def _handle(self, frame: bytes):
        local = self.f.local
        try:
            msg = decode_message(frame)
        except DiameterDecodeError as e:
            answer = build_error_answer(e, local)
            if answer is not None:
                self._send(answer)
            return
        h = msg.header
        if not h.is_request:
            return
        cmd = h.command_code
        if cmd == CMD_CAPABILITIES_EXCHANGE:
            self.f.stats.cer += 1
            self._send(build_cea(msg, local))
        elif cmd == CMD_DEVICE_WATCHDOG:
            self.f.stats.dwr += 1
            self._send(build_dwa(msg, local))
        elif cmd == CMD_DISCONNECT_PEER:
            self.f.stats.dpr += 1
            self._send(build_dpa(msg, local))
        elif cmd == CMD_CREDIT_CONTROL:
            self._ccr(msg)
        else:
            self._send(build_answer(h, local, DIAMETER_COMMAND_UNSUPPORTED))

    def _ccr(self, msg):
        f, local = self.f, self.f.local
        f.stats.ccr += 1
        if msg.header.is_retransmit:
            f.stats.retransmissions += 1
        try:
            credit = read_credit_request(msg, f.validity_avps)
        except DiameterDecodeError as e:
            answer = build_error_answer(e, local)
            if answer is not None:
                self._send(answer)
            return
        sid = credit.session_id
        cached = f.answers.get(sid)
        if cached is not None:
            f.stats.duplicates += 1
            self._send(self._cca(msg, *cached), f.faults.delay(True))
            return
        action = f.faults.action()
        if action == "busy":
            f.stats.busy += 1
            self._send(build_cca(msg, local, DIAMETER_TOO_BUSY),
                       f.faults.delay())
            return
        key = credit.key or sid
        if (credit.msisdn is None or credit.amount is None
                or credit.currency_code is None):
            self._send(build_cca(msg, local, DIAMETER_MISSING_AVP))
            return
        try:
            amount, currency = f.currencies.to_minor(credit.amount,
                                                     credit.currency_code)
        except (KeyError, ValueError):
            self._send(build_cca(msg, local, DIAMETER_INVALID_AVP_VALUE))
            return
        if action == "reject":
            f.stats.rejected += 1
            record = f.ledger.record(key, "refused")
        else:
            days, until = 0, None
            for v in credit.validity:
                if isinstance(v, int):
                    days = max(days, v)
                else:
                    until = int(v.timestamp() * 1000)
            record, _ = f.ledger.credit(key, credit.msisdn, amount, currency,
                                        days, until)
        result = (_RESULT[record.status], record.balance, record.expires_at)
        f.answers[sid] = result
        if action == "drop":
            f.stats.dropped += 1
            return
        data = self._cca(msg, *result)
        if action == "malformed":
            f.stats.malformed += 1
            # Keep the header (so it matches the request), break the body:
            # the first AVP's length runs past the message.
            data = data[:25] + b"\xff\xff\xf0" + data[28:]
        self._send(data, f.faults.delay())

    def _cca(self, msg, result_code: int, balance, expires_at) -> bytes:
        body = ()
        if result_code == DIAMETER_SUCCESS and balance is not None:
            body = (_avps.integer64(AVP_SIM_BALANCE, balance, mandatory=False,
                                    vendor_id=DOC_VENDOR_ID),
                    _avps.time_value(AVP_SIM_EXPIRY, datetime.datetime.fromtimestamp(
                        expires_at // 1000, datetime.timezone.utc),
                        mandatory=False, vendor_id=DOC_VENDOR_ID))
        return build_cca(msg, self.f.local, result_code, body=body)
