"""The simulator's CAI server role (the default dialect of C{billing.cai.codec}).

One command per line; answers C{RESP:...;}.  LOGIN must succeed before
SET/GET (else 1008).  SET with a known REF answers what it did the first
time; GET of an unknown REF answers 1010 and closes the REF, so a late SET
with it is refused (1003): a C{not found} is final.
"""
from __future__ import annotations

from twisted.internet import protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from billing.cai.codec import (
    CaiSyntaxError, format_response, format_time, parse_command)
from billing.sim.faults import FaultPlan
from billing.sim.ledger import SimLedger

OK, LOGIN_REFUSED, UNKNOWN_SUBSCRIBER, REFUSED, BUSY = 0, 1001, 1002, 1003, 1004
NOT_LOGGED_IN, SYNTAX, NOT_FOUND = 1008, 1009, 1010
_CODE = {"unknown": UNKNOWN_SUBSCRIBER, "refused": REFUSED, "void": REFUSED}


class SimCaiFactory(protocol.ServerFactory):
    """Shared state: ledger, faults, clock and the accepted login."""

    def __init__(self, ledger: SimLedger, faults: FaultPlan, clock, *,
                 user: str = "ivoms", password: str = "ivoms"):
        self.ledger = ledger
        self.faults = faults
        self.clock = clock
        self.user = user
        self.password = password
        self.answers: dict[str, str] = {}
        self.stats = {"logins": 0, "set": 0, "get": 0, "duplicates": 0,
                      "dropped": 0, "malformed": 0}
        self.protocols: set = set()

    def buildProtocol(self, addr):
        return SimCaiProtocol(self)


class SimCaiProtocol(LineOnlyReceiver):
    log = Logger()
    delimiter = b"\r\n"
    MAX_LENGTH = 4096

    def __init__(self, factory: SimCaiFactory):
        self.f = factory
        self.logged_in = False
        self._timers: list = []

    def connectionMade(self):
        self.f.protocols.add(self)

    def connectionLost(self, reason=protocol.connectionDone):
        self.f.protocols.discard(self)
        for t in self._timers:
            if t.active():
                t.cancel()

    def _answer(self, text: str, delay: float = 0.0):
        data = text.encode("ascii")
        if delay <= 0:
            self.sendLine(data)
            return
        self._timers = [t for t in self._timers if t.active()]

        def later():
            if self.transport is not None and self.transport.connected:
                self.sendLine(data)
        self._timers.append(self.f.clock.callLater(delay, later))

    def lineReceived(self, line: bytes):
        try:
            tokens, params = parse_command(line.decode("ascii"))
        except (UnicodeDecodeError, CaiSyntaxError):
            self._answer(format_response(SYNTAX))
            return
        verb = tokens[0].upper() if tokens else ""
        if verb == "LOGIN":
            ok = tokens[1:] == [self.f.user, self.f.password]
            self.logged_in = ok
            self.f.stats["logins"] += ok
            self._answer(format_response(OK if ok else LOGIN_REFUSED))
        elif verb == "LOGOUT":
            self._answer(format_response(OK))
            self.transport.loseConnection()
        elif not self.logged_in:
            self._answer(format_response(NOT_LOGGED_IN))
        elif tokens[:2] == ["SET", "SUBSCRIBER"] and len(tokens) == 4 \
                and tokens[3] == "RECHARGE":
            self._set(tokens[2], params)
        elif tokens[:2] == ["GET", "RECHARGE"]:
            self._get(params)
        else:
            self._answer(format_response(SYNTAX))

    def _set(self, msisdn: str, p: dict):
        f = self.f
        f.stats["set"] += 1
        key = p.get("REF")
        try:
            amount, days = int(p["AMOUNT"]), int(p.get("VALIDITY", "0"))
            currency = p["CURRENCY"]
        except (KeyError, ValueError):
            self._answer(format_response(SYNTAX))
            return
        if not key or not msisdn.isdigit():
            self._answer(format_response(SYNTAX))
            return
        if key in f.answers:
            f.stats["duplicates"] += 1
            self._answer(f.answers[key], f.faults.delay(True))
            return
        action = f.faults.action()
        if action == "busy":
            self._answer(format_response(BUSY), f.faults.delay())
            return
        if action == "reject":
            record = f.ledger.record(key, "refused")
        else:
            record, _ = f.ledger.credit(key, msisdn, amount, currency, days)
        if record.credited:
            text = format_response(OK, BALANCE=record.balance,
                                   EXPIRY=format_time(record.expires_at))
        else:
            text = format_response(_CODE[record.status])
        f.answers[key] = text
        if action == "drop":
            f.stats["dropped"] += 1
            return
        if action == "malformed":
            f.stats["malformed"] += 1
            text = "RESP?#garbage"
        self._answer(text, f.faults.delay())

    def _get(self, p: dict):
        f = self.f
        f.stats["get"] += 1
        key = p.get("REF")
        if not key:
            self._answer(format_response(SYNTAX))
            return
        record = f.ledger.get(key)
        if record is None or record.status == "void":
            f.ledger.void(key)
            self._answer(format_response(NOT_FOUND), f.faults.latency)
        elif record.credited:
            self._answer(format_response(
                OK, STATUS="CREDITED", BALANCE=record.balance,
                EXPIRY=format_time(record.expires_at)), f.faults.latency)
        else:
            self._answer(format_response(OK, STATUS="REFUSED",
                                         CODE=_CODE[record.status]),
                         f.faults.latency)
