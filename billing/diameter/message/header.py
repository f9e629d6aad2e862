"""The 20-byte Diameter message header: read, stamp and flag it (RFC 6733 §3).

Builders leave the Hop-by-Hop and End-to-End identifiers to the transport,
which restamps finished messages with C{set_identifiers}; a request resent
after a link failover gets the T flag with C{mark_retransmission} (§5.5.4).
"""
from __future__ import annotations

import dataclasses
import struct

from billing.diameter.message.constants import (
    FLAG_ERROR, FLAG_PROXIABLE, FLAG_REQUEST, FLAG_RETRANSMIT, HEADER_LENGTH)
from billing.diameter.message.errors import DiameterEncodeError

_HEADER = struct.Struct(">IIIII")
_MAX_U32 = 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class DiameterHeader:
    """A decoded Diameter header; C{length} is the Message Length field."""

    version: int
    length: int
    flags: int
    command_code: int
    application_id: int
    hop_by_hop: int
    end_to_end: int

    @property
    def is_request(self) -> bool:
        return bool(self.flags & FLAG_REQUEST)

    @property
    def is_proxiable(self) -> bool:
        return bool(self.flags & FLAG_PROXIABLE)

    @property
    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERROR)

    @property
    def is_retransmit(self) -> bool:
        return bool(self.flags & FLAG_RETRANSMIT)

    def pack(self) -> bytes:
        """Return the 20 header bytes.

        @raise DiameterEncodeError: a field does not fit its width.
        """
        for name, value, limit in (
                ("version", self.version, 0xFF),
                ("length", self.length, 0xFFFFFF),
                ("flags", self.flags, 0xFF),
                ("command_code", self.command_code, 0xFFFFFF),
                ("application_id", self.application_id, _MAX_U32),
                ("hop_by_hop", self.hop_by_hop, _MAX_U32),
                ("end_to_end", self.end_to_end, _MAX_U32)):
            if not isinstance(value, int) or not 0 <= value <= limit:
                raise DiameterEncodeError(
                    f"header {name} {value!r} is outside 0..{limit}")
        return _HEADER.pack(
            (self.version << 24) | self.length,
            (self.flags << 24) | self.command_code,
            self.application_id, self.hop_by_hop, self.end_to_end)


def read_header(data: bytes) -> DiameterHeader:
    """Decode the first 20 bytes of C{data} without judging them.

    @raise ValueError: fewer than 20 bytes (callers turn this into their own
        error; C{decode_message} never lets it escape).
    """
    if len(data) < HEADER_LENGTH:
        raise ValueError(f"{len(data)} bytes cannot hold a Diameter header")
    word0, word1, app_id, hbh, e2e = _HEADER.unpack_from(data)
    return DiameterHeader(version=word0 >> 24, length=word0 & 0xFFFFFF,
                          flags=word1 >> 24, command_code=word1 & 0xFFFFFF,
                          application_id=app_id, hop_by_hop=hbh,
                          end_to_end=e2e)


def _check_message(data: bytes) -> DiameterHeader:
    try:
        header = read_header(data)
    except ValueError as e:
        raise DiameterEncodeError(str(e)) from None
    if header.length != len(data):
        raise DiameterEncodeError(
            f"Message Length {header.length} != {len(data)} bytes given")
    return header


def _check_id(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int)
                              or not 0 <= value <= _MAX_U32):
        raise DiameterEncodeError(f"{name} {value!r} is not an Unsigned32")


def set_identifiers(data: bytes, *, hop_by_hop: int | None = None,
                    end_to_end: int | None = None) -> bytes:
    """Return a copy of the encoded message C{data} with new identifiers.

    Arguments left as None keep their current value.

    @raise DiameterEncodeError: C{data} is not one whole message, or an
        identifier is not an Unsigned32.
    """
    _check_message(data)
    _check_id("hop_by_hop", hop_by_hop)
    _check_id("end_to_end", end_to_end)
    out = bytearray(data)
    if hop_by_hop is not None:
        struct.pack_into(">I", out, 12, hop_by_hop)
    if end_to_end is not None:
        struct.pack_into(">I", out, 16, end_to_end)
    return bytes(out)


def mark_retransmission(data: bytes, *,
                        hop_by_hop: int | None = None) -> bytes:
    """Return a copy of request C{data} with the T flag set (RFC 6733 §5.5.4).

    The End-to-End identifier is kept, as the peer's duplicate detection
    needs; a resend to another peer takes that connection's C{hop_by_hop}.

    @raise DiameterEncodeError: C{data} is not one whole message, is an answer,
        or C{hop_by_hop} is not an Unsigned32.
    """
    header = _check_message(data)
    if not header.is_request:
        raise DiameterEncodeError("only requests can be retransmitted")
    out = bytearray(set_identifiers(data, hop_by_hop=hop_by_hop))
    out[4] |= FLAG_RETRANSMIT
    return bytes(out)
