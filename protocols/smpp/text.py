"""SMS text codecs and concatenation (3GPP TS 23.038 §4, §6.2.1; TS 23.040 §9.2.3.24).

GSM 7-bit default alphabet with its extension table, carried unpacked (one
septet per octet) as SMPP does for data_coding 0; Latin-1 (data_coding 3);
UCS-2 big-endian (data_coding 8; surrogate pairs are accepted and produced
for characters outside the BMP).  User data headers (UDH) are parsed for
the concatenation elements (IEI 0x00, 8-bit reference, and IEI 0x08,
16-bit reference); other elements are kept as they are.  data_coding
values follow SMPP v3.4 issue 1.2 §5.2.19.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols.common import gsm0338

DC_DEFAULT = 0x00
DC_IA5 = 0x01
DC_LATIN1 = 0x03
DC_CYRILLIC = 0x06
DC_HEBREW = 0x07
DC_UCS2 = 0x08

ESM_CLASS_UDHI = 0x40

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08

#: Septets in one unsegmented GSM 7-bit message, and per part behind an
#: 8-bit-reference concatenation UDH (6 octets = 7 septets, TS 23.040).
GSM_SINGLE_SEPTETS = 160
GSM_PART_SEPTETS = 153
#: UTF-16 code units in one UCS-2 message (140 octets) and per part.
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67


class TextError(ValueError):
    """Text that cannot be encoded, or user data that cannot be decoded."""


class UnsupportedCoding(TextError):
    """A data_coding whose user data is not text this module can decode.

    @ivar data_coding: the offending value.
    """

    def __init__(self, data_coding: int) -> None:
        super().__init__("data_coding 0x%02X is not a supported text coding" % (data_coding,))
        self.data_coding = data_coding


class UdhError(TextError):
    """A user data header that is cut short or whose elements overrun it."""


def gsm_encodable(text: str) -> bool:
    """True if every character of C{text} is in the GSM default alphabet or
    its extension table."""
    return gsm0338.encodable(text)


def gsm_septets(text: str) -> int:
    """Return the septets C{text} takes in GSM 7-bit (escapes count two).

    @raise TextError: if C{text} is not GSM-encodable.
    """
    return len(encode_gsm(text))


def encode_gsm(text: str) -> bytes:
    """Encode C{text} as unpacked GSM 7-bit septets (one per octet).

    @raise TextError: naming the first character outside the alphabet.
    """
    try:
        return gsm0338.to_septets(text)
    except gsm0338.NotInAlphabet as e:
        raise TextError(str(e)) from None


def decode_gsm(septets: bytes) -> str:
    """Decode unpacked GSM 7-bit septets (see L{gsm0338.from_septets}).  Never raises.

    Octets with the high bit set (not septets) give U+FFFD.
    """
    return gsm0338.from_septets(septets)


def _decode_ucs2(raw: bytes) -> str:
    return raw.decode("utf-16-be", errors="replace")


def decode_short_message(data_coding: int, raw: bytes, *,
                         default_alphabet: str = "gsm") -> str:
    """Decode the text of a short message (UDH already removed).

    @param data_coding: the PDU's data_coding (§5.2.19); values 0x10..0xFF
        are read as a TS 23.038 §4 data coding scheme.
    @param default_alphabet: what data_coding 0 means on this link:
        C{"gsm"} (unpacked GSM 7-bit, the default), C{"latin-1"} or
        C{"ascii"}; SMSCs differ.
    @return: the text.  Malformed octets decode to U+FFFD, never raise.
    @raise UnsupportedCoding: for binary, compressed or reserved codings
        and the CJK/pictogram values of §5.2.19.
    @raise ValueError: for an unknown C{default_alphabet}.
    """
    if data_coding == DC_DEFAULT:
        if default_alphabet == "gsm":
            return decode_gsm(raw)
        if default_alphabet in ("latin-1", "ascii"):
            return raw.decode(default_alphabet, errors="replace")
        raise ValueError("default_alphabet must be gsm, latin-1 or ascii")
    smpp_codecs = {DC_IA5: "ascii", DC_LATIN1: "latin-1",
                   DC_CYRILLIC: "iso8859_5", DC_HEBREW: "iso8859_8"}
    if data_coding in smpp_codecs:
        return raw.decode(smpp_codecs[data_coding], errors="replace")
    if data_coding == DC_UCS2:
        return _decode_ucs2(raw)
    alphabet = _dcs_alphabet(data_coding)
    if alphabet == "gsm":
        return decode_gsm(raw)
    if alphabet == "ucs2":
        return _decode_ucs2(raw)
    raise UnsupportedCoding(data_coding)


def _dcs_alphabet(dcs: int) -> str | None:
    """Alphabet of a TS 23.038 §4 DCS above 0x0F: "gsm", "ucs2" or None."""
    if 0x10 <= dcs <= 0x7F:
        if dcs & 0x20:  # compressed
            return None
        return {0: "gsm", 2: "ucs2"}.get((dcs >> 2) & 0x03)
    if 0xC0 <= dcs <= 0xDF:
        return "gsm"
    if 0xE0 <= dcs <= 0xEF:
        return "ucs2"
    if dcs >= 0xF0:
        return None if dcs & 0x04 else "gsm"
    return None


def encode_text(text: str) -> tuple[int, bytes]:
    """Encode C{text} in the narrowest coding that holds it.

    @return: C{(0, gsm_septets)} when every character is in the GSM
        alphabet, else C{(8, ucs2_be_octets)}.  No length limit is applied:
        use L{split_for_sms} for short_message.
    """
    if gsm_encodable(text):
        return DC_DEFAULT, encode_gsm(text)
    return DC_UCS2, text.encode("utf-16-be")


@dataclass(frozen=True)
class Concat:
    """Position of one part in a concatenated message.

    @ivar reference: the message reference (8- or 16-bit UDH, or
        sar_msg_ref_num).
    @ivar total: number of parts, 1..255.
    @ivar seqnum: this part's number, 1..total.
    """

    reference: int
    total: int
    seqnum: int

    @staticmethod
    def checked(reference: Any, total: Any, seqnum: Any) -> "Concat | None":
        """Return a Concat, or C{None} when the values are missing or
        inconsistent (TS 23.040 says to ignore such an element)."""
        if not all(isinstance(v, int) for v in (reference, total, seqnum)):
            return None
        if total < 1 or not 1 <= seqnum <= total:
            return None
        return Concat(reference, total, seqnum)


@dataclass(frozen=True)
class Udh:
    """A parsed user data header: its information elements, in order."""

    elements: tuple[tuple[int, bytes], ...]

    @property
    def concat(self) -> Concat | None:
        """The first valid concatenation element (IEI 0x00 or 0x08), or None."""
        for iei, data in self.elements:
            if iei == IEI_CONCAT_8 and len(data) == 3:
                found = Concat.checked(data[0], data[1], data[2])
            elif iei == IEI_CONCAT_16 and len(data) == 4:
                found = Concat.checked(int.from_bytes(data[:2], "big"), data[2], data[3])
            else:
                continue
            if found is not None:
                return found
        return None

    def encode(self) -> bytes:
        """Return the header octets, UDHL first."""
        body = b"".join(bytes((iei, len(data))) + data for iei, data in self.elements)
        return bytes((len(body),)) + body


def parse_udh(user_data: bytes) -> tuple[Udh, bytes]:
    """Split user data that starts with a UDH (esm_class has UDHI set).

    @return: C{(udh, rest)}: the parsed header and the text octets after it.
    @raise UdhError: if the UDHL or an element length runs past the data.
    """
    if not user_data:
        raise UdhError("UDHI set but user data is empty")
    udhl = user_data[0]
    if udhl + 1 > len(user_data):
        raise UdhError("UDHL %d but only %d octet(s) follow" % (udhl, len(user_data) - 1))
    header = user_data[1:udhl + 1]
    elements = []
    pos = 0
    while pos < len(header):
        if len(header) - pos < 2:
            raise UdhError("UDH ends inside an element header")
        iei, length = header[pos], header[pos + 1]
        pos += 2
        if length > len(header) - pos:
            raise UdhError("UDH element 0x%02X length %d overruns the header" % (iei, length))
        elements.append((iei, bytes(header[pos:pos + length])))
        pos += length
    return Udh(tuple(elements)), bytes(user_data[udhl + 1:])


@dataclass(frozen=True)
class UserMessage:
    """The user data of a submit_sm, deliver_sm or data_sm.

    @ivar payload: the text octets, UDH removed (concatenate the payloads of
        all parts in seqnum order before decoding, so that a character split
        across parts is not lost).
    @ivar concat: from the UDH, else from the sar_* TLVs, else None.
    """

    data_coding: int
    payload: bytes
    udh: Udh | None
    concat: Concat | None

    def text(self, *, default_alphabet: str = "gsm") -> str:
        """Decode the payload; see L{decode_short_message}."""
        return decode_short_message(self.data_coding, self.payload,
                                    default_alphabet=default_alphabet)


def user_message(pdu: Any) -> UserMessage:
    """Extract the user data of a message PDU.

    The octets are the message_payload TLV if present, else short_message;
    with UDHI (esm_class 0x40) they start with a UDH.

    @param pdu: an object with C{esm_class}, C{data_coding}, C{optional}, C{tlv()} and
        optionally C{short_message} (a submit_sm, deliver_sm or data_sm).
    @raise UdhError: if UDHI is set and the UDH is malformed.
    """
    data = pdu.tlv("message_payload")
    if data is None:
        data = getattr(pdu, "short_message", b"")
    udh = None
    if pdu.esm_class & ESM_CLASS_UDHI:
        udh, data = parse_udh(data)
    concat = udh.concat if udh is not None else None
    if concat is None and pdu.optional:
        concat = Concat.checked(pdu.tlv("sar_msg_ref_num"), pdu.tlv("sar_total_segments"),
                                pdu.tlv("sar_segment_seqnum"))
    return UserMessage(pdu.data_coding, data, udh, concat)


def _chunks(units: list[bytes], limit: int, unit_size: int) -> list[bytes]:
    """Group encoded characters so no group exceeds C{limit} code units."""
    parts: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for unit in units:
        size = len(unit) // unit_size
        if used + size > limit:
            parts.append(b"".join(current))
            current, used = [], 0
        current.append(unit)
        used += size
    parts.append(b"".join(current))
    return parts


def split_for_sms(text: str, ref: int) -> list[tuple[int, bytes, int]]:
    """Encode C{text} as one short_message, or as concatenated parts.

    GSM 7-bit when the whole text fits the alphabet (160 septets in one
    message, 153 per part), else UCS-2 (70 / 67 UTF-16 code units).  Parts
    carry the 8-bit-reference UDH C{05 00 03 ref total seq}; an escape
    sequence or a surrogate pair is never split between parts.

    @param ref: the concatenation reference, 0..255; use a new one per
        message to the same subscriber.
    @return: one C{(esm_class, short_message, data_coding)} per part, in
        order; esm_class is 0 for a single message, 0x40 (UDHI) for parts
        (OR in any messaging-mode bits).
    @raise ValueError: for C{ref} outside 0..255, or a text over 255 parts.
    """
    if not 0 <= ref <= 0xFF:
        raise ValueError("concatenation reference %r is not 0..255" % (ref,))
    try:
        whole = gsm0338.to_septets(text)
    except gsm0338.NotInAlphabet:
        whole = None
    if whole is not None:
        coding, unit_size, single, per_part = DC_DEFAULT, 1, GSM_SINGLE_SEPTETS, GSM_PART_SEPTETS
        if len(whole) <= single:
            return [(0, whole, coding)]
        units = [gsm0338.SEPTETS[char] for char in text]
    else:
        coding, unit_size, single, per_part = DC_UCS2, 2, UCS2_SINGLE_UNITS, UCS2_PART_UNITS
        whole = text.encode("utf-16-be")
        if len(whole) // unit_size <= single:
            return [(0, whole, coding)]
        units = [char.encode("utf-16-be") for char in text]
    parts = _chunks(units, per_part, unit_size)
    if len(parts) > 255:
        raise ValueError("text needs %d parts, at most 255 allowed" % (len(parts),))
    total = len(parts)
    return [(ESM_CLASS_UDHI, bytes((5, IEI_CONCAT_8, 3, ref, total, seq)) + part, coding)
            for seq, part in enumerate(parts, start=1)]
