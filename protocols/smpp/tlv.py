"""SMPP optional parameters (TLVs): the tag table and their codec (SMPP v3.4 issue 1.2 §5.3).

A TLV is a 2-octet tag, a 2-octet length and that many octets of value.
Known tags decode to typed values (an C{int} for Integer parameters, a
C{str} for C-Octet strings, C{bytes} for Octet strings); unknown tags are
kept as raw C{bytes} so that a PDU re-encodes to what was received (§3.2.7:
an unrecognised optional parameter is ignored, not rejected).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Union

from protocols.smpp.errors import (
    ESME_RINVOPTPARSTREAM, ESME_RINVPARLEN, DecodeError, EncodeError)

TlvValue = Union[int, str, bytes]

INTEGER = "integer"
C_STRING = "c-octet-string"
OCTETS = "octet-string"


@dataclass(frozen=True)
class TlvSpec:
    """How one known tag is carried.

    @ivar size: octets of an Integer parameter (1, 2 or 4).
    @ivar min_len, max_len: bounds of the value length in octets (for a
        C-Octet string, C{max_len} includes the terminating NUL); C{None}
        means unbounded.
    """

    name: str
    tag: int
    kind: str
    size: int = 0
    min_len: int = 0
    max_len: int | None = None


def _int(name: str, tag: int, size: int) -> TlvSpec:
    return TlvSpec(name, tag, INTEGER, size, size, size)


def _oct(name: str, tag: int, min_len: int = 0, max_len: int | None = None) -> TlvSpec:
    return TlvSpec(name, tag, OCTETS, 0, min_len, max_len)


def _cstr(name: str, tag: int, max_len: int) -> TlvSpec:
    return TlvSpec(name, tag, C_STRING, 0, 0, max_len)


#: The §5.3.2 table.  The telematics ids are kept as octets: their
#: Integer size is not reliably implemented by SMSCs.
TLV_SPECS: tuple[TlvSpec, ...] = (
    _int("dest_addr_subunit", 0x0005, 1),
    _int("dest_network_type", 0x0006, 1),
    _int("dest_bearer_type", 0x0007, 1),
    _oct("dest_telematics_id", 0x0008),
    _int("source_addr_subunit", 0x000D, 1),
    _int("source_network_type", 0x000E, 1),
    _int("source_bearer_type", 0x000F, 1),
    _oct("source_telematics_id", 0x0010),
    _int("qos_time_to_live", 0x0017, 4),
    _int("payload_type", 0x0019, 1),
    _cstr("additional_status_info_text", 0x001D, 256),
    _cstr("receipted_message_id", 0x001E, 65),
    _int("ms_msg_wait_facilities", 0x0030, 1),
    _int("privacy_indicator", 0x0201, 1),
    _oct("source_subaddress", 0x0202, 2, 23),
    _oct("dest_subaddress", 0x0203, 2, 23),
    _int("user_message_reference", 0x0204, 2),
    _int("user_response_code", 0x0205, 1),
    _int("source_port", 0x020A, 2),
    _int("destination_port", 0x020B, 2),
    _int("sar_msg_ref_num", 0x020C, 2),
    _int("language_indicator", 0x020D, 1),
    _int("sar_total_segments", 0x020E, 1),
    _int("sar_segment_seqnum", 0x020F, 1),
    _int("sc_interface_version", 0x0210, 1),
    _int("callback_num_pres_ind", 0x0302, 1),
    _oct("callback_num_atag", 0x0303, 0, 65),
    _int("number_of_messages", 0x0304, 1),
    _oct("callback_num", 0x0381, 4, 19),
    _int("dpf_result", 0x0420, 1),
    _int("set_dpf", 0x0421, 1),
    _int("ms_availability_status", 0x0422, 1),
    _oct("network_error_code", 0x0423, 3, 3),
    _oct("message_payload", 0x0424, 0, 0xFFFF),
    _int("delivery_failure_reason", 0x0425, 1),
    _int("more_messages_to_send", 0x0426, 1),
    _int("message_state", 0x0427, 1),
    _int("ussd_service_op", 0x0501, 1),
    _int("display_time", 0x1201, 1),
    _int("sms_signal", 0x1203, 2),
    _int("ms_validity", 0x1204, 1),
    _oct("alert_on_message_delivery", 0x130C, 0, 0),
    _int("its_reply_type", 0x1380, 1),
    _oct("its_session_info", 0x1383, 2, 2),
)

SPECS_BY_TAG: dict[int, TlvSpec] = {s.tag: s for s in TLV_SPECS}
SPECS_BY_NAME: dict[str, TlvSpec] = {s.name: s for s in TLV_SPECS}
#: Names people use for a parameter that the spec spells otherwise.
ALIASES: dict[str, str] = {"dest_port": "destination_port"}
#: name or alias -> tag.
_TAGS: dict[str, int] = {**{s.name: s.tag for s in TLV_SPECS},
                         **{alias: SPECS_BY_NAME[name].tag for alias, name in ALIASES.items()}}


def tag_of(key: str | int) -> int:
    """Return the tag for a parameter name (or alias) or a numeric tag.

    @raise KeyError: for a name that is not in the table.
    """
    tag = _TAGS.get(key)
    if tag is not None:
        return tag
    if isinstance(key, int):
        return key
    raise KeyError(key)


@dataclass(frozen=True)
class Tlv:
    """One optional parameter: its tag and its value.

    For a known tag the value is an C{int}, C{str} or C{bytes} as its
    L{TlvSpec} says; for an unknown tag it is the raw value octets.
    """

    tag: int
    value: TlvValue

    @property
    def name(self) -> str | None:
        """The parameter name, or C{None} for a tag not in the table."""
        spec = SPECS_BY_TAG.get(self.tag)
        return spec.name if spec else None


def tlvs(**values: TlvValue) -> tuple[Tlv, ...]:
    """Build TLVs from parameter names, in argument order.

    C{tlvs(sar_msg_ref_num=7, sar_total_segments=2, sar_segment_seqnum=1)}.

    @raise KeyError: for a name that is not in the table.
    """
    return tuple(Tlv(tag_of(name), value) for name, value in values.items())


def encode_tlv(item: Tlv) -> bytes:
    """Return the wire form of one TLV.

    @raise EncodeError: if the value does not fit the tag's definition (or,
        for an unknown tag, is not C{bytes}), or is longer than 65535 octets.
    """
    if not 0 <= item.tag <= 0xFFFF:
        raise EncodeError("TLV tag 0x%X out of range" % (item.tag,))
    spec = SPECS_BY_TAG.get(item.tag)
    value = item.value
    label = spec.name if spec else "TLV 0x%04X" % (item.tag,)
    if spec is None or spec.kind == OCTETS:
        if not isinstance(value, (bytes, bytearray)):
            raise EncodeError("%s needs bytes, got %r" % (label, value))
        raw = bytes(value)
    elif spec.kind == INTEGER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError("%s needs an int, got %r" % (label, value))
        if not 0 <= value < 1 << (8 * spec.size):
            raise EncodeError("%s=%d does not fit %d octet(s)" % (label, value, spec.size))
        raw = value.to_bytes(spec.size, "big")
    else:
        if not isinstance(value, str):
            raise EncodeError("%s needs a str, got %r" % (label, value))
        if "\x00" in value:
            raise EncodeError("%s holds a NUL" % (label,))
        try:
            raw = value.encode("latin-1") + b"\x00"
        except UnicodeEncodeError:
            raise EncodeError("%s is not Latin-1: %r" % (label, value)) from None
    if spec is not None:
        if len(raw) < spec.min_len or (spec.max_len is not None and len(raw) > spec.max_len):
            raise EncodeError("%s: %d octets is outside %d..%s" % (
                label, len(raw), spec.min_len, spec.max_len))
    if len(raw) > 0xFFFF:
        raise EncodeError("%s: value over 65535 octets" % (label,))
    return struct.pack(">HH", item.tag, len(raw)) + raw


def encode_tlvs(items: Iterable[Tlv]) -> bytes:
    """Return the concatenated wire form of C{items}, in order.

    @raise EncodeError: as L{encode_tlv}.
    """
    return b"".join(encode_tlv(item) for item in items)


def decode_tlvs(data: bytes, *, command_id: int | None = None,
                sequence_number: int | None = None) -> tuple[Tlv, ...]:
    """Decode the optional part of a PDU body (all of C{data}).

    Duplicates and order are kept as received.  A C-Octet string value
    without its NUL is accepted (the TLV length already bounds it) if it
    would still fit its maximum with one; octets after an inner NUL are
    dropped.

    @param command_id, sequence_number: copied into a raised L{DecodeError}.
    @raise DecodeError: C{ESME_RINVOPTPARSTREAM} when a TLV header is cut
        short or a length runs past the end of the body;
        C{ESME_RINVPARLEN} when a known tag has a length its definition
        does not allow.  Never fatal: the PDU itself was framed.
    """
    items = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 4:
            raise DecodeError(
                ESME_RINVOPTPARSTREAM,
                "%d stray octet(s) where a TLV header was expected" % (end - pos,),
                command_id=command_id, sequence_number=sequence_number)
        tag, length = struct.unpack_from(">HH", data, pos)
        pos += 4
        if length > end - pos:
            raise DecodeError(
                ESME_RINVOPTPARSTREAM,
                "TLV 0x%04X length %d overruns the body by %d octet(s)" % (
                    tag, length, length - (end - pos)),
                command_id=command_id, sequence_number=sequence_number)
        raw = bytes(data[pos:pos + length])
        pos += length
        items.append(Tlv(tag, _decode_value(tag, raw, command_id, sequence_number)))
    return tuple(items)


def _decode_value(tag: int, raw: bytes, command_id: int | None,
                  sequence_number: int | None) -> TlvValue:
    spec = SPECS_BY_TAG.get(tag)
    if spec is None:
        return raw
    size = len(raw)
    if spec.kind == C_STRING and not raw.endswith(b"\x00"):
        size += 1  # counted as if the NUL were there, so it re-encodes
    if size < spec.min_len or (spec.max_len is not None and size > spec.max_len):
        raise DecodeError(
            ESME_RINVPARLEN,
            "%s has length %d, allowed %d..%s" % (
                spec.name, len(raw), spec.min_len, spec.max_len),
            command_id=command_id, sequence_number=sequence_number)
    if spec.kind == INTEGER:
        return int.from_bytes(raw, "big")
    if spec.kind == C_STRING:
        return raw.split(b"\x00", 1)[0].decode("latin-1")
    return raw
