"""Tests of the USSD string codec (3GPP TS 23.038 §5 DCS, §6.1.2 packing, §6.2 alphabet)."""

import random

import pytest

from protocols.common import gsm0338
from protocols.ussd import gsm7
from protocols.ussd.errors import MapError, UssdDecodeError, UssdEncodeError
from protocols.ussd.gsm7 import (Alphabet, decode_ussd, decode_ussd_with_language,
                                 encode_ussd, pack_septets, parse_dcs, unpack_septets)

# (text, packed hex) checked by hand: septets LSB first, TS 23.038 §6.1.2.1.1.
PACKED_VECTORS = [
    ("*100#", "aa180c3602"),
    ("*123#", "aa986c3602"),
    ("hellohello", "e8329bfd4697d9ec37"),        # the TS 23.038 / SMS classic
    ("1234567", "31d98c56b3dd1a"),               # 7 chars: CR fills the 7 spare bits
    ("12345678", "31d98c56b3dd70"),              # 8 chars: exact fit, no padding
    ("*123*4567#", "aa986ca6a2d56cb711"),
    ("€", "9b32"),                               # ESC 0x1B then 0x65
    ("{x}", "1b147e9302"),
]


@pytest.mark.parametrize("text, packed", PACKED_VECTORS)
def test_encode_vectors(text, packed):
    assert encode_ussd(text) == (gsm7.DCS_GSM7, bytes.fromhex(packed))


@pytest.mark.parametrize("text, packed", PACKED_VECTORS)
def test_decode_vectors(text, packed):
    assert decode_ussd(0x0F, bytes.fromhex(packed)) == text


def test_cr_padding_seven_characters_and_strip():
    dcs, octets = encode_ussd("ABCDEFG")
    assert len(octets) == 7
    assert unpack_septets(octets)[-1] == gsm7.CR
    assert decode_ussd(dcs, octets) == "ABCDEFG"


def test_zero_padded_seven_characters_keep_the_at_sign():
    # A sender that pads with 0 instead of CR: the receiver sees '@' (TS 23.038 warns).
    octets = pack_septets(gsm7.text_to_septets("ABCDEFG"))
    assert decode_ussd(0x0F, octets) == "ABCDEFG@"


def test_wanted_trailing_cr_on_octet_boundary_gets_a_second_cr():
    dcs, octets = encode_ussd("1234567\r")
    assert octets.hex() == "31d98c56b3dd1a0d"
    # The receiver performs CR twice, which TS 23.038 §6.1.1 defines as harmless.
    assert decode_ussd(dcs, octets) == "1234567\r\r"


def test_fifteen_characters_pad_with_cr():
    dcs, octets = encode_ussd("A" * 15)
    assert len(octets) == 14
    assert decode_ussd(dcs, octets) == "A" * 15


def test_extension_table_round_trip():
    text = "^{}\\[~]|€\f"
    dcs, octets = encode_ussd(text)
    assert dcs == gsm7.DCS_GSM7
    septets = 2 * len(text)
    assert len(unpack_septets(octets)) == septets + (1 if septets % 8 == 7 else 0)
    assert decode_ussd(dcs, octets) == text


def test_unknown_extension_code_shows_default_character():
    assert gsm7.septets_to_text([0x1B, 0x41]) == "A"
    assert gsm7.septets_to_text([0x41, 0x1B]) == "A "
    assert gsm7.septets_to_text([0x1B, 0x1B, 0x41]) == " A"


def test_non_gsm_text_goes_ucs2():
    dcs, octets = encode_ussd("Привет")
    assert dcs == 0x48
    assert octets == "Привет".encode("utf-16-be")
    assert decode_ussd(dcs, octets) == "Привет"


@pytest.mark.parametrize("dcs", [0x48, 0x08 | 0x40 | 0x10])
def test_ucs2_decode(dcs):
    assert decode_ussd(dcs, bytes.fromhex("0048006900200441")) == "Hi с"


def test_ucs2_preceded_by_language():
    octets = pack_septets(gsm7.text_to_septets("en")) + "Hi".encode("utf-16-be")
    assert octets[:2].hex() == "6537"
    assert decode_ussd_with_language(0x11, octets) == ("Hi", "en")


def test_gsm7_preceded_by_language():
    octets = gsm7.encode_gsm7_packed("fr\rBonjour")
    assert decode_ussd_with_language(0x10, octets) == ("Bonjour", "fr")
    with pytest.raises(UssdDecodeError):
        decode_ussd(0x10, gsm7.encode_gsm7_packed("Bonjour"))


@pytest.mark.parametrize("octets", [b"\x00", b"\x00A\x00", b"\xd8\x00\x00A"])
def test_bad_ucs2(octets):
    with pytest.raises(UssdDecodeError) as info:
        decode_ussd(0x48, octets)
    assert info.value.map_error == MapError.UNEXPECTED_DATA_VALUE


