"""AVP encoders, typed readers and a strict AVP splitter (RFC 6733 §4.1-§4.4).

Encoders return python-diameter C{Avp} objects whose flags are set explicitly
by the caller, never taken from python-diameter's dictionary (which clears M
on Origin-Host/Origin-Realm in its command classes and sets it on
Product-Name).  Readers decode one received AVP and raise
C{DiameterDecodeError} (5004, with the AVP in C{failed_avp}) on a bad payload.
"""
from __future__ import annotations

import datetime
import ipaddress
import struct
from typing import Iterable

from diameter.message.avp import Avp
from diameter.message.avp.avp import get_avp_dictionary_entry

from billing.diameter.message.constants import (
    AVP_FLAG_MANDATORY, AVP_FLAG_VENDOR, DIAMETER_INVALID_AVP_LENGTH,
    DIAMETER_INVALID_AVP_VALUE)
from billing.diameter.message.errors import DiameterDecodeError, DiameterEncodeError

#: Seconds between the NTP era-0 epoch (1900) and the Unix epoch.
NTP_UNIX_OFFSET = 2208988800
_UTC = datetime.timezone.utc


# --- encoders --------------------------------------------------------------

def make_avp(code: int, payload: bytes, *, mandatory: bool,
             vendor_id: int = 0) -> Avp:
    """Return a python-diameter AVP with exactly the given flags.

    The V flag and Vendor-ID field are present iff C{vendor_id} is non-zero;
    M is C{mandatory}; P is never set (deprecated by RFC 6733).

    @raise DiameterEncodeError: code or vendor id is not an Unsigned32.
    """
    for name, value in (("AVP code", code), ("vendor id", vendor_id)):
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise DiameterEncodeError(f"{name} {value!r} is not an Unsigned32")
    entry = get_avp_dictionary_entry(code, vendor_id)
    avp_type = entry["type"] if entry else Avp
    avp = avp_type(code, vendor_id, bytes(payload),
                   AVP_FLAG_MANDATORY if mandatory else 0)
    if entry:
        avp.name = entry["name"]
    return avp


