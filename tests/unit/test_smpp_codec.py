"""SMPP PDU codec tests (SMPP v3.4 issue 1.2 §3.2, §4, §5): vectors, bad input, smpplib."""

from __future__ import annotations

import dataclasses
import random
import struct

import pytest

from protocols.smpp import errors
from protocols.smpp.codec import (
    DEFAULT_MAX_PDU_LENGTH, BindReceiverResp,
    BindTransceiverResp, BindTransmitter, DataSm,
    DataSmResp, DecodeError, DeliverSm, DeliverSmResp, EncodeError,
    EnquireLink, EnquireLinkResp, GenericNack, Outbind, SubmitSm, SubmitSmResp,
    Tlv, Unbind, UnbindResp, decode_header, decode_pdu, encode_pdu,
    error_response, make_response, split_frames, tlvs)
from protocols.smpp.errors import (
    ESME_RINVCMDID, ESME_RINVCMDLEN, ESME_RINVDSTADR, ESME_RINVEXPIRY,
    ESME_RINVMSGLEN, ESME_RINVOPTPARSTREAM, ESME_RINVPARLEN, ESME_RINVPASWD,
    ESME_RINVSCHED, ESME_RINVSERTYP, ESME_RINVSRCADR, ESME_RINVSYSID,
    ESME_RINVSYSTYP, ESME_RTHROTTLED)
from protocols.smpp.pdus import PDU_CLASSES, QUERY_SM
from protocols.smpp.tlv import SPECS_BY_TAG, C_STRING
from tests.unit.smpp_vectors import VECTORS

try:
    from smpplib import smpp
except ImportError:  # the cross-check needs smpplib==2.2.4 (a test dependency)
    smpp = None
needs_smpplib = pytest.mark.skipif(smpp is None, reason="smpplib not installed")


def by_name(name):
    return next(v for v in VECTORS if v.name == name)


def header(length, command_id, status=0, sequence=1):
    return struct.pack(">IIII", length, command_id, status, sequence)


def frame(command_id, body, status=0, sequence=1):
    return header(16 + len(body), command_id, status, sequence) + body


def raises_decode(data, status, *, fatal=False):
    with pytest.raises(DecodeError) as info:
        decode_pdu(data)
    assert info.value.status == status, info.value
    assert info.value.fatal is fatal
    return info.value


# -- vectors -----------------------------------------------------------------

@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector_round_trip(vector):
    assert int.from_bytes(vector.wire[:4], "big") == len(vector.wire)
    assert decode_pdu(vector.wire) == vector.pdu
    assert encode_pdu(vector.pdu) == vector.wire


def test_every_supported_command_has_a_vector():
    assert {type(v.pdu) for v in VECTORS} == set(PDU_CLASSES.values())


def test_decoded_fields_are_typed():
    pdu = decode_pdu(by_name("deliver_sm delivery receipt").wire)
    assert pdu.source_addr == "2348030000001"
    assert pdu.tlv("receipted_message_id") == "a1b2c3"
    assert pdu.tlv("message_state") == 2
    assert pdu.tlv(0x0423) == b"\x03\x00\x00"
    assert pdu.tlv("user_message_reference") is None
    assert pdu.command_name == "deliver_sm" and not pdu.is_response


def test_unknown_tlv_is_kept_raw_and_reencoded():
    pdu = decode_pdu(by_name("data_sm USSD with SAR, payload and a vendor TLV").wire)
    assert pdu.optional[-1] == Tlv(0x1400, b"\x01\x02\x03")
    assert pdu.optional[-1].name is None
    assert pdu.tlv("dest_port") is None
    assert pdu.tlv("its_session_info") == b"\x01\x00"


def test_header_decode():
    h = decode_header(by_name("submit_sm_resp").wire)
    assert (h.command_length, h.command_id, h.command_status, h.sequence_number) == (
        23, 0x80000004, 0, 0x73)


# -- framing -----------------------------------------------------------------

def test_split_frames_any_chunking():
    stream = b"".join(v.wire for v in VECTORS)
    rng = random.Random(7)
    for _ in range(50):
        buffer, got = b"", []
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 40)
            buffer += stream[pos:pos + step]
            pos += step
            frames, buffer = split_frames(buffer)
            got.extend(frames)
        assert buffer == b""
        assert got == [v.wire for v in VECTORS]


def test_split_frames_keeps_partial_tail():
    wire = by_name("enquire_link").wire
    assert split_frames(wire + wire[:3]) == ([wire], wire[:3])
    assert split_frames(wire[:15]) == ([], wire[:15])
    assert split_frames(b"") == ([], b"")


