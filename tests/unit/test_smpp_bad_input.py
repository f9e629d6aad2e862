"""Bad input on a live session (issue 4 "Bad input"): the right answer, and the link survives
unless framing is lost, in which case only that connection closes."""

from __future__ import annotations

import random
import struct

import pytest
from twisted.internet import task

from protocols.smpp import errors as E
from protocols.smpp.codec import (
    BindTransceiver, EnquireLink, EnquireLinkResp, GenericNack, SubmitSm,
    SubmitSmResp, encode_pdu)
from protocols.smpp.pdus import (
    BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP, DELIVER_SM_RESP, ENQUIRE_LINK,
    QUERY_SM, SUBMIT_SM, SUBMIT_SM_RESP)
from protocols.smpp.protocol import BOUND
from tests.unit.test_smpp_fakes import (
    HRN, MSISDN, SHORT_CODE, connect, disconnect, feed, make_factory, received)


def frame(command_id, body=b"", status=0, seq=1, length=None):
    length = 16 + len(body) if length is None else length
    return struct.pack(">IIII", length, command_id, status, seq) + body


def session(clock=None, **kw):
    factory = make_factory(clock=clock or task.Clock(), **kw)
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    received(t)
    return factory, proto, t


def still_alive(proto, t):
    feed(proto, EnquireLink(sequence_number=999))
    assert received(t) == [EnquireLinkResp(sequence_number=999)]
    assert not t.disconnecting and proto.state == BOUND


SUBMIT_HEAD = b"\x00" + b"\x01\x01" + MSISDN.encode() + b"\x00" + b"\x00\x00" + \
    SHORT_CODE.encode() + b"\x00" + b"\x00\x00\x00" + b"\x00" + b"\x00" + b"\x00\x00\x00\x00"

# (name, raw frame, expected answer class, expected status)
SURVIVABLE = [
    ("unknown command_id", frame(0x00000099, seq=5), GenericNack, E.ESME_RINVCMDID),
    ("unsupported query_sm", frame(QUERY_SM, b"1\x00\x00\x00\x00", seq=5),
     GenericNack, E.ESME_RINVCMDID),
    ("sm_length past the body", frame(SUBMIT_SM, SUBMIT_HEAD + b"\x20abc", seq=5),
     SubmitSmResp, E.ESME_RINVMSGLEN),
    ("body ends inside a field", frame(SUBMIT_SM, b"\x00\x01\x01" + b"3816", seq=5),
     SubmitSmResp, E.ESME_RINVCMDLEN),
    ("overlong source_addr", frame(SUBMIT_SM, b"\x00\x01\x01" + b"9" * 30 + b"\x00", seq=5),
     SubmitSmResp, E.ESME_RINVSRCADR),
    ("broken TLV stream", frame(SUBMIT_SM, SUBMIT_HEAD + b"\x00" + b"\x04\x24\x00", seq=5),
     SubmitSmResp, E.ESME_RINVOPTPARSTREAM),
    ("TLV runs past the body", frame(SUBMIT_SM, SUBMIT_HEAD + b"\x00" + b"\x04\x24\x00\x09ab",
                                     seq=5), SubmitSmResp, E.ESME_RINVOPTPARSTREAM),
    ("known TLV with a wrong length", frame(SUBMIT_SM, SUBMIT_HEAD + b"\x00" +
                                            b"\x02\x0c\x00\x01\x07", seq=5),
     SubmitSmResp, E.ESME_RINVPARLEN),
    ("enquire_link with a body", frame(ENQUIRE_LINK, b"xx", seq=5),
     EnquireLinkResp, E.ESME_RINVCMDLEN),
    ("bad schedule_delivery_time", frame(SUBMIT_SM, SUBMIT_HEAD[:-6] + b"123\x00" + b"\x00" +
                                         b"\x00\x00\x00\x00" + b"\x00", seq=5),
     SubmitSmResp, E.ESME_RINVSCHED),
]


@pytest.mark.parametrize("name,raw,answer_cls,status", SURVIVABLE, ids=[s[0] for s in SURVIVABLE])
def test_malformed_pdu_is_answered_and_link_survives(name, raw, answer_cls, status):
    factory, proto, t = session()
    proto.dataReceived(raw)
    (answer,) = received(t)
    assert type(answer) is answer_cls
    assert (answer.sequence_number, answer.command_status) == (5, status), \
        E.status_name(answer.command_status)
    still_alive(proto, t)
    assert factory.channel.activation.requests == []


