"""Tests for Diameter stream framing and hostile input (RFC 6733 §3, §7.1).

Broken streams raise DiameterFramingError; malformed messages raise
DiameterDecodeError with the Result-Code and header needed to answer; a
seeded mutation fuzz loop checks that nothing else ever escapes.
"""
import datetime
import decimal
import random
import struct

import pytest

from billing.diameter.message import (
    CreditRequest, CreditSettings, DecodedMessage, DiameterDecodeError,
    DiameterFramingError, LocalIdentity, ValidityAvp, build_cca, build_ccr,
    build_cer, build_dpr, build_dwr, build_error_answer, credit_outcome,
    decode_message, parse_capabilities, read_credit_request, read_header,
    split_frame, split_frames)

LOCAL = LocalIdentity("ivoms.example.net", "example.net", ("192.0.2.10",),
                      origin_state_id=7)
OCS = LocalIdentity("ocs.example.net", "example.net", ("192.0.2.1",))
VALIDITY = (ValidityAvp(10415, 9001, "Time"),)
CCR = build_ccr(LOCAL, CreditSettings("ocs.example.net", "svc",
                                      validity_avps=VALIDITY),
                CreditRequest("tx-1", "46700000001", decimal.Decimal("5"), 752,
                              datetime.datetime(2025, 1, 1,
                                                tzinfo=datetime.timezone.utc),
                              validity_days=7),
                hop_by_hop=0x11, end_to_end=0x22)
CER = build_cer(LOCAL, hop_by_hop=1, end_to_end=2)
DWR = build_dwr(LOCAL)
CCA = build_cca(decode_message(CCR), OCS, 2001, experimental=(10415, 2001))


def with_length(data, length):
    return data[:1] + length.to_bytes(3, "big") + data[4:]


# --- framing -----------------------------------------------------------------

def test_split_frames_cuts_messages_and_keeps_remainder():
    stream = CER + DWR + CCR[:30]
    frames, rest = split_frames(stream)
    assert frames == [CER, DWR] and rest == CCR[:30]
    frames, rest = split_frames(rest + CCR[30:])
    assert frames == [CCR] and rest == b""


def test_split_frame_byte_by_byte():
    buf, got = b"", []
    for byte in CER + DWR:
        buf += bytes([byte])
        frames, buf = split_frames(buf)
        got += frames
    assert got == [CER, DWR] and buf == b""


def test_split_frame_waits_for_header_and_body():
    assert split_frame(b"") == (None, b"")
    assert split_frame(b"\x01\x00") == (None, b"\x01\x00")
    assert split_frame(CER[:-1]) == (None, CER[:-1])


@pytest.mark.parametrize("buffer, code", [
    (b"\x02", 5011),
    (b"\x00\x00\x00\x14", 5011),
    (b"\x01\x00\x00\x13", 5015),
    (b"\x01\x00\x00\x00", 5015),
    (b"\x01\xff\xff\xff", 5015),
])
def test_broken_stream_raises_framing_error(buffer, code):
    with pytest.raises(DiameterFramingError) as info:
        split_frames(CER + buffer + b"\0" * 40)
    assert info.value.result_code == code
    assert not info.value.connection_survives
    assert isinstance(info.value, DiameterDecodeError)


def test_max_length_is_configurable():
    with pytest.raises(DiameterFramingError):
        split_frame(CCR, max_length=len(CCR) - 4)
    assert split_frame(CCR, max_length=len(CCR))[0] == CCR


# --- malformed messages ------------------------------------------------------

@pytest.mark.parametrize("data, code, has_header", [
    (b"", 5015, False),
    (CER[:19], 5015, False),
    (CER[:-4], 5015, True),                          # length field > data
    (CER + b"\0\0\0\0", 5015, True),                 # length field < data
    (b"\x02" + CER[1:], 5011, True),                 # wrong version
    (with_length(CER + b"\0\0", len(CER) + 2), 5015, True),  # not 4-aligned
    (CER[:4] + b"\xa0" + CER[5:], 3008, True),       # E on a request
    (CER[:4] + b"\xc0" + CER[5:], 3008, True),       # P on a CER
    (CCR[:4] + b"\x80" + CCR[5:], 3008, True),       # no P on a CCR
])
def test_malformed_header(data, code, has_header):
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(data)
    assert info.value.result_code == code
    assert (info.value.header is not None) == has_header


def corrupt_avp_length(data, index, length):
    """Set the AVP Length of the index-th top-level AVP."""
    pos = 20
    for _ in range(index):
        pos += (int.from_bytes(data[pos + 5:pos + 8], "big") + 3) & ~3
    return data[:pos + 5] + length.to_bytes(3, "big") + data[pos + 8:]


@pytest.mark.parametrize("index, length", [
    (1, 0), (1, 7), (1, 0xFFFFFF), (1, 400), (0, 2000),
])
def test_garbage_avp_lengths(index, length):
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(corrupt_avp_length(CCR, index, length))
    err = info.value
    assert err.result_code == 5014
    assert err.header.hop_by_hop == 0x11 and err.header.command_code == 272
    assert err.failed_avp is not None and len(err.failed_avp) >= 4


def test_vendor_flag_with_too_short_avp():
    avp = struct.pack(">II", 9999, 0x80 << 24 | 8)  # V set, no Vendor-ID
    msg = CER + avp
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(with_length(msg, len(msg)))
    assert info.value.result_code == 5014