def test_split_frames_command_length_below_16_is_fatal():
    with pytest.raises(DecodeError) as info:
        split_frames(header(15, 0x15, sequence=4))
    assert info.value.status == ESME_RINVCMDLEN and info.value.fatal
    assert info.value.command_id == 0x15 and info.value.sequence_number == 4
    with pytest.raises(DecodeError) as info:
        split_frames(b"\x00\x00\x00\x00")
    assert info.value.fatal and info.value.command_id is None


def test_split_frames_command_length_over_max_is_fatal():
    with pytest.raises(DecodeError) as info:
        split_frames(header(DEFAULT_MAX_PDU_LENGTH + 1, 0x04, sequence=8))
    assert info.value.status == ESME_RINVCMDLEN and info.value.fatal
    assert info.value.sequence_number == 8
    with pytest.raises(DecodeError):
        split_frames(header(300, 0x04), max_length=200)


def test_split_frames_returns_good_frames_before_a_bad_one():
    good = by_name("enquire_link").wire
    bad = header(3, 0x15)
    frames, rest = split_frames(good + bad)
    assert frames == [good] and rest == bad
    with pytest.raises(DecodeError):
        split_frames(rest)


# -- malformed input ---------------------------------------------------------

def test_truncated_header():
    err = raises_decode(by_name("enquire_link").wire[:10], ESME_RINVCMDLEN, fatal=True)
    assert err.command_id == 0x15 and err.sequence_number is None
    assert error_response(err) is None


def test_command_length_not_frame_size():
    wire = by_name("enquire_link").wire
    raises_decode(wire + b"\x00", ESME_RINVCMDLEN, fatal=True)
    raises_decode(header(12, 0x15), ESME_RINVCMDLEN, fatal=True)


def test_unknown_command_id_is_nacked_and_survivable():
    err = raises_decode(frame(0x00000099, b"abc", sequence=77), ESME_RINVCMDID)
    assert (err.command_id, err.sequence_number) == (0x99, 77)
    assert error_response(err) == GenericNack(sequence_number=77, command_status=ESME_RINVCMDID)
    assert encode_pdu(error_response(err)) == header(16, 0x80000000, ESME_RINVCMDID, 77)


def test_unsupported_known_command_is_rinvcmdid():
    err = raises_decode(frame(QUERY_SM, b"1\x00\x00\x00\x00"), ESME_RINVCMDID)
    assert "query_sm" in str(err)


def test_sm_length_past_body():
    wire = bytearray(by_name("submit_sm GSM with euro escape").wire)
    wire[50] = 0x11  # sm_length 17, 16 octets follow
    err = raises_decode(bytes(wire), ESME_RINVMSGLEN)
    assert error_response(err) == SubmitSmResp(sequence_number=0x73,
                                               command_status=ESME_RINVMSGLEN)


def test_sm_length_over_254():
    body = b"\x00" + b"\x00\x00\x00" * 2 + b"\x00" * 3 + b"\x00\x00" + b"\x00" * 4
    raises_decode(frame(0x04, body + b"\xff" + b"a" * 255), ESME_RINVMSGLEN)


def test_sm_length_short_leaves_bytes_that_are_not_tlvs():
    wire = bytearray(by_name("submit_sm GSM with euro escape").wire)
    wire[50] = 0x0E  # two octets of text left over
    raises_decode(bytes(wire), ESME_RINVOPTPARSTREAM)


def test_missing_c_string_terminator():
    raises_decode(frame(0x09, b"ivoms\x00secret"), ESME_RINVCMDLEN)
    raises_decode(frame(0x80000004, b"a1b2"), ESME_RINVCMDLEN)


@pytest.mark.parametrize("body, status", [
    (b"x" * 16 + b"\x00pw\x00\x00\x34\x00\x00\x00", ESME_RINVSYSID),
    (b"id\x00" + b"x" * 9 + b"\x00\x00\x34\x00\x00\x00", ESME_RINVPASWD),
    (b"id\x00pw\x00" + b"x" * 13 + b"\x00\x34\x00\x00\x00", ESME_RINVSYSTYP),
    (b"id\x00pw\x00\x00\x34\x00\x00" + b"x" * 41 + b"\x00", ESME_RINVPARLEN),
])
def test_overlong_bind_strings(body, status):
    raises_decode(frame(0x02, body), status)


def sm_body(service_type=b"", source=b"1", dest=b"2", sched=b"", valid=b""):
    return (service_type + b"\x00" + b"\x01\x01" + source + b"\x00" + b"\x01\x01" + dest
            + b"\x00" + b"\x00\x00\x00" + sched + b"\x00" + valid + b"\x00"
            + b"\x00\x00\x00\x00" + b"\x00")


