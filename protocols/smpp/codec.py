"""SMPP 3.4 PDU codec: framing, header, bodies (SMPP v3.4 issue 1.2 §3.2, §4, §5).

Pure functions, no I/O: L{split_frames} cuts a byte stream into PDUs,
L{decode_pdu} turns one PDU into an object from L{protocols.smpp.pdus},
L{encode_pdu} does the reverse, and L{error_response} / L{make_response}
build the answers the channel sends.  Every decoding problem raises
L{DecodeError} and nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from protocols.smpp.errors import (
    ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_RINVMSGLEN, ESME_ROK, DecodeError,
    EncodeError)
from protocols.smpp.pdus import (
    PDU_CLASSES, RESPONSE_BIT, RESPONSE_CLASSES, BindReceiver,
    BindReceiverResp, BindTransceiver, BindTransceiverResp, BindTransmitter,
    BindTransmitterResp, DataSm, DataSmResp, DeliverSm, DeliverSmResp,
    EnquireLink, EnquireLinkResp, Field, GenericNack, Outbind, Pdu, SubmitSm,
    SubmitSmResp, Unbind, UnbindResp, command_name)  # noqa: F401 - re-exported
from protocols.smpp.tlv import Tlv, decode_tlvs, encode_tlvs, tlvs

__all__ = [
    "DEFAULT_MAX_PDU_LENGTH", "HEADER_LENGTH", "Header", "DecodeError", "EncodeError",
    "split_frames", "decode_header", "decode_pdu", "encode_pdu", "make_response",
    "error_response", "Pdu", "Tlv", "tlvs",
    "BindTransmitter", "BindReceiver", "BindTransceiver", "BindTransmitterResp",
    "BindReceiverResp", "BindTransceiverResp", "Outbind", "Unbind", "UnbindResp",
    "EnquireLink", "EnquireLinkResp", "GenericNack", "SubmitSm", "SubmitSmResp",
    "DeliverSm", "DeliverSmResp", "DataSm", "DataSmResp",
]

HEADER = struct.Struct(">IIII")
HEADER_LENGTH = HEADER.size
#: Default guard on command_length.  An SMS PDU is under 1 KiB; this leaves
#: room for a data_sm carrying a long message_payload.
DEFAULT_MAX_PDU_LENGTH = 16 * 1024


@dataclass(frozen=True)
class Header:
    """The four header words of a PDU (§3.2)."""

    command_length: int
    command_id: int
    command_status: int
    sequence_number: int


def _peek_ids(buffer: bytes, start: int = 0) -> tuple[int | None, int | None]:
    """Return (command_id, sequence_number) where the buffer holds them."""
    have = len(buffer) - start
    command_id = int.from_bytes(buffer[start + 4:start + 8], "big") if have >= 8 else None
    sequence = int.from_bytes(buffer[start + 12:start + 16], "big") if have >= 16 else None
    return command_id, sequence


def _check_length(buffer: bytes, start: int, max_length: int) -> int:
    """Return command_length of the frame at C{start}; raise if it is unusable."""
    length = int.from_bytes(buffer[start:start + 4], "big")
    if length < HEADER_LENGTH or length > max_length:
        command_id, sequence = _peek_ids(buffer, start)
        raise DecodeError(
            ESME_RINVCMDLEN,
            "command_length %d outside %d..%d" % (length, HEADER_LENGTH, max_length),
            command_id=command_id, sequence_number=sequence, fatal=True)
    return length


def split_frames(buffer: bytes, max_length: int = DEFAULT_MAX_PDU_LENGTH
                 ) -> tuple[list[bytes], bytes]:
    """Cut the complete PDUs off the front of a received byte stream.

    @param buffer: bytes received so far, starting at a PDU boundary.
    @param max_length: the largest command_length accepted.
    @return: C{(frames, remainder)}: each frame is one whole PDU (its
        command_length equals its size); C{remainder} is the incomplete
        tail to keep for the next call.  If a frame with a bad
        command_length follows good ones, the good ones are returned and
        the remainder starts at the bad one, so the next call raises; a
        caller loops until no frame comes back.
    @raise DecodeError: (fatal, C{ESME_RINVCMDLEN}) when the first
        command_length is below 16 or above C{max_length}: framing is lost.
        command_id and sequence_number are filled in when already received.
    """
    buffer = bytes(buffer)
    frames = []
    pos = 0
    while len(buffer) - pos >= 4:
        try:
            length = _check_length(buffer, pos, max_length)
        except DecodeError:
            if frames:
                break
            raise
        if len(buffer) - pos < length:
            break
        frames.append(buffer[pos:pos + length])
        pos += length
    return frames, buffer[pos:]


def decode_header(frame: bytes) -> Header:
    """Decode the 16-octet header at the start of C{frame}.

    @raise DecodeError: (fatal, C{ESME_RINVCMDLEN}) if fewer than 16 octets.
    """
    if len(frame) < HEADER_LENGTH:
        command_id, sequence = _peek_ids(frame)
        raise DecodeError(
            ESME_RINVCMDLEN, "truncated header: %d octet(s)" % (len(frame),),
            command_id=command_id, sequence_number=sequence, fatal=True)
    return Header(*HEADER.unpack_from(frame))


#: Field kinds as small ints, for the per-class plans below.
_INT8, _CSTR, _TIME, _SM = 0, 1, 2, 3
_KINDS = {"int8": _INT8, "cstr": _CSTR, "time": _TIME, "sm": _SM}

#: PDU class -> its mandatory fields as (name, kind, max_len, status, field),
#: worked out once so that each PDU costs one pass over a tuple.
_PLANS: dict[type[Pdu], tuple] = {
    cls: tuple((f.name, _KINDS[f.kind], f.max_len, f.status, f) for f in cls.FIELDS)
    for cls in PDU_CLASSES.values()}


def decode_pdu(frame: bytes, max_length: int = DEFAULT_MAX_PDU_LENGTH) -> Pdu:
    """Decode exactly one PDU.

    Lenient where the spec allows: a response with an empty body (as sent
    with a non-zero command_status) decodes with empty fields; unknown TLVs
    are kept raw; submit_sm_resp and deliver_sm_resp may carry TLVs.

    @param frame: one whole PDU, as returned by L{split_frames}.
    @return: an instance of the class in L{PDU_CLASSES} for its command_id.
    @raise DecodeError: fatal C{ESME_RINVCMDLEN} for a truncated header or a
        command_length that is not the frame's size (or is above
        C{max_length}); non-fatal C{ESME_RINVCMDID} for a command_id this
        codec does not handle; non-fatal body errors: C{ESME_RINVCMDLEN}
        (body ends inside a mandatory field, or octets left over in a PDU
        that has no body), C{ESME_RINVMSGLEN} (sm_length over 254 or past
        the body), the field's own status for an overlong C-Octet string
        (e.g. C{ESME_RINVSRCADR}, C{ESME_RINVSYSID}, C{ESME_RINVPARLEN}),
        and the TLV statuses of L{decode_tlvs}.
    """
    frame = bytes(frame)
    size = len(frame)
    if size < HEADER_LENGTH:
        decode_header(frame)                     # raises the truncated-header error
    command_length, command_id, command_status, sequence_number = HEADER.unpack_from(frame)
    if command_length != size or command_length > max_length:
        raise DecodeError(
            ESME_RINVCMDLEN, "command_length %d but frame is %d octets (max %d)" % (
                command_length, size, max_length), fatal=True,
            command_id=command_id, sequence_number=sequence_number)
    cls = PDU_CLASSES.get(command_id)
    if cls is None:
        raise DecodeError(
            ESME_RINVCMDID, "unsupported command %s" % (command_name(command_id),),
            command_id=command_id, sequence_number=sequence_number)
    values: dict[str, Any] = {"sequence_number": sequence_number,
                              "command_status": command_status}
    if size > HEADER_LENGTH or not command_id & RESPONSE_BIT:
        body = frame[HEADER_LENGTH:]
        pos = _decode_fields(_PLANS[cls], body, values, command_id, sequence_number)
        if pos < len(body):
            if not cls.ACCEPTS_TLVS:
                raise DecodeError(
                    ESME_RINVCMDLEN, "%s must have no body, got %d octet(s)" % (
                        cls.__name__, len(body) - pos),
                    command_id=command_id, sequence_number=sequence_number)
            values["optional"] = decode_tlvs(body[pos:], command_id=command_id,
                                             sequence_number=sequence_number)
    return cls.from_fields(values)


def _decode_fields(plan: tuple, body: bytes, values: dict, command_id: int,
                   sequence_number: int) -> int:
    """Decode the mandatory fields of C{plan} from C{body} into C{values};
    return the position after the last one."""
    pos = 0
    size = len(body)
    for name, kind, max_len, status, _ in plan:
        if pos >= size:
            raise DecodeError(ESME_RINVCMDLEN, "body ends before %s" % (name,),
                              command_id=command_id, sequence_number=sequence_number)
        if kind == _INT8:
            values[name] = body[pos]
            pos += 1
        elif kind == _SM:
            sm_length = body[pos]
            pos += 1
            if sm_length > max_len:
                raise DecodeError(
                    ESME_RINVMSGLEN, "sm_length %d over %d" % (sm_length, max_len),
                    command_id=command_id, sequence_number=sequence_number)
            if sm_length > size - pos:
                raise DecodeError(
                    ESME_RINVMSGLEN, "sm_length %d but only %d octet(s) follow" % (
                        sm_length, size - pos),
                    command_id=command_id, sequence_number=sequence_number)
            values[name] = body[pos:pos + sm_length]
            pos += sm_length
        else:
            end = body.find(b"\x00", pos, pos + max_len)
            if end < 0:
                if size - pos >= max_len:
                    raise DecodeError(
                        status, "%s longer than %d octets with its NUL" % (name, max_len),
                        command_id=command_id, sequence_number=sequence_number)
                raise DecodeError(
                    ESME_RINVCMDLEN, "body ends inside %s (no NUL terminator)" % (name,),
                    command_id=command_id, sequence_number=sequence_number)
            value = body[pos:end].decode("latin-1")
            if kind == _TIME and len(value) not in (0, max_len - 1):
                raise DecodeError(
                    status, "%s must be empty or %d characters, got %r" % (
                        name, max_len - 1, value),
                    command_id=command_id, sequence_number=sequence_number)
            values[name] = value
            pos = end + 1
    return pos


def encode_pdu(pdu: Pdu, sequence_number: int | None = None) -> bytes:
    """Return the wire form of C{pdu}, header included.

    @param sequence_number: sent instead of C{pdu.sequence_number} when
        given (a session numbers its requests as it sends them).

    submit_sm_resp and the bind responses with a non-zero command_status
    are sent without a body (§4.4.2), as most SMSCs do.

    @raise EncodeError: for a header value outside 32 bits, a field value
        that does not fit its definition, or a TLV that does not encode.
    """
    cls = type(pdu)
    plan = _PLANS.get(cls)
    if plan is None:
        raise EncodeError("not an encodable PDU: %r" % (pdu,))
    if sequence_number is None:
        sequence_number = pdu.sequence_number
    command_status = pdu.command_status
    if type(sequence_number) is not int or not 0 <= sequence_number <= 0xFFFFFFFF:
        _check_u32("sequence_number", sequence_number)
    if type(command_status) is not int or not 0 <= command_status <= 0xFFFFFFFF:
        _check_u32("command_status", command_status)
    out = bytearray(HEADER_LENGTH)
    if not (cls.OMIT_BODY_ON_ERROR and command_status != ESME_ROK):
        for name, kind, max_len, _, field in plan:
            value = getattr(pdu, name)
            if kind == _INT8:
                if type(value) is int and 0 <= value <= 0xFF:
                    out.append(value)
                else:
                    out += _encode_field(field, value)
            elif kind == _CSTR and type(value) is str and value.isascii() \
                    and len(value) < max_len and "\x00" not in value:
                out += value.encode("ascii")
                out.append(0)
            elif kind == _SM and type(value) is bytes and len(value) <= max_len:
                out.append(len(value))
                out += value
            elif kind == _TIME and value == "":
                out.append(0)
            else:
                out += _encode_field(field, value)
        if pdu.optional:
            if not cls.ACCEPTS_TLVS:
                raise EncodeError("%s takes no optional parameters" % (cls.__name__,))
            out += encode_tlvs(pdu.optional)
    HEADER.pack_into(out, 0, len(out), cls.command_id, command_status, sequence_number)
    return bytes(out)


def _check_u32(name: str, value: Any) -> None:
    """Raise unless C{value} is a non-bool int in 0..2**32-1."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError("%s=%r is not a 32-bit unsigned int" % (name, value))