def test_stray_bytes_after_last_avp():
    msg = CER + b"\0\0\0\1"
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(with_length(msg, len(msg)))
    assert info.value.result_code == 5014


def test_bad_values_fail_lazily_with_5004_or_5014():
    bad_utf8 = struct.pack(">II", 263, 0x40 << 24 | 10) + b"\xff\xfe\0\0"
    msg = decode_message(with_length(CER + bad_utf8, len(CER) + 12))
    with pytest.raises(DiameterDecodeError) as info:
        msg.session_id
    assert info.value.result_code == 5004 and info.value.header is not None
    short_u32 = struct.pack(">II", 268, 0x40 << 24 | 10) + b"\0\1\0\0"
    msg = decode_message(with_length(CER + short_u32, len(CER) + 12))
    with pytest.raises(DiameterDecodeError) as info:
        msg.result_code
    assert info.value.result_code == 5014


def test_broken_grouped_avp_inside_cca_is_unknown_outcome():
    cca = bytearray(CCA)
    pos = CCA.index(struct.pack(">I", 297))  # Experimental-Result
    cca[pos + 13:pos + 16] = (3).to_bytes(3, "big")  # inner Vendor-Id length 3
    msg = decode_message(bytes(cca))
    with pytest.raises(DiameterDecodeError):
        msg.experimental_result
    outcome = credit_outcome(msg)
    assert outcome.is_unknown and "malformed" in outcome.reason


# --- answering what failed ---------------------------------------------------

def test_error_answer_for_bad_header_bits():
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(CER[:4] + b"\xa0" + CER[5:])
    answer = decode_message(build_error_answer(info.value, OCS))
    h = answer.header
    assert (h.flags, h.command_code, h.hop_by_hop, h.end_to_end) == \
        (0x20, 257, 1, 2)
    assert answer.result_code == 3008 and answer.error_message


def test_error_answer_for_bad_avp_length_keeps_session_and_failed_avp():
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(corrupt_avp_length(CCR, 3, 5))
    err = info.value
    assert err.session_id == decode_message(CCR).session_id
    answer = decode_message(build_error_answer(err, OCS))
    assert answer.header.flags == 0x40  # P copied; 5xxx is not an E answer
    assert (answer.header.application_id, answer.session_id,
            answer.result_code) == (4, err.session_id, 5014)
    failed = answer.find(279)
    assert failed is not None and bytes(failed.payload).startswith(
        struct.pack(">I", 283))


def test_no_answer_to_answers_or_unreadable_headers():
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(corrupt_avp_length(CCA, 1, 3))
    assert build_error_answer(info.value, OCS) is None
    with pytest.raises(DiameterDecodeError) as info:
        decode_message(b"\x01\x00")
    assert build_error_answer(info.value, OCS) is None


# --- fuzz --------------------------------------------------------------------

def exercise(msg: DecodedMessage):
    """Touch every reader the connector and simulator use."""
    for attr in ("session_id", "origin_host", "origin_realm", "result_code",
                 "error_message", "experimental_result"):
        try:
            getattr(msg, attr)
        except DiameterDecodeError:
            pass
    credit_outcome(msg, "x")  # must never raise
    for reader in (parse_capabilities,
                   lambda m: read_credit_request(m, VALIDITY),
                   lambda m: m.find_path(437, 413, 445, 447)):
        try:
            reader(msg)
        except DiameterDecodeError:
            pass
    msg.to_python_diameter()
    repr(msg)


def mutate(rng, data):
    data = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:
        del data[rng.randrange(len(data)):]
    elif kind == 3:
        i = rng.randrange(len(data))
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif kind == 4:  # garbage AVP length somewhere past the header
        i = rng.randrange(20, len(data) - 3)
        data[i:i + 3] = rng.randrange(1 << 24).to_bytes(3, "big")
    else:  # keep the Message Length consistent so AVP parsing is reached
        i = rng.randrange(20, len(data))
        data[i] = rng.randrange(256)
        data[1:4] = len(data).to_bytes(3, "big")
    return bytes(data)


@pytest.mark.parametrize("seed", range(4))
def test_mutation_fuzz_only_our_errors_escape(seed):
    rng = random.Random(seed)
    decoded = failed = 0
    for _ in range(1500):
        data = mutate(rng, rng.choice([CER, CCR, CCA, build_dpr(LOCAL)]))
        try:
            msg = decode_message(data)
        except DiameterDecodeError as err:
            failed += 1
            assert err.result_code in {3008, 5004, 5011, 5014, 5015}
            answer = build_error_answer(err, OCS)
            if answer is not None:
                assert decode_message(answer).result_code == err.result_code
        else:
            decoded += 1
            exercise(msg)
        try:
            split_frames(data + CER, max_length=4096)
        except DiameterFramingError:
            pass
    assert decoded and failed  # both paths were really exercised


def test_every_truncation_of_every_message():
    for data in (CER, CCR, CCA):
        for cut in range(len(data)):
            with pytest.raises(DiameterDecodeError):
                decode_message(data[:cut])
            assert split_frame(data[:cut])[0] is None


def test_read_header_needs_twenty_bytes():
    with pytest.raises(ValueError):
        read_header(CER[:19])
    assert read_header(CER).length == len(CER)