@pytest.mark.parametrize("kwargs, status", [
    ({"service_type": b"CMTCMT"}, ESME_RINVSERTYP),
    ({"source": b"1" * 21}, ESME_RINVSRCADR),
    ({"dest": b"2" * 21}, ESME_RINVDSTADR),
    ({"sched": b"2501011200"}, ESME_RINVSCHED),
    ({"valid": b"1" * 17}, ESME_RINVEXPIRY),
])
def test_submit_sm_field_errors_answer_with_field_status(kwargs, status):
    err = raises_decode(frame(0x04, sm_body(**kwargs), sequence=5), status)
    assert error_response(err) == SubmitSmResp(sequence_number=5, command_status=status)


def test_submit_sm_with_maximal_fields_decodes():
    pdu = decode_pdu(frame(0x04, sm_body(b"CMTCM", b"1" * 20, b"2" * 20)))
    assert pdu.service_type == "CMTCM" and len(pdu.source_addr) == 20


def test_tlv_length_overruns_body():
    body = sm_body() + b"\x02\x0c\x00\x05\x00\x01"
    err = raises_decode(frame(0x04, body), ESME_RINVOPTPARSTREAM)
    assert not err.fatal


def test_tlv_header_cut_short():
    raises_decode(frame(0x04, sm_body() + b"\x02\x0c\x00"), ESME_RINVOPTPARSTREAM)


def test_known_tlv_with_wrong_length():
    raises_decode(frame(0x04, sm_body() + b"\x02\x0c\x00\x01\x07"), ESME_RINVPARLEN)
    raises_decode(frame(0x04, sm_body() + b"\x04\x23\x00\x02\x03\x00"), ESME_RINVPARLEN)


def test_c_string_tlv_without_nul_is_accepted():
    pdu = decode_pdu(frame(0x05, sm_body() + b"\x00\x1e\x00\x03abc"))
    assert pdu.tlv("receipted_message_id") == "abc"


def test_empty_body_pdu_with_trailing_octets():
    raises_decode(frame(0x15, b"\x00"), ESME_RINVCMDLEN)


def test_request_with_empty_body():
    raises_decode(frame(0x04, b""), ESME_RINVCMDLEN)


def test_error_response_with_empty_body_decodes():
    pdu = decode_pdu(header(16, 0x80000103, ESME_RTHROTTLED, 3))
    assert pdu == DataSmResp(sequence_number=3, command_status=ESME_RTHROTTLED)


def test_malformed_response_is_not_answered():
    err = raises_decode(frame(0x80000004, b"a1b2"), ESME_RINVCMDLEN)
    assert error_response(err) is None


def test_fatal_error_answered_with_generic_nack():
    err = DecodeError(ESME_RINVCMDLEN, "x", command_id=0x04, sequence_number=9, fatal=True)
    assert error_response(err) == GenericNack(sequence_number=9, command_status=ESME_RINVCMDLEN)


def test_bad_outbind_answered_with_generic_nack():
    err = raises_decode(frame(0x0B, b"x" * 20), ESME_RINVSYSID)
    assert isinstance(error_response(err), GenericNack)


def test_decode_error_str_names_status():
    err = DecodeError(ESME_RINVCMDID, "nope", command_id=0x99, sequence_number=1)
    assert str(err).startswith("ESME_RINVCMDID: nope")
    assert errors.status_name(0x400) == "0x00000400"


# -- fuzz --------------------------------------------------------------------

def _mutations(rng, wire):
    data = bytearray(wire)
    choice = rng.randrange(5)
    if choice == 0 and data:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1:
        del data[rng.randrange(len(data) + 1):]
    elif choice == 2:
        data += bytes(rng.randrange(256) for _ in range(rng.randrange(8)))
    elif choice == 3 and len(data) > 16:
        pos = rng.randrange(16, len(data))
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5)))
    else:
        data = bytearray(rng.randrange(256) for _ in range(rng.randrange(40)))
    if rng.random() < 0.7 and len(data) >= 4:
        data[0:4] = len(data).to_bytes(4, "big")
    return bytes(data)


