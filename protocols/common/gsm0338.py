"""The GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1, §6.2.1.1).

Text <-> unpacked septet codes (one int 0..127 a septet); how septets are
carried (SMPP: one per octet; USSD: packed with CR padding) is the
channel's business.
"""
from __future__ import annotations

import codecs
from typing import Sequence

#: The escape code that reaches the extension table (§6.2.1.1).
ESCAPE = 0x1B

#: §6.2.1: the default alphabet, indexed by septet value 0x00..0x7F.
DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: §6.2.1.1: code after ESCAPE -> character.
EXTENSION_TABLE = {
    0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\",
    0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€",
}

#: character -> its septets: one default-alphabet code, or ESCAPE and an extension code.
SEPTETS: dict[str, bytes] = {
    char: bytes((code,)) for code, char in enumerate(DEFAULT_ALPHABET) if code != ESCAPE}
SEPTETS.update({char: bytes((ESCAPE, code)) for code, char in EXTENSION_TABLE.items()})


class NotInAlphabet(ValueError):
    """A character with no GSM 7-bit code.

    @ivar char: the character.
    """

    def __init__(self, char: str) -> None:
        super().__init__("%r is not in the GSM 7-bit alphabet" % (char,))
        self.char = char


_CHARS = frozenset(SEPTETS)
# charmap codec tables (C speed): character -> its septets, and octet -> character
# for input without escapes (octets above 0x7F are not septets: U+FFFD)
_ENCODE_MAP = {ord(char): codes for char, codes in SEPTETS.items()}
_DECODE_TABLE = DEFAULT_ALPHABET + "\ufffd" * 128


def encodable(text: str) -> bool:
    """True when every character of C{text} is in the default alphabet or the extension table."""
    return _CHARS.issuperset(text)


def to_septets(text: str) -> bytes:
    """The unpacked septet codes of C{text}, one per octet (extension characters take two).

    @raise NotInAlphabet: naming the first character that has no code.
    """
    try:
        return codecs.charmap_encode(text, "strict", _ENCODE_MAP)[0]
    except UnicodeEncodeError as e:
        raise NotInAlphabet(text[e.start]) from None


def from_septets(codes: Sequence[int]) -> str:
    """The text of unpacked septet codes (C{bytes} or a list of ints).  Never raises.

    An escape followed by a code the extension table lacks gives the
    default-alphabet character of that code; an escape at the end, or
    followed by another escape, gives a space (§6.2.1.1).  A value above
    0x7F (not a septet) gives U+FFFD.
    """
    if isinstance(codes, (bytes, bytearray)) and ESCAPE not in codes:
        return codecs.charmap_decode(codes, "strict", _DECODE_TABLE)[0]
    out = []
    i, n = 0, len(codes)
    while i < n:
        code = codes[i]
        i += 1
        if code > 0x7F:
            out.append("\ufffd")
        elif code != ESCAPE:
            out.append(DEFAULT_ALPHABET[code])
        elif i >= n or codes[i] == ESCAPE:
            out.append(" ")
            i += 1
        else:
            nxt = codes[i]
            i += 1
            out.append("\ufffd" if nxt > 0x7F else EXTENSION_TABLE.get(nxt, DEFAULT_ALPHABET[nxt]))
    return "".join(out)