@pytest.mark.parametrize("dcs, alphabet, language", [
    (0x00, Alphabet.GSM7, "de"), (0x01, Alphabet.GSM7, "en"), (0x0F, Alphabet.GSM7, None),
    (0x10, Alphabet.GSM7, None), (0x11, Alphabet.UCS2, None),
    (0x20, Alphabet.GSM7, "cs"), (0x23, Alphabet.GSM7, "ru"), (0x25, Alphabet.GSM7, None),
    (0x3F, Alphabet.GSM7, None), (0x40, Alphabet.GSM7, None),
    (0x44, Alphabet.EIGHT_BIT, None), (0x48, Alphabet.UCS2, None),
    (0x51, Alphabet.GSM7, None), (0xF0, Alphabet.GSM7, None),
    (0xF4, Alphabet.EIGHT_BIT, None), (0xF7, Alphabet.EIGHT_BIT, None),
])
def test_parse_dcs(dcs, alphabet, language):
    coding = parse_dcs(dcs)
    assert (coding.alphabet, coding.language) == (alphabet, language)
    assert parse_dcs(bytes((dcs,))) == coding


def test_parse_dcs_details():
    assert parse_dcs(0x10).language_prefixed
    assert parse_dcs(0x51).message_class == 1
    assert parse_dcs(0x41).message_class is None
    assert parse_dcs(0xF2).message_class == 2


@pytest.mark.parametrize("dcs", [0x12, 0x1F, 0x4C, 0x60, 0x6C, 0x80, 0x90, 0x9F,
                                 0xA0, 0xC0, 0xD0, 0xE0, 0xF8, 0xFF])
def test_reserved_dcs_raise_unknown_alphabet(dcs):
    with pytest.raises(UssdDecodeError) as info:
        decode_ussd(dcs, b"\x41")
    assert info.value.map_error == MapError.UNKNOWN_ALPHABET
    assert "0x%02X" % dcs in str(info.value)


@pytest.mark.parametrize("bad", [b"", b"\x0f\x0f", 256, -1, "x"])
def test_dcs_not_an_octet(bad):
    with pytest.raises(UssdDecodeError):
        parse_dcs(bad)


def test_eight_bit_data_is_not_text():
    with pytest.raises(UssdDecodeError) as info:
        decode_ussd(0x44, b"\x01\x02")
    assert info.value.map_error == MapError.UNKNOWN_ALPHABET


def test_length_limits():
    assert len(encode_ussd("x" * 182)[1]) == 160
    assert len(encode_ussd("€" * 91)[1]) == 160
    assert len(encode_ussd("ж" * 80)[1]) == 160
    for text in ("x" * 183, "€" * 92, "ж" * 81):
        with pytest.raises(UssdEncodeError, match="more than 160"):
            encode_ussd(text)
    with pytest.raises(UssdEncodeError):
        encode_ussd("")
    with pytest.raises(UssdDecodeError):
        decode_ussd(0x0F, b"\x41" * 161)
    with pytest.raises(UssdDecodeError):
        decode_ussd(0x0F, b"")
    assert decode_ussd(0x0F, encode_ussd("x" * 182)[1]) == "x" * 182


def test_pack_rejects_non_septets():
    with pytest.raises(UssdEncodeError):
        pack_septets([0x80])


def _random_gsm_text(rng, length):
    pool = (gsm0338.DEFAULT_ALPHABET.replace("\x1b", "")
            + "".join(gsm0338.EXTENSION_TABLE.values()))
    return "".join(rng.choice(pool) for _ in range(length))


def test_round_trip_random_texts():
    rng = random.Random(23038)
    for length in list(range(1, 60)) + [90, 91, 150, 180, 181]:
        for _ in range(5):
            text = _random_gsm_text(rng, length)
            if len(gsm7.text_to_septets(text)) > gsm7.MAX_USSD_SEPTETS:
                continue
            dcs, octets = encode_ussd(text)
            septets = gsm7.text_to_septets(text)
            expected = text + "\r" if len(septets) % 8 == 0 and septets[-1] == gsm7.CR \
                else text
            assert decode_ussd(dcs, octets) == expected


def test_packing_agrees_with_pycrate():
    # pycrate also fills 7 spare bits with CR; it does not double a wanted final CR and
    # strips a final '@' as padding, so texts ending in CR or '@' are left out here.
    pycrate_23038 = pytest.importorskip("pycrate_mobile.TS23038")
    rng = random.Random(7)
    for length in range(1, 120):
        text = _random_gsm_text(rng, length).rstrip("\r@") or "x"
        septets = gsm7.text_to_septets(text)
        theirs, count = pycrate_23038.encode_7b(text)
        assert count == len(septets)
        assert gsm7.encode_gsm7_packed(text) == theirs
        assert decode_ussd(0x0F, theirs) == pycrate_23038.decode_7b(theirs) == text