def test_fuzz_only_decode_error_escapes():
    rng = random.Random(20240917)
    decoded = 0
    statuses = set()
    for _ in range(20000):
        data = _mutations(rng, rng.choice(VECTORS).wire)
        try:
            frames, _ = split_frames(data)
            for one in frames:
                pdu = decode_pdu(one)
                decoded += 1
                wire = encode_pdu(pdu)
                assert encode_pdu(decode_pdu(wire)) == wire
                if not (type(pdu).OMIT_BODY_ON_ERROR and pdu.command_status):
                    assert decode_pdu(wire) == pdu
        except DecodeError as err:
            assert err.status in errors.STATUS_TABLE
            statuses.add(err.status)
            response = error_response(err)
            if response is not None:
                encode_pdu(response)
    assert decoded > 1000
    assert {ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RINVMSGLEN, ESME_RINVOPTPARSTREAM,
            ESME_RINVPARLEN} <= statuses


# -- encoding ----------------------------------------------------------------

@pytest.mark.parametrize("pdu", [
    BindTransmitter(system_id="x" * 16),
    BindTransmitter(password="p" * 9),
    BindTransmitter(system_id="a\x00b"),
    BindTransmitter(system_id="ключ"),
    BindTransmitter(addr_ton=256),
    BindTransmitter(addr_ton=True),
    SubmitSm(short_message=b"x" * 255),
    SubmitSm(short_message="text"),
    SubmitSm(schedule_delivery_time="2501011200"),
    SubmitSm(destination_addr="1" * 21),
    SubmitSm(optional=tlvs(sar_total_segments=256)),
    SubmitSm(optional=tlvs(receipted_message_id="x" * 65)),
    SubmitSm(optional=tlvs(network_error_code=b"\x03")),
    SubmitSm(optional=(Tlv(0x1400, 5),)),
    SubmitSm(sequence_number=-1),
    SubmitSm(command_status=1 << 32),
    EnquireLink(optional=tlvs(sc_interface_version=0x34)),
])
def test_encode_rejects_bad_fields(pdu):
    with pytest.raises(EncodeError):
        encode_pdu(pdu)


def test_encode_error_response_omits_body():
    assert encode_pdu(SubmitSmResp(sequence_number=1, command_status=ESME_RTHROTTLED,
                                   message_id="ignored")) == header(16, 0x80000004,
                                                                    ESME_RTHROTTLED, 1)
    assert len(encode_pdu(BindReceiverResp(command_status=ESME_RINVPASWD))) == 16
    assert len(encode_pdu(DeliverSmResp(command_status=ESME_RTHROTTLED))) == 17


def test_make_response():
    request = decode_pdu(by_name("submit_sm GSM with euro escape").wire)
    assert make_response(request, message_id="m1") == SubmitSmResp(
        sequence_number=0x73, message_id="m1")
    bind = decode_pdu(by_name("bind_transceiver").wire)
    assert make_response(bind, system_id="ivoms", optional=tlvs(
        sc_interface_version=0x34)) == BindTransceiverResp(
            sequence_number=1, system_id="ivoms", optional=tlvs(sc_interface_version=0x34))
    assert make_response(EnquireLink(sequence_number=4)) == EnquireLinkResp(sequence_number=4)
    assert make_response(Unbind(sequence_number=5), ESME_RTHROTTLED) == UnbindResp(
        sequence_number=5, command_status=ESME_RTHROTTLED)
    with pytest.raises(ValueError):
        make_response(SubmitSmResp())
    with pytest.raises(ValueError):
        make_response(Outbind())


def test_tlv_table_lookup():
    assert SPECS_BY_TAG[0x0424].name == "message_payload"
    assert {s.kind for s in SPECS_BY_TAG.values() if s.kind == C_STRING}
    with pytest.raises(KeyError):
        SubmitSm().tlv("no_such_parameter")


# -- cross-check with smpplib 2.2.4 -------------------------------------------

def smpplib_parse(wire):
    return smpp.parse_pdu(wire, sequence=0, allow_unknown_opt_params=True)


def smpplib_make(name, sequence, **kwargs):
    pdu = smpp.make_pdu(name, sequence=sequence, **kwargs)
    pdu.sequence = sequence  # make_pdu does not keep it when given
    return pdu.generate()


def assert_same_fields(ours, theirs):
    assert theirs.command == ours.command_name
    assert theirs.sequence == ours.sequence_number
    assert theirs.status == ours.command_status
    for field in type(ours).FIELDS:
        value = getattr(ours, field.name)
        other = getattr(theirs, field.name)
        if isinstance(value, str):
            assert (other or b"") == value.encode("latin-1"), field.name
        else:
            assert (other or 0 if field.kind == "int8" else other) == value, field.name
    for item in ours.optional:
        if item.name is None:
            continue
        other = getattr(theirs, item.name)
        expected = item.value.encode("latin-1") if isinstance(item.value, str) else item.value
        assert other == expected, item.name