def _encode_field(field: Field, value: Any) -> bytes:
    if field.kind == "int8":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise EncodeError("%s=%r is not an octet" % (field.name, value))
        return bytes((value,))
    if field.kind == "sm":
        if not isinstance(value, (bytes, bytearray)):
            raise EncodeError("short_message needs bytes, got %r" % (value,))
        if len(value) > field.max_len:
            raise EncodeError("short_message is %d octets, max %d" % (len(value), field.max_len))
        return bytes((len(value),)) + bytes(value)
    if not isinstance(value, str):
        raise EncodeError("%s needs a str, got %r" % (field.name, value))
    if "\x00" in value:
        raise EncodeError("%s holds a NUL" % (field.name,))
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise EncodeError("%s is not Latin-1: %r" % (field.name, value)) from None
    if len(raw) >= field.max_len:
        raise EncodeError("%s is %d octets, max %d" % (field.name, len(raw), field.max_len - 1))
    if field.kind == "time" and len(raw) not in (0, field.max_len - 1):
        raise EncodeError("%s must be empty or %d characters" % (field.name, field.max_len - 1))
    return raw + b"\x00"


def make_response(request: Pdu, command_status: int = ESME_ROK, **values: Any) -> Pdu:
    """Build the response to C{request}: same sequence_number, given status.

    @param values: body fields of the response, e.g. C{message_id="42"} or
        C{system_id="ivoms"}, and C{optional}.
    @raise ValueError: if C{request} is a response or an outbind (neither is
        answered with a response PDU).
    @raise TypeError: for a field the response does not have.
    """
    cls = RESPONSE_CLASSES.get(type(request))
    if cls is None:
        raise ValueError("%s has no response PDU" % (request.command_name,))
    return cls.build(sequence_number=request.sequence_number, command_status=command_status,
                     **values)


def error_response(error: DecodeError) -> Pdu | None:
    """Return the PDU that answers a PDU which failed to decode, or C{None}.

    - Framing lost (C{error.fatal}) or an unknown command_id: a generic_nack
      with C{error.status} (send it, then close if fatal).
    - A known request with a bad body: its own response with
      C{error.status} (e.g. submit_sm_resp C{ESME_RINVSRCADR}).
    - A known response, or a header too short to hold a sequence_number:
      C{None}; responses are never answered.
    """
    if error.sequence_number is None:
        return None
    cls = PDU_CLASSES.get(error.command_id) if error.command_id is not None else None
    if error.fatal or cls is None:
        return GenericNack(sequence_number=error.sequence_number,
                           command_status=error.status)
    if error.command_id & RESPONSE_BIT:
        return None
    response_cls = RESPONSE_CLASSES.get(cls)
    if response_cls is None:
        return GenericNack(sequence_number=error.sequence_number,
                           command_status=error.status)
    return response_cls(sequence_number=error.sequence_number, command_status=error.status)

