"""SMS text codec tests (3GPP TS 23.038 §6.2.1; TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import random

import pytest

from protocols.common.gsm0338 import DEFAULT_ALPHABET as GSM_BASIC
from protocols.common.gsm0338 import EXTENSION_TABLE as GSM_EXTENSION
from protocols.smpp.codec import DeliverSm, SubmitSm, decode_pdu, encode_pdu
from protocols.smpp.text import (
    Concat, Udh, UdhError, UnsupportedCoding,
    TextError, decode_gsm, decode_short_message, encode_gsm, encode_text,
    gsm_encodable, gsm_septets, parse_udh, split_for_sms, user_message)
from tests.unit.smpp_vectors import VECTORS

try:
    from smpplib import gsm as smpplib_gsm
except ImportError:
    smpplib_gsm = None


def by_name(name):
    return next(v for v in VECTORS if v.name == name)


# Hand-checked against the TS 23.038 §6.2.1 tables: (text, unpacked septets).
GSM_VECTORS = [
    ("@£$¥èéùìòÇ", "00010203040506070809"),
    ("Hello, World!", "48656c6c6f2c20576f726c6421"),
    ("\n\r", "0a0d"),
    ("ØøÅåÆæßÉ", "0b0c0e0f1c1d1e1f"),
    ("Δ_ΦΓΛΩΠΨΣΘΞ", "1011121314151617" "18191a"),
    ("¤¡Ä§¿äöñüà", "24405b5f607b7c7d7e7f"),
    ("{}[]~\\|^€\f", "1b281b291b3c1b3e1b3d1b2f1b401b141b651b0a"),
    ("RECHARGE 1234 5678", "5245434841524745203132333420353637" "38"),
]


@pytest.mark.parametrize("text, septets", GSM_VECTORS)
def test_gsm_vectors(text, septets):
    raw = bytes.fromhex(septets)
    assert encode_gsm(text) == raw
    assert decode_gsm(raw) == text
    assert gsm_encodable(text)
    assert gsm_septets(text) == len(raw)
    assert encode_text(text) == (0, raw)


def test_gsm_table_shape():
    assert len(GSM_BASIC) == 128 and len(set(GSM_BASIC)) == 128
    assert [hex(ord(c)) for c in GSM_BASIC[0x10:0x1B]] == [
        "0x394", "0x5f", "0x3a6", "0x393", "0x39b", "0x3a9",
        "0x3a0", "0x3a8", "0x3a3", "0x398", "0x39e"]
    assert len(GSM_EXTENSION) == 10


def test_every_gsm_character_round_trips():
    text = "".join(c for c in GSM_BASIC if c != "\x1b") + "".join(GSM_EXTENSION.values())
    assert decode_gsm(encode_gsm(text)) == text


def test_gsm_decoding_oddities():
    assert decode_gsm(b"\x1b\x41") == "A"        # unknown escape: default table char
    assert decode_gsm(b"a\x1b") == "a "          # lone trailing escape
    assert decode_gsm(b"\x1b\x1ba") == " a"      # escape to a further table
    assert decode_gsm(b"a\x80\x1b\xff") == "a\ufffd\ufffd"


@pytest.mark.parametrize("text", ["ç", "Привет", "`", "😀", "\x1b", "\t"])
def test_not_gsm(text):
    assert not gsm_encodable(text)
    with pytest.raises(TextError):
        encode_gsm(text)


def test_encode_text_falls_back_to_ucs2():
    assert encode_text("Привет") == (8, bytes.fromhex("041f04400438043204350442"))
    assert encode_text("a😀") == (8, bytes.fromhex("0061d83dde00"))
    assert encode_text("") == (0, b"")


@pytest.mark.parametrize("data_coding, raw, text", [
    (0x00, "48656c6c6f1b65", "Hello€"),
    (0x01, "48656c6c6f", "Hello"),
    (0x03, "636166e9", "café"),
    (0x08, "041f04400438043204350442", "Привет"),
    (0x08, "d83dde000021", "😀!"),
    (0x08, "0041d800", "A\ufffd"),       # lone high surrogate
    (0x08, "004100", "A\ufffd"),         # odd length
    (0x06, "bfe0d8d2d5e2", "Привет"),    # ISO-8859-5
    (0x11, "48690a", "Hi\n"),            # DCS general group, GSM, class 1
    (0x18, "0041", "A"),                 # DCS general group, UCS-2, class 0
    (0xC8, "41", "A"),                   # message waiting, GSM
    (0xE0, "0041", "A"),                 # message waiting, UCS-2
    (0xF1, "4142", "AB"),                # data coding/message class, GSM
])
def test_decode_short_message(data_coding, raw, text):
    assert decode_short_message(data_coding, bytes.fromhex(raw)) == text


@pytest.mark.parametrize("data_coding", [0x02, 0x04, 0x05, 0x09, 0x0A, 0x0D, 0x0E,
                                         0x14, 0x30, 0x80, 0xF4, 0xF6])
def test_unsupported_codings(data_coding):
    with pytest.raises(UnsupportedCoding) as info:
        decode_short_message(data_coding, b"\x00\x41")
    assert info.value.data_coding == data_coding


def test_default_alphabet_is_configurable():
    raw = bytes.fromhex("636166e9")
    assert decode_short_message(0, raw, default_alphabet="latin-1") == "café"
    assert decode_short_message(0, raw, default_alphabet="ascii") == "caf\ufffd"
    with pytest.raises(ValueError):
        decode_short_message(0, raw, default_alphabet="utf-8")


# -- UDH ---------------------------------------------------------------------

def test_parse_udh_8bit_concat():
    udh, rest = parse_udh(bytes.fromhex("0500032a0201") + b"hi")
    assert udh.concat == Concat(0x2A, 2, 1)
    assert rest == b"hi"
    assert udh.encode() == bytes.fromhex("0500032a0201")


def test_parse_udh_16bit_concat():
    udh, rest = parse_udh(bytes.fromhex("0608041234030248"))
    assert udh.concat == Concat(0x1234, 3, 2)
    assert rest == b"\x48"


def test_parse_udh_keeps_other_elements():
    data = bytes.fromhex("0b05040b8423f00003ab0201") + b"x"
    udh, rest = parse_udh(data)
    assert udh.elements == ((0x05, bytes.fromhex("0b8423f0")), (0x00, bytes.fromhex("ab0201")))
    assert udh.concat == Concat(0xAB, 2, 1)
    assert udh.encode() + rest == data


@pytest.mark.parametrize("element", ["0003ab0200", "0003ab0003", "0003ab0103", "0002ab02"])
def test_invalid_concat_element_is_ignored(element):
    udh, _ = parse_udh(bytes((len(element) // 2,)) + bytes.fromhex(element))
    assert udh.concat is None and len(udh.elements) == 1


@pytest.mark.parametrize("data", ["", "05000302", "0300050102", "0100"])
def test_malformed_udh(data):
    with pytest.raises(UdhError):
        parse_udh(bytes.fromhex(data))


def test_user_message_from_udh():
    message = user_message(decode_pdu(by_name("deliver_sm MO, UCS-2 part 1 of 2 with UDH").wire))
    assert message.concat == Concat(0x2A, 2, 1)
    assert message.text() == "Привет"
    assert message.udh is not None


def test_user_message_from_sar_and_payload():
    message = user_message(decode_pdu(
        by_name("data_sm USSD with SAR, payload and a vendor TLV").wire))
    assert message.concat == Concat(0x1234, 2, 1)
    assert message.udh is None
    assert message.text() == "*123#"


def test_user_message_plain_and_malformed():
    plain = user_message(DeliverSm(short_message=b"RECHARGE 1234"))
    assert plain.concat is None and plain.text() == "RECHARGE 1234"
    with pytest.raises(UdhError):
        user_message(DeliverSm(esm_class=0x40, short_message=b"\x09\x00"))


# -- splitting ---------------------------------------------------------------

def reassemble(parts):
    payloads = []
    for index, (esm_class, short_message, _) in enumerate(parts, start=1):
        assert esm_class == 0x40
        udh, rest = parse_udh(short_message)
        assert udh.concat == Concat(udh.concat.reference, len(parts), index)
        payloads.append(rest)
    coding = parts[0][2]
    assert all(p[2] == coding for p in parts)
    return decode_short_message(coding, b"".join(payloads))


def test_single_gsm_message_up_to_160_septets():
    assert split_for_sms("a" * 160, 1) == [(0, b"a" * 160, 0)]
    assert split_for_sms("€" * 80, 1) == [(0, b"\x1be" * 80, 0)]
    assert split_for_sms("", 1) == [(0, b"", 0)]


def test_gsm_split_153_per_part():
    parts = split_for_sms("a" * 161, 0x2A)
    assert [p[1] for p in parts] == [bytes.fromhex("0500032a0201") + b"a" * 153,
                                     bytes.fromhex("0500032a0202") + b"a" * 8]
    assert all(p[0] == 0x40 and p[2] == 0 for p in parts)


def test_gsm_split_never_breaks_an_escape():
    text = "a" * 152 + "€" + "b" * 10
    parts = split_for_sms(text, 3)
    assert parts[0][1][6:] == b"a" * 152
    assert parts[1][1][6:] == b"\x1be" + b"b" * 10
    assert reassemble(parts) == text


def test_single_ucs2_message_up_to_70_units():
    parts = split_for_sms("я" * 70, 1)
    assert parts == [(0, "я".encode("utf-16-be") * 70, 8)]


def test_ucs2_split_67_per_part():
    parts = split_for_sms("я" * 71, 9)
    assert [len(p[1]) for p in parts] == [6 + 134, 6 + 8]
    assert reassemble(parts) == "я" * 71


def test_ucs2_split_never_breaks_a_surrogate_pair():
    text = "я" * 66 + "😀" + "я" * 5
    parts = split_for_sms(text, 9)
    assert len(parts[0][1]) == 6 + 132
    assert parts[1][1][6:8] == b"\xd8\x3d"
    assert reassemble(parts) == text


def test_split_random_texts_reassemble_and_fit_submit_sm():
    rng = random.Random(5)
    alphabet = "abc €{}[]Привет😀 ä" + "".join(GSM_EXTENSION.values())
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 700)))
        parts = split_for_sms(text, rng.randrange(256))
        if len(parts) == 1:
            assert decode_short_message(parts[0][2], parts[0][1]) == text
        else:
            assert reassemble(parts) == text
        for esm_class, short_message, coding in parts:
            pdu = SubmitSm(esm_class=esm_class, data_coding=coding, short_message=short_message)
            assert decode_pdu(encode_pdu(pdu)) == pdu


def test_split_limits():
    with pytest.raises(ValueError):
        split_for_sms("x", 256)
    with pytest.raises(ValueError):
        split_for_sms("x", -1)
    with pytest.raises(ValueError):
        split_for_sms("a" * (153 * 255 + 1), 1)
    assert len(split_for_sms("a" * (153 * 255), 1)) == 255


def test_udh_class_is_frozen():
    with pytest.raises(AttributeError):
        Udh(()).elements = ()


# -- cross-check with smpplib 2.2.4 -------------------------------------------

@pytest.mark.skipif(smpplib_gsm is None, reason="smpplib not installed")
def test_gsm_encoding_matches_smpplib():
    # smpplib's table has '`' where TS 23.038 puts '§' (0x5F) and lacks the
    # form feed escape; everything else must agree.
    chars = [c for c in GSM_BASIC if c not in "\x1b§"]
    chars += [c for c in GSM_EXTENSION.values() if c != "\f"]
    for char in chars:
        assert smpplib_gsm.gsm_encode(char) == encode_gsm(char), char
    assert smpplib_gsm.gsm_encode("`") == b"\x5f"
    assert encode_gsm("§") == b"\x5f"
