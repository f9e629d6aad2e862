"""Diameter message-layer errors carrying their Result-Code (RFC 6733 §7.1).

Every failure to decode bytes is a C{DiameterDecodeError} (nothing from
python-diameter escapes this package); C{DiameterFramingError} is the subclass
for a TCP stream that cannot be re-synchronised, so the connection must close.
Bad inputs to a builder raise C{DiameterEncodeError}, which is a C{ValueError}.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from billing.diameter.message.constants import DIAMETER_INVALID_AVP_VALUE

if TYPE_CHECKING:  # pragma: no cover
    from billing.diameter.message.header import DiameterHeader


class DiameterError(Exception):
    """Base class of every error raised by C{billing.diameter}."""


class DiameterEncodeError(DiameterError, ValueError):
    """A builder was given a value that cannot be sent (range/type/syntax)."""


class DiameterDecodeError(DiameterError):
    """Bytes received from a peer are not a valid Diameter message.

    @ivar reason: human-readable explanation (safe to put in Error-Message).
    @ivar result_code: the Result-Code to answer a request with (RFC 6733 §7.1),
        e.g. 5004 DIAMETER_INVALID_AVP_VALUE, 5014, 5015, 3008.
    @ivar header: the message header when the 20 header bytes could be read,
        else None; with it an error answer can be addressed.
    @ivar failed_avp: the raw bytes of the offending AVP (for Failed-AVP),
        or None.
    @ivar session_id: the Session-Id when it was read before the failure.
    @ivar connection_survives: False when the stream must be closed.
    """

    connection_survives = True

    def __init__(self, reason: str, *,
                 result_code: int = DIAMETER_INVALID_AVP_VALUE,
                 header: DiameterHeader | None = None,
                 failed_avp: bytes | None = None,
                 session_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.result_code = result_code
        self.header = header
        self.failed_avp = failed_avp
        self.session_id = session_id

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.reason!r}, "
                f"result_code={self.result_code})")


class DiameterFramingError(DiameterDecodeError):
    """The TCP byte stream is broken (bad version or length): close it."""

    connection_survives = False


class DiameterTransportError(DiameterError):
    """A request got no answer from the transport.

    @ivar sent: False only when the request certainly never left this node
        (no open peer, queue full, stopped before sending); True when a
        peer may have received it, so its outcome is unknown.
    """

    def __init__(self, reason: str, *, sent: bool):
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class NoPeerAvailable(DiameterTransportError):
    """No open peer could take the request; it was never sent."""

    def __init__(self, reason: str = "no open Diameter peer"):
        super().__init__(reason, sent=False)


class RequestTimedOut(DiameterTransportError):
    """No answer within the request timeout (sent unless C{sent} says not)."""


class PeerLost(DiameterTransportError):
    """The connection carrying the request failed and no other peer took it."""

    def __init__(self, reason: str = "Diameter peer connection lost"):
        super().__init__(reason, sent=True)
