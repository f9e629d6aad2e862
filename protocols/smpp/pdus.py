"""SMPP PDU objects: command ids and immutable PDU dataclasses (SMPP v3.4 issue 1.2 §4, §5.1.2).

Each class lists its mandatory body in C{FIELDS}, in wire order; the codec
in L{protocols.smpp.codec} walks that list.  C-Octet strings are C{str}
(Latin-1 on the wire, so any octet round-trips), Integers are C{int},
short_message is C{bytes}; sm_length is not stored, it is always
C{len(short_message)}.  Optional parameters are a tuple of L{Tlv} in wire
order, read with L{Pdu.tlv}.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from protocols.smpp.errors import (
    ESME_RINVDSTADR, ESME_RINVEXPIRY, ESME_RINVMSGID, ESME_RINVPARLEN,
    ESME_RINVPASWD, ESME_RINVSCHED, ESME_RINVSERTYP, ESME_RINVSRCADR,
    ESME_RINVSYSID, ESME_RINVSYSTYP, ESME_ROK)
from protocols.smpp.tlv import Tlv, TlvValue, tag_of

# §5.1.2.1 command_id values.
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_RECEIVER_RESP = 0x80000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSMITTER_RESP = 0x80000002
QUERY_SM = 0x00000003
QUERY_SM_RESP = 0x80000003
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
REPLACE_SM = 0x00000007
REPLACE_SM_RESP = 0x80000007
CANCEL_SM = 0x00000008
CANCEL_SM_RESP = 0x80000008
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
SUBMIT_MULTI = 0x00000021
SUBMIT_MULTI_RESP = 0x80000021
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103
DATA_SM_RESP = 0x80000103

RESPONSE_BIT = 0x80000000

#: Every §5.1.2.1 command name, including those this codec does not decode.
COMMAND_NAMES: dict[int, str] = {
    value: name.lower() for name, value in list(globals().items())
    if name.isupper() and isinstance(value, int)
    and name != "RESPONSE_BIT" and not name.startswith("ESME_")}

SMPP_VERSION_34 = 0x34

#: esm_class bits (§5.2.12).
ESM_CLASS_UDHI = 0x40
ESM_CLASS_REPLY_PATH = 0x80
ESM_CLASS_DELIVERY_RECEIPT = 0x04


def command_name(command_id: int) -> str:
    """Return the spec name of a command_id, or C{"0x%08X"} if unknown."""
    return COMMAND_NAMES.get(command_id, "0x%08X" % (command_id,))


@dataclass(frozen=True)
class Field:
    """One mandatory body field.

    @ivar kind: C{"int8"} (1-octet Integer), C{"cstr"} (C-Octet string of at
        most C{max_len} octets with its NUL), C{"time"} (C-Octet string that
        is empty or exactly 16 characters, §7.1.1) or C{"sm"} (sm_length
        then that many short_message octets).
    @ivar status: the command_status for a value that breaks the field's
        rules (too long, bad time length).
    """

    name: str
    kind: str
    max_len: int = 0
    status: int = ESME_RINVPARLEN


def _u8(name: str) -> Field:
    return Field(name, "int8")


def _cstr(name: str, max_len: int, status: int = ESME_RINVPARLEN) -> Field:
    return Field(name, "cstr", max_len, status)


_BIND_FIELDS = (
    _cstr("system_id", 16, ESME_RINVSYSID),
    _cstr("password", 9, ESME_RINVPASWD),
    _cstr("system_type", 13, ESME_RINVSYSTYP),
    _u8("interface_version"), _u8("addr_ton"), _u8("addr_npi"),
    _cstr("address_range", 41),
)
_SM_FIELDS = (
    _cstr("service_type", 6, ESME_RINVSERTYP),
    _u8("source_addr_ton"), _u8("source_addr_npi"),
    _cstr("source_addr", 21, ESME_RINVSRCADR),
    _u8("dest_addr_ton"), _u8("dest_addr_npi"),
    _cstr("destination_addr", 21, ESME_RINVDSTADR),
    _u8("esm_class"), _u8("protocol_id"), _u8("priority_flag"),
    Field("schedule_delivery_time", "time", 17, ESME_RINVSCHED),
    Field("validity_period", "time", 17, ESME_RINVEXPIRY),
    _u8("registered_delivery"), _u8("replace_if_present_flag"),
    _u8("data_coding"), _u8("sm_default_msg_id"),
    Field("short_message", "sm", 254),
)
_DATA_SM_FIELDS = (
    _cstr("service_type", 6, ESME_RINVSERTYP),
    _u8("source_addr_ton"), _u8("source_addr_npi"),
    _cstr("source_addr", 65, ESME_RINVSRCADR),
    _u8("dest_addr_ton"), _u8("dest_addr_npi"),
    _cstr("destination_addr", 65, ESME_RINVDSTADR),
    _u8("esm_class"), _u8("registered_delivery"), _u8("data_coding"),
)
_MESSAGE_ID_FIELDS = (_cstr("message_id", 65, ESME_RINVMSGID),)


#: PDU class -> its field names (filled in by L{Pdu.build}).
_FIELD_NAMES: dict[type, frozenset[str]] = {}


@dataclass(frozen=True, kw_only=True)
class Pdu:
    """Fields every PDU has: the header values and the optional parameters.

    command_length is not stored; the encoder computes it.
    """

    command_id: ClassVar[int] = 0
    FIELDS: ClassVar[tuple[Field, ...]] = ()
    #: False for PDUs whose body must be empty (enquire_link, unbind, ...).
    ACCEPTS_TLVS: ClassVar[bool] = True
    #: True for responses sent without a body when command_status != 0.
    OMIT_BODY_ON_ERROR: ClassVar[bool] = False

    sequence_number: int = 0
    command_status: int = ESME_ROK
    optional: tuple[Tlv, ...] = ()

    @property
    def command_name(self) -> str:
        """The spec name of this PDU's command, e.g. C{"submit_sm"}."""
        return command_name(self.command_id)

    @property
    def is_response(self) -> bool:
        """True for a response PDU (command_id bit 31 set, generic_nack too)."""
        return bool(self.command_id & RESPONSE_BIT)

    @classmethod
    def build(cls, **values: Any) -> "Pdu":
        """C{cls(**values)}, several times faster on the hot path: the frozen
        dataclass __init__ sets each field through C{object.__setattr__}.
        Fields not given read their class defaults, as after __init__.

        @raise TypeError: for a name that is not a field of C{cls}.
        """
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
        if not names.issuperset(values):
            raise TypeError("%s has no field %s" % (
                cls.__name__, ", ".join(sorted(set(values) - names))))
        return cls.from_fields(values)

    @classmethod
    def from_fields(cls, values: dict[str, Any]) -> "Pdu":
        """A C{cls} holding C{values}, whose names are known to be its fields
        (the decoder's, or checked by L{build}); the frozen dataclass __init__
        is bypassed and a field not given reads its class default."""
        pdu = object.__new__(cls)
        pdu.__dict__.update(values)
        return pdu

    def tlv(self, key: str | int, default: TlvValue | None = None) -> TlvValue | None:
        """Return the value of the first optional parameter C{key}.

        @param key: a parameter name from the §5.3.2 table (or an alias
            such as C{"dest_port"}) or a numeric tag.
        @return: the value, or C{default} if the PDU does not carry it.
        @raise KeyError: for a name that is not in the table.
        """
        tag = tag_of(key)
        if not self.optional:
            return default
        for item in self.optional:
            if item.tag == tag:
                return item.value
        return default