def test_overlong_system_id_in_bind():
    factory = make_factory()
    proto, t = connect(factory)
    proto.dataReceived(frame(BIND_TRANSCEIVER, b"x" * 20 + b"\x00" + b"\x00" * 10, seq=3))
    (answer,) = received(t)
    assert answer.command_id == BIND_TRANSCEIVER_RESP
    assert answer.command_status == E.ESME_RINVSYSID and not t.disconnecting


@pytest.mark.parametrize("raw", [
    frame(SUBMIT_SM_RESP, b"id-without-nul", seq=5),
    frame(DELIVER_SM_RESP, b"\x00\x00\x00", seq=5),
], ids=["submit_sm_resp", "deliver_sm_resp"])
def test_malformed_response_is_not_answered(raw):
    _, proto, t = session()
    proto.dataReceived(raw)
    assert received(t) == []
    still_alive(proto, t)


@pytest.mark.parametrize("raw", [
    struct.pack(">I", 8) + b"\x00" * 12,                        # command_length < 16
    struct.pack(">IIII", 1 << 20, SUBMIT_SM, 0, 5),             # over max_pdu_length
    struct.pack(">IIII", 0xFFFFFFFF, SUBMIT_SM, 0, 5),
], ids=["too short", "too long", "huge"])
def test_bad_command_length_nacks_and_closes_only_this_connection(raw):
    clock = task.Clock()
    factory, proto, t = session(clock)
    other, to = connect(factory)
    feed(other, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    received(to)
    proto.dataReceived(raw)
    (nack,) = received(t)
    assert type(nack) is GenericNack and nack.command_status == E.ESME_RINVCMDLEN
    assert t.disconnecting
    proto.dataReceived(encode_pdu(EnquireLink(sequence_number=2)))   # ignored after
    assert received(t) == []
    disconnect(proto, t)
    still_alive(other, to)


def test_good_pdus_before_a_bad_length_are_handled_first():
    factory, proto, t = session()
    good = encode_pdu(SubmitSm(sequence_number=2, source_addr=MSISDN, destination_addr=SHORT_CODE,
                               short_message=b"RECHARGE " + HRN.encode()))
    proto.dataReceived(good + struct.pack(">IIII", 4, SUBMIT_SM, 0, 3))
    out = received(t)
    assert type(out[0]) is SubmitSmResp and out[0].command_status == 0
    assert type(out[-1]) is GenericNack and out[-1].command_status == E.ESME_RINVCMDLEN
    assert t.disconnecting


def test_pdus_split_at_every_byte():
    factory, proto, t = session()
    data = encode_pdu(EnquireLink(sequence_number=3)) + encode_pdu(
        SubmitSm(sequence_number=4, source_addr=MSISDN, destination_addr=SHORT_CODE,
                 short_message=b"hello"))
    for i in range(len(data)):
        proto.dataReceived(data[i:i + 1])
    out = received(t)
    assert [type(p) for p in out[:2]] == [EnquireLinkResp, SubmitSmResp]


def test_bad_udh_is_rinvesmclass():
    _, proto, t = session()
    feed(proto, SubmitSm(sequence_number=4, source_addr=MSISDN, destination_addr=SHORT_CODE,
                         esm_class=0x40, short_message=b"\x09\x00\x03"))
    (resp,) = received(t)
    assert resp.command_status == E.ESME_RINVESMCLASS
    still_alive(proto, t)


def test_binary_data_coding_is_acknowledged_and_ignored():
    factory, proto, t = session()
    feed(proto, SubmitSm(sequence_number=4, source_addr=MSISDN, destination_addr=SHORT_CODE,
                         data_coding=0x04, short_message=b"\x01\x02"))
    (resp,) = received(t)
    assert resp.command_status == 0 and factory.channel.activation.requests == []


def test_random_garbage_never_raises():
    rng = random.Random(4)
    for _ in range(200):
        factory, proto, t = session()
        proto.dataReceived(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 80))))
        for answer in received(t) if not t.disconnecting else []:
            assert answer.is_response
