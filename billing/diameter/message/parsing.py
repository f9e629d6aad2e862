"""Read access to a received Diameter message and its AVPs (RFC 6733 §6-§7).

C{framing.decode_message} returns a C{DecodedMessage}: the header, the
top-level AVPs as python-diameter objects in wire order, and typed getters
that raise C{DiameterDecodeError} (never a python-diameter exception) when an
AVP present on the wire is malformed.  C{parse_capabilities} reads a CER/CEA.
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Callable, TypeVar

from diameter.message import Message, MessageHeader
from diameter.message.avp import Avp

from billing.diameter.message import avps as _avps
from billing.diameter.message.constants import (
    APP_CREDIT_CONTROL, APP_RELAY, AVP_ACCT_APPLICATION_ID,
    AVP_AUTH_APPLICATION_ID, AVP_ERROR_MESSAGE, AVP_EXPERIMENTAL_RESULT,
    AVP_EXPERIMENTAL_RESULT_CODE, AVP_FIRMWARE_REVISION, AVP_HOST_IP_ADDRESS,
    AVP_ORIGIN_HOST, AVP_ORIGIN_REALM, AVP_ORIGIN_STATE_ID, AVP_PRODUCT_NAME,
    AVP_RESULT_CODE, AVP_SESSION_ID, AVP_SUPPORTED_VENDOR_ID,
    AVP_VENDOR_ID, AVP_VENDOR_SPECIFIC_APPLICATION_ID,
    CMD_CAPABILITIES_EXCHANGE, DIAMETER_MISSING_AVP)
from billing.diameter.message.errors import DiameterDecodeError
from billing.diameter.message.header import DiameterHeader

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class ExperimentalResult:
    """An Experimental-Result { Vendor-Id, Experimental-Result-Code }."""

    vendor_id: int
    code: int


class DecodedMessage:
    """One received message: C{header}, top-level C{avps} and typed getters.

    Getters return None when the AVP is absent and raise
    C{DiameterDecodeError} when it is present but malformed.
    """

    def __init__(self, header: DiameterHeader, avps: list[Avp], raw: bytes):
        self.header = header
        self.avps: tuple[Avp, ...] = tuple(avps)
        self.raw = raw

    def __repr__(self) -> str:
        h = self.header
        kind = "request" if h.is_request else "answer"
        return (f"<DecodedMessage {kind} cmd={h.command_code} "
                f"app={h.application_id} hbh={h.hop_by_hop:#x} "
                f"e2e={h.end_to_end:#x} avps={len(self.avps)}>")

    # -- generic lookup ------------------------------------------------------

    def find(self, code: int, vendor_id: int = 0) -> Avp | None:
        """The first top-level AVP with this code and vendor, or None."""
        found = _avps.find_avps(self.avps, code, vendor_id)
        return found[0] if found else None

    def find_all(self, code: int, vendor_id: int = 0) -> list[Avp]:
        """Every top-level AVP with this code and vendor, in wire order."""
        return _avps.find_avps(self.avps, code, vendor_id)

    def find_path(self, *path: int | tuple[int, int]) -> list[Avp]:
        """The AVPs at the end of a chain of (code, vendor) steps.

        A bare int step means vendor 0.  Grouped AVPs on the way are split
        with the same checks as the message.

        @raise DiameterDecodeError: a grouped AVP on the way is malformed.
        """
        level: list[Avp] = list(self.avps)
        for depth, step in enumerate(path):
            code, vendor = (step, 0) if isinstance(step, int) else step
            matches = _avps.find_avps(level, code, vendor)
            if depth == len(path) - 1:
                return matches
            level = [child for avp in matches
                     for child in _avps.read_grouped(avp)]
        return []

    def _get(self, reader: Callable[[Avp], _T], code: int,
             vendor_id: int = 0) -> _T | None:
        avp = self.find(code, vendor_id)
        if avp is None:
            return None
        try:
            return reader(avp)
        except DiameterDecodeError as e:
            e.header = self.header
            raise

    def get_unsigned32(self, code: int, vendor_id: int = 0) -> int | None:
        return self._get(_avps.read_unsigned32, code, vendor_id)

    def get_integer32(self, code: int, vendor_id: int = 0) -> int | None:
        return self._get(_avps.read_integer32, code, vendor_id)

    def get_utf8(self, code: int, vendor_id: int = 0) -> str | None:
        return self._get(_avps.read_utf8, code, vendor_id)

    def get_identity(self, code: int, vendor_id: int = 0) -> str | None:
        return self._get(_avps.read_identity, code, vendor_id)

    def get_time(self, code: int,
                 vendor_id: int = 0) -> datetime.datetime | None:
        return self._get(_avps.read_time, code, vendor_id)

    # -- common AVPs ---------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return self.get_utf8(AVP_SESSION_ID)

    @property
    def origin_host(self) -> str | None:
        return self.get_identity(AVP_ORIGIN_HOST)

    @property
    def origin_realm(self) -> str | None:
        return self.get_identity(AVP_ORIGIN_REALM)

    @property
    def result_code(self) -> int | None:
        return self.get_unsigned32(AVP_RESULT_CODE)

    @property
    def error_message(self) -> str | None:
        return self.get_utf8(AVP_ERROR_MESSAGE)

    @property
    def experimental_result(self) -> ExperimentalResult | None:
        """The Experimental-Result, or None when absent.

        @raise DiameterDecodeError: malformed, or without its two required AVPs
            (5005 DIAMETER_MISSING_AVP).
        """
        avp = self.find(AVP_EXPERIMENTAL_RESULT)
        if avp is None:
            return None
        try:
            children = _avps.read_grouped(avp)
            vendor = _avps.find_avps(children, AVP_VENDOR_ID)
            code = _avps.find_avps(children, AVP_EXPERIMENTAL_RESULT_CODE)
            if not vendor or not code:
                raise DiameterDecodeError(
                    "Experimental-Result lacks Vendor-Id or "
                    "Experimental-Result-Code",
                    result_code=DIAMETER_MISSING_AVP,
                    failed_avp=avp.as_bytes()[:avp.length])
            return ExperimentalResult(_avps.read_unsigned32(vendor[0]),
                                      _avps.read_unsigned32(code[0]))
        except DiameterDecodeError as e:
            e.header = self.header
            raise

    def to_python_diameter(self) -> Message:
        """A plain python-diameter C{Message} of the same AVPs (for dumps)."""
        h = self.header
        return Message(MessageHeader(h.version, h.length, h.flags,
                                     h.command_code, h.application_id,
                                     h.hop_by_hop, h.end_to_end),
                       list(self.avps))


@dataclasses.dataclass(frozen=True)
class PeerCapabilities:
    """What a peer announced in its CER or CEA (RFC 6733 §5.3)."""

    origin_host: str
    origin_realm: str
    result_code: int | None
    host_ip_addresses: tuple[str, ...]
    vendor_id: int | None
    product_name: str | None
    origin_state_id: int | None
    firmware_revision: int | None
    auth_application_ids: frozenset[int]
    acct_application_ids: frozenset[int]
    supported_vendor_ids: frozenset[int]

    @property
    def supports_credit_control(self) -> bool:
        """True if the peer announced application 4 or is a relay."""
        return bool({APP_CREDIT_CONTROL, APP_RELAY}
                    & self.auth_application_ids)


def parse_capabilities(msg: DecodedMessage) -> PeerCapabilities:
    """Read a CER or CEA.

    Auth-Application-Ids announced inside Vendor-Specific-Application-Id
    count as announced.

    @raise DiameterDecodeError: not a Capabilities-Exchange message, Origin-Host
        or Origin-Realm missing (5005), or an AVP is malformed.
    """
    if msg.header.command_code != CMD_CAPABILITIES_EXCHANGE:
        raise DiameterDecodeError(
            f"command {msg.header.command_code} is not Capabilities-Exchange",
            header=msg.header)
    host, realm = msg.origin_host, msg.origin_realm
    if host is None or realm is None:
        raise DiameterDecodeError("CER/CEA without Origin-Host/Origin-Realm",
                                  result_code=DIAMETER_MISSING_AVP,
                                  header=msg.header)
    try:
        auth = {_avps.read_unsigned32(a)
                for a in msg.find_all(AVP_AUTH_APPLICATION_ID)}
        auth |= {_avps.read_unsigned32(a) for a in msg.find_path(
            AVP_VENDOR_SPECIFIC_APPLICATION_ID, AVP_AUTH_APPLICATION_ID)}
        acct = {_avps.read_unsigned32(a)
                for a in msg.find_all(AVP_ACCT_APPLICATION_ID)}
        acct |= {_avps.read_unsigned32(a) for a in msg.find_path(
            AVP_VENDOR_SPECIFIC_APPLICATION_ID, AVP_ACCT_APPLICATION_ID)}
        return PeerCapabilities(
            origin_host=host, origin_realm=realm,
            result_code=msg.result_code,
            host_ip_addresses=tuple(_avps.read_address(a) for a in
                                    msg.find_all(AVP_HOST_IP_ADDRESS)),
            vendor_id=msg.get_unsigned32(AVP_VENDOR_ID),
            product_name=msg.get_utf8(AVP_PRODUCT_NAME),
            origin_state_id=msg.get_unsigned32(AVP_ORIGIN_STATE_ID),
            firmware_revision=msg.get_unsigned32(AVP_FIRMWARE_REVISION),
            auth_application_ids=frozenset(auth),
            acct_application_ids=frozenset(acct),
            supported_vendor_ids=frozenset(
                _avps.read_unsigned32(a)
                for a in msg.find_all(AVP_SUPPORTED_VENDOR_ID)))
    except DiameterDecodeError as e:
        e.header = msg.header
        raise