@dataclass(frozen=True, kw_only=True)
class _Bind(Pdu):
    FIELDS = _BIND_FIELDS
    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = SMPP_VERSION_34
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


@dataclass(frozen=True, kw_only=True)
class BindTransmitter(_Bind):
    """bind_transmitter (§4.1.1)."""

    command_id = BIND_TRANSMITTER


@dataclass(frozen=True, kw_only=True)
class BindReceiver(_Bind):
    """bind_receiver (§4.1.3)."""

    command_id = BIND_RECEIVER


@dataclass(frozen=True, kw_only=True)
class BindTransceiver(_Bind):
    """bind_transceiver (§4.1.5)."""

    command_id = BIND_TRANSCEIVER


@dataclass(frozen=True, kw_only=True)
class _BindResp(Pdu):
    OMIT_BODY_ON_ERROR = True
    FIELDS = (_cstr("system_id", 16, ESME_RINVSYSID),)
    system_id: str = ""


@dataclass(frozen=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    """bind_transmitter_resp (§4.1.2); sc_interface_version is a TLV.

    Like the other bind responses, sent without a body when command_status
    is not ESME_ROK.
    """

    command_id = BIND_TRANSMITTER_RESP


@dataclass(frozen=True, kw_only=True)
class BindReceiverResp(_BindResp):
    """bind_receiver_resp (§4.1.4)."""

    command_id = BIND_RECEIVER_RESP


@dataclass(frozen=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    """bind_transceiver_resp (§4.1.6)."""

    command_id = BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, kw_only=True)
class Outbind(Pdu):
    """outbind (§4.1.7): the SMSC asks the ESME to bind_receiver."""

    command_id = OUTBIND
    FIELDS = (_cstr("system_id", 16, ESME_RINVSYSID), _cstr("password", 9, ESME_RINVPASWD))
    system_id: str = ""
    password: str = ""


@dataclass(frozen=True, kw_only=True)
class _Empty(Pdu):
    ACCEPTS_TLVS = False


@dataclass(frozen=True, kw_only=True)
class Unbind(_Empty):
    """unbind (§4.2.1)."""

    command_id = UNBIND


@dataclass(frozen=True, kw_only=True)
class UnbindResp(_Empty):
    """unbind_resp (§4.2.2)."""

    command_id = UNBIND_RESP


@dataclass(frozen=True, kw_only=True)
class EnquireLink(_Empty):
    """enquire_link (§4.11.1)."""

    command_id = ENQUIRE_LINK


@dataclass(frozen=True, kw_only=True)
class EnquireLinkResp(_Empty):
    """enquire_link_resp (§4.11.2)."""

    command_id = ENQUIRE_LINK_RESP


@dataclass(frozen=True, kw_only=True)
class GenericNack(_Empty):
    """generic_nack (§4.3.1): the answer to a PDU that could not be parsed."""

    command_id = GENERIC_NACK


@dataclass(frozen=True, kw_only=True)
class _ShortMessage(Pdu):
    FIELDS = _SM_FIELDS
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""


@dataclass(frozen=True, kw_only=True)
class SubmitSm(_ShortMessage):
    """submit_sm (§4.4.1)."""

    command_id = SUBMIT_SM


@dataclass(frozen=True, kw_only=True)
class DeliverSm(_ShortMessage):
    """deliver_sm (§4.6.1); schedule_delivery_time and validity_period are empty."""

    command_id = DELIVER_SM


@dataclass(frozen=True, kw_only=True)
class DataSm(Pdu):
    """data_sm (§4.7.1); the text travels in the message_payload TLV."""

    command_id = DATA_SM
    FIELDS = _DATA_SM_FIELDS
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0


@dataclass(frozen=True, kw_only=True)
class _MessageIdResp(Pdu):
    FIELDS = _MESSAGE_ID_FIELDS
    message_id: str = ""


@dataclass(frozen=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    """submit_sm_resp (§4.4.2); its body is omitted when command_status != 0."""

    command_id = SUBMIT_SM_RESP
    OMIT_BODY_ON_ERROR = True


@dataclass(frozen=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    """deliver_sm_resp (§4.6.2); message_id is unused and left empty."""

    command_id = DELIVER_SM_RESP


@dataclass(frozen=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    """data_sm_resp (§4.7.2)."""

    command_id = DATA_SM_RESP


#: command_id -> class, for every PDU this codec decodes.
PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls for cls in (
        BindTransmitter, BindReceiver, BindTransceiver,
        BindTransmitterResp, BindReceiverResp, BindTransceiverResp,
        Outbind, Unbind, UnbindResp, EnquireLink, EnquireLinkResp, GenericNack,
        SubmitSm, SubmitSmResp, DeliverSm, DeliverSmResp, DataSm, DataSmResp)
}

#: request class -> its response class (outbind has none).
RESPONSE_CLASSES: dict[type[Pdu], type[Pdu]] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
    Unbind: UnbindResp,
    EnquireLink: EnquireLinkResp,
    SubmitSm: SubmitSmResp,
    DeliverSm: DeliverSmResp,
    DataSm: DataSmResp,
}
