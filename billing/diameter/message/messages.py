"""Builders for CER/CEA, DWR/DWA, DPR/DPA and answers (RFC 6733 §5.3-§5.5, §7).

Every builder returns wire bytes made by python-diameter's C{Message} codec
from an AVP list we assemble ourselves, which avoids three python-diameter
0.9 defects: its command classes send Origin-Host/Origin-Realm without the M
bit, C{CreditControlRequest()} leaves the Application-Id at 0, and
C{to_answer()} drops the Session-Id.  Hop-by-Hop and End-to-End identifiers
are arguments (default 0: the transport stamps them with
C{header.set_identifiers}).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from diameter.message import Message, MessageHeader
from diameter.message.avp import Avp

from billing.diameter.message import avps as _avps
from billing.diameter.message.constants import (
    APP_BASE, APP_CREDIT_CONTROL, AVP_AUTH_APPLICATION_ID,
    AVP_DISCONNECT_CAUSE, AVP_ERROR_MESSAGE, AVP_FAILED_AVP,
    AVP_FIRMWARE_REVISION, AVP_HOST_IP_ADDRESS, AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM, AVP_ORIGIN_STATE_ID, AVP_PRODUCT_NAME, AVP_RESULT_CODE,
    AVP_SESSION_ID, AVP_SUPPORTED_VENDOR_ID, AVP_VENDOR_ID,
    CMD_CAPABILITIES_EXCHANGE, CMD_DEVICE_WATCHDOG, CMD_DISCONNECT_PEER,
    DIAMETER_SUCCESS, DISCONNECT_REBOOTING, FLAG_ERROR, FLAG_PROXIABLE,
    FLAG_REQUEST)
from billing.diameter.message.errors import DiameterDecodeError, DiameterEncodeError
from billing.diameter.message.header import DiameterHeader
from billing.diameter.message.parsing import DecodedMessage

#: Longest Error-Message text we send.
MAX_ERROR_MESSAGE = 200


@dataclasses.dataclass(frozen=True)
class LocalIdentity:
    """How this node presents itself to its Diameter peers (RFC 6733 §5.3).

    Raises (on construction):
        DiameterEncodeError: a host/realm is not a DiameterIdentity, no or
            an invalid Host-IP-Address, or a number is not an Unsigned32.
    """

    origin_host: str
    origin_realm: str
    host_ip_addresses: tuple[str, ...]
    vendor_id: int = 0
    product_name: str = "iVOMS"
    origin_state_id: int | None = None
    firmware_revision: int | None = None
    supported_vendor_ids: tuple[int, ...] = ()

    def __post_init__(self):
        _avps.check_identity(self.origin_host, "origin_host")
        _avps.check_identity(self.origin_realm, "origin_realm")
        ips = self.host_ip_addresses
        if isinstance(ips, str) or not ips:
            raise DiameterEncodeError(
                "host_ip_addresses needs at least one address (a tuple)")
        for ip in ips:
            _avps.address(AVP_HOST_IP_ADDRESS, ip)
        for name in ("vendor_id", "origin_state_id", "firmware_revision"):
            value = getattr(self, name)
            if value is not None:
                _avps.unsigned32(0, value)
        for vendor in self.supported_vendor_ids:
            _avps.unsigned32(0, vendor)
        _avps.utf8_string(AVP_PRODUCT_NAME, self.product_name)

    def origin_avps(self) -> list[Avp]:
        """Origin-Host and Origin-Realm, both with M set (RFC 6733 §6.3)."""
        return [_avps.identity(AVP_ORIGIN_HOST, self.origin_host),
                _avps.identity(AVP_ORIGIN_REALM, self.origin_realm)]

    def state_avps(self) -> list[Avp]:
        """[Origin-State-Id] when configured."""
        if self.origin_state_id is None:
            return []
        return [_avps.unsigned32(AVP_ORIGIN_STATE_ID, self.origin_state_id)]


def encode_message(command_code: int, flags: int, application_id: int,
                   avp_list: Iterable[Avp], *, hop_by_hop: int = 0,
                   end_to_end: int = 0) -> bytes:
    """Encode a message with python-diameter's codec and our header fields.

    @raise DiameterEncodeError: a header field is out of range or an AVP
        cannot be encoded.
    """
    # Range-check every header field (our packer raises DiameterEncodeError).
    DiameterHeader(1, 0, flags, command_code, application_id, hop_by_hop,
                   end_to_end).pack()
    header = MessageHeader(version=1, command_flags=flags,
                           command_code=command_code,
                           application_id=application_id,
                           hop_by_hop_identifier=hop_by_hop,
                           end_to_end_identifier=end_to_end)
    try:
        data = Message(header, list(avp_list)).as_bytes()
    except Exception as e:  # python-diameter wraps little; keep one type
        raise DiameterEncodeError(f"cannot encode message: {e}") from None
    if len(data) > 0xFFFFFF:
        raise DiameterEncodeError(f"message of {len(data)} bytes is too long")
    return data


def _capabilities_avps(local: LocalIdentity) -> list[Avp]:
    out = [_avps.address(AVP_HOST_IP_ADDRESS, ip)
           for ip in local.host_ip_addresses]
    out.append(_avps.unsigned32(AVP_VENDOR_ID, local.vendor_id))
    # Product-Name and Firmware-Revision: M bit MUST NOT be set (RFC 6733 §4.5)
    out.append(_avps.utf8_string(AVP_PRODUCT_NAME, local.product_name,
                                 mandatory=False))
    out += local.state_avps()
    out += [_avps.unsigned32(AVP_SUPPORTED_VENDOR_ID, v)
            for v in local.supported_vendor_ids]
    out.append(_avps.unsigned32(AVP_AUTH_APPLICATION_ID, APP_CREDIT_CONTROL))
    if local.firmware_revision is not None:
        out.append(_avps.unsigned32(AVP_FIRMWARE_REVISION,
                                    local.firmware_revision, mandatory=False))
    return out


def build_cer(local: LocalIdentity, *, hop_by_hop: int = 0,
              end_to_end: int = 0) -> bytes:
    """Capabilities-Exchange-Request announcing Auth-Application-Id 4.

    Header: command 257, flags R only, Application-Id 0.
    """
    return encode_message(
        CMD_CAPABILITIES_EXCHANGE, FLAG_REQUEST, APP_BASE,
        local.origin_avps() + _capabilities_avps(local),
        hop_by_hop=hop_by_hop, end_to_end=end_to_end)


def build_dwr(local: LocalIdentity, *, hop_by_hop: int = 0,
              end_to_end: int = 0) -> bytes:
    """Device-Watchdog-Request (command 280, flags R, Application-Id 0)."""
    return encode_message(CMD_DEVICE_WATCHDOG, FLAG_REQUEST, APP_BASE,
                          local.origin_avps() + local.state_avps(),
                          hop_by_hop=hop_by_hop, end_to_end=end_to_end)


def build_dpr(local: LocalIdentity, cause: int = DISCONNECT_REBOOTING, *,
              hop_by_hop: int = 0, end_to_end: int = 0) -> bytes:
    """Disconnect-Peer-Request with Disconnect-Cause (RFC 6733 §5.4.3).

    @raise DiameterEncodeError: C{cause} is not an Integer32.
    """
    return encode_message(
        CMD_DISCONNECT_PEER, FLAG_REQUEST, APP_BASE,
        local.origin_avps() + [_avps.integer32(AVP_DISCONNECT_CAUSE, cause)],
        hop_by_hop=hop_by_hop, end_to_end=end_to_end)


def build_answer(request: DiameterHeader, local: LocalIdentity,
                 result_code: int | None, *, session_id: str | None = None,
                 body: Iterable[Avp] = (), error_message: str | None = None,
                 failed_avp: bytes | None = None) -> bytes:
    """Answer to C{request}: same command, Application-Id and identifiers.

    R and T are cleared, P is copied, and E is set for a protocol error
    (3xxx, RFC 6733 §7.1.3).  C{result_code} None omits Result-Code (for an
    answer carrying Experimental-Result in C{body} instead).  AVP order:
    [Session-Id], [Result-Code],
    Origin-Host, Origin-Realm, C{body}, [Error-Message], [Failed-AVP],
    [Origin-State-Id].  C{failed_avp} is the raw offending AVP.

    @raise DiameterEncodeError: C{request} is an answer, or a value is invalid.
    """
    if not request.flags & FLAG_REQUEST:
        raise DiameterEncodeError("an answer is never answered")
    flags = request.flags & FLAG_PROXIABLE
    if result_code is not None and 3000 <= result_code < 4000:
        flags |= FLAG_ERROR
    out = []
    if session_id is not None:
        out.append(_avps.utf8_string(AVP_SESSION_ID, session_id))
    if result_code is not None:
        out.append(_avps.unsigned32(AVP_RESULT_CODE, result_code))
    out += local.origin_avps()
    out += list(body)
    if error_message:
        # Error-Message: M bit MUST NOT be set (RFC 6733 §7.3)
        out.append(_avps.utf8_string(AVP_ERROR_MESSAGE,
                                     error_message[:MAX_ERROR_MESSAGE],
                                     mandatory=False))
    if failed_avp is not None:
        out.append(_avps.make_avp(AVP_FAILED_AVP, bytes(failed_avp).ljust(
            (len(failed_avp) + 3) & ~3, b"\0"), mandatory=True))
    out += local.state_avps()
    return encode_message(request.command_code, flags, request.application_id,
                          out, hop_by_hop=request.hop_by_hop,
                          end_to_end=request.end_to_end)


def build_cea(request: DecodedMessage, local: LocalIdentity,
              result_code: int = DIAMETER_SUCCESS, *,
              error_message: str | None = None) -> bytes:
    """Capabilities-Exchange-Answer announcing Auth-Application-Id 4."""
    body = [a for a in _capabilities_avps(local)
            if a.code != AVP_ORIGIN_STATE_ID]
    return build_answer(request.header, local, result_code, body=body,
                        error_message=error_message)


def build_dwa(request: DecodedMessage, local: LocalIdentity,
              result_code: int = DIAMETER_SUCCESS) -> bytes:
    """Device-Watchdog-Answer."""
    return build_answer(request.header, local, result_code)


def build_dpa(request: DecodedMessage, local: LocalIdentity,
              result_code: int = DIAMETER_SUCCESS) -> bytes:
    """Disconnect-Peer-Answer."""
    return build_answer(request.header, local, result_code)


def build_error_answer(error: DiameterDecodeError,
                       local: LocalIdentity) -> bytes | None:
    """Answer a request that failed to decode; None if it cannot be answered.

    Uses C{error.result_code}, C{error.failed_avp} and C{error.session_id};
    None when the header was unreadable or the message was an answer
    (answers are never answered, RFC 6733 §7.1).
    """
    header = error.header
    if header is None or not header.is_request:
        return None
    return build_answer(header, local, error.result_code,
                        session_id=error.session_id,
                        error_message=error.reason,
                        failed_avp=error.failed_avp)