SMPPLIB_UNSUPPORTED = {"outbind", "data_sm USSD with SAR, payload and a vendor TLV"}


@needs_smpplib
@pytest.mark.parametrize("vector", [v for v in VECTORS if v.name not in SMPPLIB_UNSUPPORTED],
                         ids=lambda v: v.name)
def test_smpplib_parses_our_encoding(vector):
    assert_same_fields(vector.pdu, smpplib_parse(encode_pdu(vector.pdu)))


@needs_smpplib
def test_smpplib_parses_our_data_sm():
    pdu = DataSm(sequence_number=3, source_addr="2348030000001", destination_addr="555",
                 optional=tlvs(sar_msg_ref_num=0x1234, sar_total_segments=2,
                               sar_segment_seqnum=2, message_payload=b"*123*1#",
                               its_reply_type=1, more_messages_to_send=0))
    assert_same_fields(pdu, smpplib_parse(encode_pdu(pdu)))


SMPPLIB_ENCODED = [
    ("bind_transceiver", dict(system_id="esme", password="secret", system_type="VMS",
                              addr_ton=1, addr_npi=1, address_range="^234")),
    ("bind_transmitter", dict(system_id="esme", password="pw", system_type="",
                              address_range="")),
    ("bind_receiver_resp", dict(system_id="SMSC", sc_interface_version=0x34)),
    ("submit_sm", dict(service_type="", source_addr_ton=5, source_addr="IVOMS",
                       dest_addr_ton=1, dest_addr_npi=1, destination_addr="2348030000001",
                       esm_class=0x40, data_coding=8, registered_delivery=1,
                       short_message=b"\x05\x00\x03\x07\x02\x01\x00A",
                       user_message_reference=3, source_port=80, destination_port=8080,
                       sar_msg_ref_num=7, sar_total_segments=2, sar_segment_seqnum=1)),
    ("deliver_sm", dict(source_addr_ton=1, source_addr_npi=1, source_addr="2348030000001",
                        destination_addr="555", esm_class=0x04,
                        short_message=b"id:1 stat:DELIVRD", receipted_message_id="1",
                        message_state=2, network_error_code=b"\x03\x00\x01",
                        its_session_info=0x0100)),
    ("data_sm", dict(service_type="USSD", source_addr="1", destination_addr="555",
                     data_coding=0, message_payload=b"*123#", more_messages_to_send=1)),
    ("submit_sm_resp", dict(message_id="abc123")),
    ("deliver_sm_resp", dict(message_id="")),
    ("data_sm_resp", dict(message_id="m")),
    ("enquire_link", {}),
    ("enquire_link_resp", {}),
    ("unbind", {}),
    ("unbind_resp", {}),
    ("generic_nack", dict(status=ESME_RINVCMDID)),
]


@needs_smpplib
@pytest.mark.parametrize("name, kwargs", SMPPLIB_ENCODED, ids=[n for n, _ in SMPPLIB_ENCODED])
def test_we_decode_smpplib_encoding(name, kwargs):
    wire = smpplib_make(name, 42, **kwargs)
    ours = decode_pdu(wire)
    assert ours.command_name == name and ours.sequence_number == 42
    for key, value in kwargs.items():
        if key == "status":
            assert ours.command_status == value
        elif key == "its_session_info":
            assert ours.tlv(key) == value.to_bytes(2, "big")
        elif hasattr(ours, key):
            assert getattr(ours, key) == value, key
        else:
            assert ours.tlv(key) == value, key
    assert encode_pdu(ours) == wire


def test_build_is_the_constructor_without_its_cost():
    fields = dict(sequence_number=9, source_addr="1555", destination_addr="381641234567",
                  dest_addr_ton=1, short_message=b"hello")
    built = DeliverSm.build(**fields)
    assert built == DeliverSm(**fields) and hash(built) == hash(DeliverSm(**fields))
    assert built.esm_class == 0 and built.optional == ()          # defaults as after __init__
    assert encode_pdu(built) == encode_pdu(DeliverSm(**fields))
    with pytest.raises(TypeError, match="no field sm_length"):
        DeliverSm.build(sm_length=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.short_message = b"changed"


def test_encode_with_a_sequence_number_given_at_send_time():
    pdu = EnquireLink(sequence_number=1)
    assert decode_pdu(encode_pdu(pdu, sequence_number=0x7FFFFFFF)) == EnquireLink(
        sequence_number=0x7FFFFFFF)
    with pytest.raises(EncodeError, match="sequence_number"):
        encode_pdu(pdu, sequence_number=-1)
