"""Diameter over TCP: cut the stream into messages, decode one (RFC 6733 §3).

Both functions are pure.  C{split_frames} cuts a buffer into whole messages
using the 4-byte version+length word and raises C{DiameterFramingError} when
the stream can no longer be trusted (the connection must close).
C{decode_message} turns one message into a C{DecodedMessage} and wraps every
failure, python-diameter's included, in C{DiameterDecodeError}, carrying the
header (when readable) and the Result-Code to answer a request with.
"""
from __future__ import annotations

from billing.diameter.message.avps import split_avps
from billing.diameter.message.constants import (
    AVP_SESSION_ID, CMD_CAPABILITIES_EXCHANGE, CMD_CREDIT_CONTROL,
    CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER, DIAMETER_INVALID_AVP_VALUE,
    DIAMETER_INVALID_HDR_BITS, DIAMETER_INVALID_MESSAGE_LENGTH,
    DIAMETER_UNSUPPORTED_VERSION, DIAMETER_VERSION, HEADER_LENGTH)
from billing.diameter.message.errors import DiameterDecodeError, DiameterFramingError
from billing.diameter.message.header import DiameterHeader, read_header
from billing.diameter.message.parsing import DecodedMessage

#: Default largest message accepted; credit-control messages are < 2 KiB.
DEFAULT_MAX_MESSAGE_LENGTH = 64 * 1024

#: Commands whose P flag is fixed by their CCF (RFC 6733 §5, RFC 4006 §3).
_PROXIABLE = {CMD_CAPABILITIES_EXCHANGE: False, CMD_DEVICE_WATCHDOG: False,
              CMD_DISCONNECT_PEER: False, CMD_CREDIT_CONTROL: True}


def split_frame(buffer: bytes, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH
                ) -> tuple[bytes | None, bytes]:
    """Cut the first whole message off C{buffer}.

    @return: (message, remainder), or (None, buffer) while the message is incomplete.

    @raise DiameterFramingError: version is not 1 (5011), or the Message Length
        is below 20 or above C{max_length} (5015).  The stream cannot be
        re-synchronised after this.
    """
    if not buffer:
        return None, buffer
    if buffer[0] != DIAMETER_VERSION:
        raise DiameterFramingError(
            f"Diameter version {buffer[0]} (expected 1): stream is broken",
            result_code=DIAMETER_UNSUPPORTED_VERSION,
            header=_header_or_none(buffer))
    if len(buffer) < 4:
        return None, buffer
    length = int.from_bytes(buffer[1:4], "big")
    if length < HEADER_LENGTH or length > max_length:
        raise DiameterFramingError(
            f"Message Length {length} outside {HEADER_LENGTH}..{max_length}",
            result_code=DIAMETER_INVALID_MESSAGE_LENGTH,
            header=_header_or_none(buffer))
    if len(buffer) < length:
        return None, buffer
    return bytes(buffer[:length]), bytes(buffer[length:])


def split_frames(buffer: bytes, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH
                 ) -> tuple[list[bytes], bytes]:
    """Cut every whole message off C{buffer}.

    @return: (messages, remainder): the remainder is the start of the next message, to be kept until more bytes arrive.

    @raise DiameterFramingError: as C{split_frame}.
    """
    frames = []
    while True:
        frame, buffer = split_frame(buffer, max_length)
        if frame is None:
            return frames, buffer
        frames.append(frame)


def _header_or_none(data: bytes) -> DiameterHeader | None:
    try:
        return read_header(data)
    except ValueError:
        return None


def decode_message(data: bytes) -> DecodedMessage:
    """Decode exactly one Diameter message.

    Checks, in order: 20-byte header, version 1 (5011), Message Length
    equal to C{len(data)} and a multiple of 4 (5015), header bits (3008:
    E on a request, P contradicting the command), then every AVP's length
    (5014) before python-diameter decodes the AVPs.  AVP values are decoded
    lazily by the C{DecodedMessage} getters.

    @raise DiameterDecodeError: the only exception this function raises;
        C{header} is set whenever the 20 header bytes were present,
        C{session_id} when a well-formed Session-Id came before the fault.
    """
    try:
        return _decode(bytes(data))
    except DiameterDecodeError:
        raise
    except Exception as e:  # python-diameter's error surface is not stable
        raise DiameterDecodeError(
            f"undecodable message: {type(e).__name__}: {e}",
            result_code=DIAMETER_INVALID_AVP_VALUE,
            header=_header_or_none(data)) from None


def _decode(data: bytes) -> DecodedMessage:
    if len(data) < HEADER_LENGTH:
        raise DiameterDecodeError(
            f"{len(data)} bytes is shorter than a Diameter header",
            result_code=DIAMETER_INVALID_MESSAGE_LENGTH)
    header = read_header(data)
    if header.version != DIAMETER_VERSION:
        raise DiameterDecodeError(
            f"Diameter version {header.version} is not supported",
            result_code=DIAMETER_UNSUPPORTED_VERSION, header=header)
    if header.length != len(data) or header.length % 4:
        raise DiameterDecodeError(
            f"Message Length {header.length} for {len(data)} bytes",
            result_code=DIAMETER_INVALID_MESSAGE_LENGTH, header=header)
    if header.is_request:
        expected = _PROXIABLE.get(header.command_code)
        if header.is_error or (expected is not None
                               and expected != header.is_proxiable):
            raise DiameterDecodeError(
                f"invalid header flags {header.flags:#04x} for command "
                f"{header.command_code}",
                result_code=DIAMETER_INVALID_HDR_BITS, header=header)
    try:
        avps = split_avps(data[HEADER_LENGTH:])
    except DiameterDecodeError as e:
        e.header = header
        e.session_id = _leading_session_id(data[HEADER_LENGTH:])
        raise
    return DecodedMessage(header, avps, data)


def _leading_session_id(body: bytes) -> str | None:
    """The Session-Id if the first AVP is a well-formed one, else None."""
    if len(body) < 8 or int.from_bytes(body[:4], "big") != AVP_SESSION_ID:
        return None
    length = int.from_bytes(body[5:8], "big")
    if body[4] & 0x80 or not 8 < length <= len(body):
        return None
    try:
        return body[8:length].decode("utf-8")
    except UnicodeDecodeError:
        return None
