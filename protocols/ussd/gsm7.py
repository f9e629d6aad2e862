"""USSD string codec: Data Coding Scheme, GSM 7-bit and UCS-2 (3GPP TS 23.038 §5, §6).

Pure functions, bytes in and objects out. L{decode_ussd} turns a MAP
C{ussd-DataCodingScheme} and C{ussd-String} into text; L{encode_ussd} does the
reverse, choosing the GSM 7-bit default alphabet when every character fits and UCS-2
otherwise. The USSD carriage-return padding rule of TS 23.038 §6.1.2.3.1 is applied on
both sides.
"""

import functools
from dataclasses import dataclass
from enum import Enum

from protocols.common import gsm0338
from protocols.ussd.errors import MapError, UssdDecodeError, UssdEncodeError

#: Largest USSD-String in octets (3GPP TS 29.002 maxUSSD-StringLength).
MAX_USSD_OCTETS = 160
#: Largest number of GSM 7-bit septets that fit in L{MAX_USSD_OCTETS}.
MAX_USSD_SEPTETS = MAX_USSD_OCTETS * 8 // 7

#: DCS used by L{encode_ussd}: language unspecified, GSM 7-bit (TS 23.038 §5).
DCS_GSM7 = 0x0F
#: DCS used by L{encode_ussd} for UCS-2: general coding, uncompressed, no class.
DCS_UCS2 = 0x48

CR = 0x0D

# TS 23.038 §5, coding group 0000 (languages using the GSM 7-bit default alphabet).
_GROUP0_LANGUAGES = ("de", "en", "it", "fr", "es", "nl", "sv", "da",
                     "pt", "fi", "no", "el", "tr", "hu", "pl", None)
# Coding group 0010, values 0000..0100; the rest of 0010 and all of 0011 are reserved
# languages that still use the default alphabet.
_GROUP2_LANGUAGES = ("cs", "he", "ar", "ru", "is")


class Alphabet(Enum):
    """Character set a Data Coding Scheme selects (TS 23.038 §5)."""

    GSM7 = "gsm7"
    EIGHT_BIT = "8bit"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class DataCoding:
    """What a USSD Data Coding Scheme octet means.

    C{language} is the ISO 639 code the DCS names, C{None} when unspecified;
    C{language_prefixed} is true when the string itself starts with the language
    (DCS 0x10 and 0x11); C{message_class} is 0..3 or C{None}.
    """

    dcs: int
    alphabet: Alphabet
    language: str | None = None
    language_prefixed: bool = False
    compressed: bool = False
    message_class: int | None = None


def _unsupported(dcs, why):
    return UssdDecodeError("data coding scheme 0x%02X %s" % (dcs, why),
                           map_error=MapError.UNKNOWN_ALPHABET)


def parse_dcs(dcs):
    """Interpret a CBS/USSD Data Coding Scheme octet (TS 23.038 §5).

    @param dcs: the DCS as an int 0..255, or a one-octet C{bytes}.
    @return: a L{DataCoding}.
    @raise UssdDecodeError: (C{map_error=unknownAlphabet}) for a reserved or
        unsupported coding group, a reserved alphabet, or a DCS that is not one octet.
    """
    if type(dcs) is int:
        known = _PARSED_DCS.get(dcs)
        if known is not None:
            return known
    coding = _parse_dcs(dcs)
    if type(dcs) is int:
        _PARSED_DCS[dcs] = coding       # at most 256 entries, each a frozen value
    return coding


#: DCS octet -> its L{DataCoding}, filled as octets are met
_PARSED_DCS: dict = {}