def _pack(fmt: str, kind: str, value: object, code: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DiameterEncodeError(f"AVP {code}: {kind} needs an int, "
                                  f"got {value!r}")
    try:
        return struct.pack(fmt, value)
    except struct.error:
        raise DiameterEncodeError(
            f"AVP {code}: {value} does not fit {kind}") from None


def unsigned32(code: int, value: int, *, mandatory: bool = True,
               vendor_id: int = 0) -> Avp:
    """Unsigned32 (also Enumerated-like ids). Raises DiameterEncodeError."""
    return make_avp(code, _pack(">I", "Unsigned32", value, code),
                    mandatory=mandatory, vendor_id=vendor_id)


def integer32(code: int, value: int, *, mandatory: bool = True,
              vendor_id: int = 0) -> Avp:
    """Integer32 or Enumerated. Raises DiameterEncodeError."""
    return make_avp(code, _pack(">i", "Integer32", value, code),
                    mandatory=mandatory, vendor_id=vendor_id)


def integer64(code: int, value: int, *, mandatory: bool = True,
              vendor_id: int = 0) -> Avp:
    """Integer64. Raises DiameterEncodeError."""
    return make_avp(code, _pack(">q", "Integer64", value, code),
                    mandatory=mandatory, vendor_id=vendor_id)


def utf8_string(code: int, value: str, *, mandatory: bool = True,
                vendor_id: int = 0) -> Avp:
    """UTF8String. Raises DiameterEncodeError for a non-str/lone surrogate."""
    if not isinstance(value, str):
        raise DiameterEncodeError(f"AVP {code}: UTF8String needs a str")
    try:
        payload = value.encode("utf-8")
    except UnicodeEncodeError:
        raise DiameterEncodeError(
            f"AVP {code}: not encodable as UTF-8") from None
    return make_avp(code, payload, mandatory=mandatory, vendor_id=vendor_id)


def check_identity(value: str, what: str = "DiameterIdentity") -> bytes:
    """Return the ASCII bytes of a DiameterIdentity (RFC 6733 §4.3.1).

    @raise DiameterEncodeError: empty, not a str, or not printable ASCII
        without spaces and semicolons.
    """
    if (not isinstance(value, str) or not value or not value.isascii()
            or not value.isprintable() or " " in value or ";" in value):
        raise DiameterEncodeError(f"{what} {value!r} is not a valid FQDN")
    return value.encode("ascii")


def identity(code: int, value: str, *, mandatory: bool = True) -> Avp:
    """DiameterIdentity (Origin-Host...). Raises DiameterEncodeError."""
    return make_avp(code, check_identity(value), mandatory=mandatory)


def address(code: int, value: str, *, mandatory: bool = True) -> Avp:
    """Address holding an IPv4 (family 1) or IPv6 (family 2) address.

    @raise DiameterEncodeError: C{value} is not an IP address.
    """
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise DiameterEncodeError(f"{value!r} is not an IP address") from None
    family = 1 if ip.version == 4 else 2
    return make_avp(code, struct.pack(">H", family) + ip.packed,
                    mandatory=mandatory)


def time_value(code: int, value: datetime.datetime, *, mandatory: bool = True,
               vendor_id: int = 0) -> Avp:
    """Time: NTP seconds, wrapping into era 1 after 2036 (RFC 6733 §4.3.1).

    @raise DiameterEncodeError: not a timezone-aware datetime, or before 1968
        (not representable).
    """
    if not isinstance(value, datetime.datetime) or value.tzinfo is None:
        raise DiameterEncodeError(f"AVP {code}: Time needs an aware datetime")
    ntp = int(value.timestamp()) + NTP_UNIX_OFFSET
    if ntp < 0x80000000:
        raise DiameterEncodeError(f"AVP {code}: {value} is before 1968")
    return make_avp(code, struct.pack(">I", ntp & 0xFFFFFFFF),
                    mandatory=mandatory, vendor_id=vendor_id)


def grouped(code: int, children: Iterable[Avp], *, mandatory: bool = True,
            vendor_id: int = 0) -> Avp:
    """Grouped: the concatenated encodings of C{children}."""
    payload = b"".join(child.as_bytes() for child in children)
    return make_avp(code, payload, mandatory=mandatory, vendor_id=vendor_id)


# --- strict splitting of received AVP lists --------------------------------

def split_avps(buf: bytes) -> list[Avp]:
    """Split a buffer holding whole, padded AVPs into python-diameter AVPs.

    Checks every AVP header before python-diameter sees it: the AVP Length
    must cover its header (8, or 12 with V) and, padded to 4, must not run
    past the buffer.

    @raise DiameterDecodeError: result_code 5014 DIAMETER_INVALID_AVP_LENGTH,
        C{failed_avp} holding the offending AVP header.
    """
    avps = []
    pos, end = 0, len(buf)
    while pos < end:
        if end - pos < 8:
            raise DiameterDecodeError(
                f"{end - pos} stray bytes after the last AVP",
                result_code=DIAMETER_INVALID_AVP_LENGTH, failed_avp=buf[pos:])
        code, flags_length = struct.unpack_from(">II", buf, pos)
        length = flags_length & 0xFFFFFF
        head = 12 if flags_length >> 24 & AVP_FLAG_VENDOR else 8
        padded = (length + 3) & ~3
        if length < head or pos + padded > end:
            raise DiameterDecodeError(
                f"AVP {code} has length {length}: {end - pos} bytes left, "
                f"header needs {head}",
                result_code=DIAMETER_INVALID_AVP_LENGTH,
                failed_avp=buf[pos:pos + min(head, end - pos)])
        raw = buf[pos:pos + padded]
        try:
            avps.append(Avp.from_bytes(raw))
        except Exception as e:  # python-diameter's error types are not stable
            raise DiameterDecodeError(
                f"AVP {code} cannot be decoded: {e}",
                failed_avp=raw[:length]) from None
        pos += padded
    return avps


# --- typed readers -----------------------------------------------------------

def _fail(avp: Avp, why: str, code: int = DIAMETER_INVALID_AVP_VALUE):
    raw = avp.as_bytes()[:avp.length]
    return DiameterDecodeError(f"AVP {avp.code} ({avp.name}): {why}",
                               result_code=code, failed_avp=raw)


def _unpack(avp: Avp, fmt: str, kind: str) -> int:
    if len(avp.payload) != struct.calcsize(fmt):
        size = struct.calcsize(fmt)
        why = f"{kind} needs {size} bytes, has {len(avp.payload)}"
        raise _fail(avp, why, DIAMETER_INVALID_AVP_LENGTH)
    return struct.unpack(fmt, avp.payload)[0]


def read_unsigned32(avp: Avp) -> int:
    """Unsigned32 value. Raises DiameterDecodeError (5014)."""
    return _unpack(avp, ">I", "Unsigned32")


def read_integer32(avp: Avp) -> int:
    """Integer32/Enumerated value. Raises DiameterDecodeError (5014)."""
    return _unpack(avp, ">i", "Integer32")


def read_integer64(avp: Avp) -> int:
    """Integer64 value. Raises DiameterDecodeError (5014)."""
    return _unpack(avp, ">q", "Integer64")


def read_utf8(avp: Avp) -> str:
    """UTF8String value. Raises DiameterDecodeError (5004)."""
    try:
        return bytes(avp.payload).decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(avp, "not valid UTF-8") from None


def read_identity(avp: Avp) -> str:
    """DiameterIdentity value. Raises DiameterDecodeError (5004)."""
    try:
        text = bytes(avp.payload).decode("ascii")
        check_identity(text)
    except (UnicodeDecodeError, DiameterEncodeError):
        raise _fail(avp, "not a DiameterIdentity") from None
    return text


def read_time(avp: Avp) -> datetime.datetime:
    """Time as an aware UTC datetime. Raises DiameterDecodeError (5014)."""
    ntp = _unpack(avp, ">I", "Time")
    era = 0 if ntp & 0x80000000 else 1 << 32  # RFC 2030 §3 wrap rule
    seconds = ntp + era - NTP_UNIX_OFFSET
    return datetime.datetime.fromtimestamp(seconds, _UTC)


def read_address(avp: Avp) -> str:
    """Address value (IPv4/IPv6) as text. Raises DiameterDecodeError (5004)."""
    payload = bytes(avp.payload)
    family = payload[:2]
    try:
        if family == b"\x00\x01" and len(payload) == 6:
            return str(ipaddress.IPv4Address(payload[2:]))
        if family == b"\x00\x02" and len(payload) == 18:
            return str(ipaddress.IPv6Address(payload[2:]))
    except ValueError:
        pass
    raise _fail(avp, "not an IPv4/IPv6 Address")


def read_grouped(avp: Avp) -> list[Avp]:
    """The AVPs inside a Grouped AVP. Raises DiameterDecodeError (5014)."""
    return split_avps(bytes(avp.payload))


def find_avps(avps: Iterable[Avp], code: int, vendor_id: int = 0) -> list[Avp]:
    """The AVPs in C{avps} (one level, wire order) with this code and vendor."""
    return [a for a in avps if a.code == code and a.vendor_id == vendor_id]
