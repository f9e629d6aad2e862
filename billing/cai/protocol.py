"""One CAI connection: one command at a time, answered by one C{RESP} line.

C{CaiProtocol.command(line, timeout)} writes a line and returns a Deferred
firing with the C{CaiResponse}.  A timeout or an unparsable answer leaves
the connection's state unknown, so it is aborted (the pool reconnects and
logs in again); the Deferred then fails with C{CaiError} whose C{sent} is
True.  Nothing is ever sent before the login answered 0.
"""
from __future__ import annotations

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from billing.cai.codec import CaiSyntaxError, parse_response


class CaiError(Exception):
    """A command got no usable answer; C{sent} as in BillingUnavailable."""

    def __init__(self, message: str, sent: bool = True):
        super().__init__(message)
        self.sent = sent


class CaiProtocol(LineOnlyReceiver):
    log = Logger()
    delimiter = b"\r\n"
    MAX_LENGTH = 8192

    def __init__(self, pool, clock):
        self.pool = pool
        self.clock = clock
        self.logged_in = False
        self._waiting: defer.Deferred | None = None
        self._timer = None

    @property
    def busy(self) -> bool:
        return self._waiting is not None

    def command(self, line: str, timeout: float) -> defer.Deferred:
        """Send one command; Deferred[CaiResponse] or CaiError."""
        if self._waiting is not None:
            return defer.fail(CaiError("connection busy", sent=False))
        d = self._waiting = defer.Deferred()
        self._timer = self.clock.callLater(timeout, self._timed_out, timeout)
        self.sendLine(line.encode("ascii"))
        return d

    def _finish(self, result):
        d, self._waiting = self._waiting, None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if d is not None and not d.called:
            if isinstance(result, Exception):
                d.errback(result)
            else:
                d.callback(result)

    def _timed_out(self, timeout):
        self._timer = None
        self._finish(CaiError("no CAI answer within %.1f s" % timeout))
        self.transport.abortConnection()

    def lineReceived(self, line: bytes):
        if self._waiting is None:
            self.log.warn("CAI: unsolicited line dropped")
            return
        try:
            response = parse_response(line.decode("ascii"))
        except (UnicodeDecodeError, CaiSyntaxError) as e:
            self._finish(CaiError("malformed CAI answer: %s" % (e,)))
            self.transport.abortConnection()
            return
        self._finish(response)

    def lineLengthExceeded(self, line):
        self._finish(CaiError("CAI answer too long"))
        self.transport.abortConnection()

    def connectionLost(self, reason=protocol.connectionDone):
        self._finish(CaiError("CAI connection lost"))
        self.pool.connection_lost(self)