def _parse_dcs(dcs):
    if isinstance(dcs, (bytes, bytearray)):
        if len(dcs) != 1:
            raise UssdDecodeError("data coding scheme must be one octet, got %d"
                                  % len(dcs), map_error=MapError.UNEXPECTED_DATA_VALUE)
        dcs = dcs[0]
    if not isinstance(dcs, int) or not 0 <= dcs <= 0xFF:
        raise UssdDecodeError("data coding scheme %r is not an octet" % (dcs,),
                              map_error=MapError.UNEXPECTED_DATA_VALUE)
    group, low = dcs >> 4, dcs & 0x0F
    if group == 0x0:
        return DataCoding(dcs, Alphabet.GSM7, language=_GROUP0_LANGUAGES[low])
    if group == 0x1:
        if low == 0x0:
            return DataCoding(dcs, Alphabet.GSM7, language_prefixed=True)
        if low == 0x1:
            return DataCoding(dcs, Alphabet.UCS2, language_prefixed=True)
        raise _unsupported(dcs, "is reserved (coding group 0001)")
    if group in (0x2, 0x3):
        language = _GROUP2_LANGUAGES[low] if group == 0x2 and low < 5 else None
        return DataCoding(dcs, Alphabet.GSM7, language=language)
    if group & 0xC == 0x4:  # 01xx general data coding indication
        compressed = bool(dcs & 0x20)
        message_class = dcs & 0x03 if dcs & 0x10 else None
        charset = (dcs >> 2) & 0x03
        if charset == 0x3:
            raise _unsupported(dcs, "names a reserved alphabet")
        if compressed:
            raise _unsupported(dcs, "announces compressed text, which is not supported")
        alphabet = (Alphabet.GSM7, Alphabet.EIGHT_BIT, Alphabet.UCS2)[charset]
        return DataCoding(dcs, alphabet, message_class=message_class)
    if group == 0xF:
        if dcs & 0x08:
            raise _unsupported(dcs, "sets the reserved bit of coding group 1111")
        alphabet = Alphabet.EIGHT_BIT if dcs & 0x04 else Alphabet.GSM7
        return DataCoding(dcs, alphabet, message_class=dcs & 0x03)
    raise _unsupported(dcs, "is in a reserved or unsupported coding group")


def pack_septets(septets):
    """Pack 7-bit values into octets, least significant bit first (TS 23.038 §6.1.2.1.1).

    No USSD padding is added here; see L{encode_gsm7_packed}.

    @param septets: iterable of ints 0..127.
    @return: the packed C{bytes}.
    @raise UssdEncodeError: if a value does not fit in seven bits.
    """
    septets = list(septets)
    if septets and not (0 <= min(septets) and max(septets) <= 0x7F):
        bad = next(s for s in septets if not 0 <= s <= 0x7F)
        raise UssdEncodeError("septet value %r out of range" % (bad,))
    acc = 0
    for septet in reversed(septets):
        acc = (acc << 7) | septet
    return acc.to_bytes((7 * len(septets) + 7) // 8, "little")


def unpack_septets(octets):
    """Unpack every whole septet held in C{octets} (the inverse of L{pack_septets}).

    @return: list of ints 0..127; C{len(octets) * 8 // 7} of them.
    """
    acc = int.from_bytes(octets, "little")
    return [(acc >> shift) & 0x7F for shift in range(0, len(octets) * 8 // 7 * 7, 7)]


def text_to_septets(text):
    """Map text to a list of GSM 7-bit default alphabet codes, using ESC for the
    extension table (L{protocols.common.gsm0338}).

    @raise UssdEncodeError: naming the first character that has no GSM 7-bit code.
    """
    try:
        return list(gsm0338.to_septets(text))
    except gsm0338.NotInAlphabet as e:
        raise UssdEncodeError("character U+%04X is not in the GSM 7-bit alphabet"
                              % ord(e.char)) from None


def septets_to_text(septets):
    """Map GSM 7-bit codes to text (TS 23.038 §6.2.1).

    An escape followed by a code missing from the extension table shows the default
    alphabet character for that code; an escape with nothing after it, or followed by
    another escape, shows as a space (TS 23.038 §6.2.1.1); see
    L{protocols.common.gsm0338.from_septets}.
    """
    return gsm0338.from_septets(septets)


def is_gsm7(text):
    """Return C{True} when every character of C{text} has a GSM 7-bit code."""
    return gsm0338.encodable(text)


def encode_gsm7_packed(text):
    """Encode C{text} as packed GSM 7-bit with USSD CR padding (TS 23.038 §6.1.2.3.1).

    When 7 spare bits would remain in the last octet a CR fills them; when the text
    ends with a CR exactly on an octet boundary one more CR is added so that the
    receiver's stripping of a padding CR leaves the wanted one.

    @raise UssdEncodeError: for a character outside the GSM 7-bit alphabet.
    """
    septets = text_to_septets(text)
    if len(septets) % 8 == 7:
        septets.append(CR)
    elif septets and len(septets) % 8 == 0 and septets[-1] == CR:
        septets.append(CR)
    return pack_septets(septets)


def decode_gsm7_packed(octets):
    """Decode packed GSM 7-bit USSD octets, dropping a CR that is padding.

    The last septet is removed when the string ends on an octet boundary (its length
    is a multiple of 7 octets) and that septet is a CR (TS 23.038 §6.1.2.3.1).
    """
    septets = unpack_septets(octets)
    if octets and len(octets) % 7 == 0 and septets[-1] == CR:
        septets.pop()
    return septets_to_text(septets)


def _decode_ucs2(octets):
    if len(octets) % 2:
        raise UssdDecodeError("UCS-2 string has an odd number of octets (%d)"
                              % len(octets), map_error=MapError.UNEXPECTED_DATA_VALUE)
    try:
        return octets.decode("utf-16-be")
    except UnicodeDecodeError:
        raise UssdDecodeError("UCS-2 string holds an unpaired surrogate",
                              map_error=MapError.UNEXPECTED_DATA_VALUE) from None


def decode_ussd_with_language(dcs, octets):
    """Decode a USSD string and report the language it announces.

    @param dcs: Data Coding Scheme (int or one-octet C{bytes}).
    @param octets: the C{ussd-String} contents.
    @return: C{(text, language)}; C{language} is an ISO 639 code or C{None}. For DCS
        0x10 and 0x11 the language prefix is removed from C{text}.
    @raise UssdDecodeError: with C{map_error=unknownAlphabet} for a reserved or
        unsupported DCS or 8-bit data; with C{map_error=unexpectedDataValue} for an
        empty or oversize (> 160 octets) string, bad UCS-2 or a missing language prefix.
    """
    coding = parse_dcs(dcs)
    octets = bytes(octets)
    if not 1 <= len(octets) <= MAX_USSD_OCTETS:
        raise UssdDecodeError("USSD string of %d octets is outside 1..%d"
                              % (len(octets), MAX_USSD_OCTETS),
                              map_error=MapError.UNEXPECTED_DATA_VALUE)
    if coding.alphabet is Alphabet.EIGHT_BIT:
        raise _unsupported(coding.dcs, "carries 8-bit data, not text")
    if coding.alphabet is Alphabet.GSM7:
        text = decode_gsm7_packed(octets)
        if not coding.language_prefixed:
            return text, coding.language
        # DCS 0x10: two language characters and a CR precede the text.
        if len(text) < 3 or text[2] != "\r":
            raise UssdDecodeError("DCS 0x10 string lacks its language prefix",
                                  map_error=MapError.UNEXPECTED_DATA_VALUE)
        return text[3:], text[:2]
    if not coding.language_prefixed:
        return _decode_ucs2(octets), coding.language
    # DCS 0x11: two GSM 7-bit language characters packed in two octets, then UCS-2.
    if len(octets) < 2:
        raise UssdDecodeError("DCS 0x11 string lacks its language prefix",
                              map_error=MapError.UNEXPECTED_DATA_VALUE)
    language = septets_to_text(unpack_septets(octets[:2])[:2])
    return _decode_ucs2(octets[2:]), language


def decode_ussd(dcs, octets):
    """Decode a USSD string to text (see L{decode_ussd_with_language}).

    @raise UssdDecodeError: as L{decode_ussd_with_language}.
    """
    return decode_ussd_with_language(dcs, octets)[0]


def encode_ussd(text, max_octets=MAX_USSD_OCTETS):
    """Encode text for a USSD string: GSM 7-bit when it fits the alphabet, else UCS-2.

    @param text: the text to send.
    @param max_octets: size limit of the encoded string (default 160).
    @return: C{(dcs, octets)} with C{dcs} L{DCS_GSM7} or L{DCS_UCS2}.
    @raise UssdEncodeError: if C{text} is empty or encodes to more than
        C{max_octets} octets (182 GSM 7-bit septets or 80 UCS-2 characters at 160).
    """
    if not isinstance(text, str) or not text:
        raise UssdEncodeError("USSD text must be a non-empty str")
    return _encode_ussd(str(text), max_octets)


@functools.lru_cache(maxsize=64)
def _encode_ussd(text, max_octets):
    """L{encode_ussd} of a non-empty C{str}; remembered for the last few texts,
    since an answer's text is measured (L{protocols.ussd.replies.fits}) and then
    encoded."""
    if is_gsm7(text):
        dcs, octets = DCS_GSM7, encode_gsm7_packed(text)
    else:
        dcs, octets = DCS_UCS2, text.encode("utf-16-be")
    if len(octets) > max_octets:
        raise UssdEncodeError("USSD text encodes to %d octets, more than %d"
                              % (len(octets), max_octets))
    return dcs, octets
