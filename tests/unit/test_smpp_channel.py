"""The SMS channel: MO text codings, concatenation, receipts, help, replies (through a server-mode bind)."""

from __future__ import annotations

import pytest
from twisted.internet import task

from core.requests import ActivationResult
from core.results import ResultCode
from protocols.smpp import errors as E
from protocols.smpp.codec import (
    BindTransceiver, DataSm, DeliverSm, DeliverSmResp, SubmitSm, SubmitSmResp, tlvs)
from protocols.smpp.text import decode_gsm, encode_gsm, parse_udh
from tests.unit.test_smpp_fakes import (
    HRN, MSISDN, SHORT_CODE, sms_activation, connect, feed, make_channel,
    make_factory, received)


def setup(result_for=None, clock=None, **channel_kw):
    clock = clock or task.Clock()
    activation = sms_activation(result_for)
    channel = make_channel(activation, clock, **channel_kw)
    factory = make_factory(clock=clock, channel=channel)
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    received(t)
    return activation, proto, t, clock


def submit(seq=2, **kw):
    fields = dict(sequence_number=seq, source_addr=MSISDN, destination_addr=SHORT_CODE)
    fields.update(kw)
    return SubmitSm(**fields)


def replies(t):
    """Reply texts (parts joined) from everything written."""
    out = [p for p in received(t) if isinstance(p, DeliverSm)]
    return out


def reply_text(parts):
    text = []
    for p in parts:
        data = p.short_message
        if p.esm_class & 0x40:
            _, data = parse_udh(data)
        text.append(data.decode("utf-16-be") if p.data_coding == 8 else decode_gsm(data))
    return "".join(text)


# -- codings ----------------------------------------------------------------

@pytest.mark.parametrize("data_coding,raw", [
    (0, encode_gsm("recharge " + HRN)),
    (0, encode_gsm("RECHARGE " + HRN[:7] + "-" + HRN[7:])),
    (3, ("Recharge " + HRN).encode("latin-1")),
    (8, ("RECHARGE " + HRN).encode("utf-16-be")),
    (1, ("TOPUP " + HRN).encode("ascii")),
], ids=["gsm", "gsm-dash", "latin1", "ucs2", "ia5"])
def test_mo_text_codings(data_coding, raw):
    activation, proto, t, _ = setup()
    feed(proto, submit(data_coding=data_coding, short_message=raw))
    assert received(t)[0].command_status == 0
    (req,) = activation.requests
    assert req.hrn.replace("-", "").replace(" ", "") == HRN


def test_gsm_escape_characters_decode():
    activation, proto, t, _ = setup()
    feed(proto, submit(short_message=encode_gsm("{help} €")))
    out = received(t)
    assert activation.requests == []
    assert "send RECHARGE/TOPUP" in reply_text([p for p in out if isinstance(p, DeliverSm)])


def test_ucs2_keyword_with_diacritics_and_sr_reply():
    activation, proto, t, _ = setup()
    feed(proto, submit(data_coding=8, short_message=("dopuna " + HRN).encode("utf-16-be")))
    parts = [p for p in received(t) if isinstance(p, DeliverSm)]
    assert parts[0].data_coding == 8          # š/č need UCS-2
    assert reply_text(parts).startswith("Vaš račun je dopunjen sa 10.00 EUR")


def test_message_payload_tlv():
    activation, proto, t, _ = setup()
    feed(proto, submit(optional=tlvs(message_payload=b"RECHARGE " + HRN.encode())))
    assert len(activation.requests) == 1


# -- concatenation -----------------------------------------------------------

def reassembly_timers(clock):
    return [c for c in clock.getDelayedCalls() if getattr(c.func, "__name__", "") == "_expire"]


def udh8(ref, total, seq):
    return bytes((5, 0, 3, ref, total, seq))


def udh16(ref, total, seq):
    return bytes((6, 8, 4, ref >> 8, ref & 0xFF, total, seq))


@pytest.mark.parametrize("header", [udh8, udh16], ids=["udh8", "udh16"])
def test_udh_reassembly_out_of_order(header):
    activation, proto, t, clock = setup()
    text = encode_gsm("RECHARGE " + HRN)
    chunks = [text[:5], text[5:12], text[12:]]
    for seq in (3, 1, 2):
        feed(proto, submit(seq=10 + seq, esm_class=0x40,
                           short_message=header(300 % 256 if header is udh8 else 300, 3, seq)
                           + chunks[seq - 1]))
        if seq != 2:
            assert activation.requests == []
    (req,) = activation.requests
    assert req.hrn == HRN
    assert reassembly_timers(clock) == []


def test_sar_reassembly_with_ucs2():
    activation, proto, t, _ = setup()
    text = ("TOPUP " + HRN).encode("utf-16-be")
    for seq, chunk in ((1, text[:8]), (2, text[8:])):
        feed(proto, submit(seq=seq + 1, data_coding=8, short_message=chunk,
                           optional=tlvs(sar_msg_ref_num=777, sar_total_segments=2,
                                         sar_segment_seqnum=seq)))
    (req,) = activation.requests
    assert req.hrn == HRN


def test_reassembly_keeps_senders_apart():
    activation, proto, t, _ = setup()
    text = encode_gsm("RECHARGE " + HRN)
    feed(proto, submit(seq=2, esm_class=0x40, short_message=udh8(1, 2, 1) + text[:6]))
    feed(proto, submit(seq=3, source_addr="381649999999", esm_class=0x40,
                       short_message=udh8(1, 2, 2) + text[6:]))
    assert activation.requests == []


def test_reassembly_timeout_drops_parts():
    clock = task.Clock()
    activation, proto, t, clock = setup(clock=clock, reassembly_timeout=30)
    text = encode_gsm("RECHARGE " + HRN)
    feed(proto, submit(seq=2, esm_class=0x40, short_message=udh8(9, 2, 1) + text[:6]))
    clock.advance(31)
    assert reassembly_timers(clock) == []
    feed(proto, submit(seq=3, esm_class=0x40, short_message=udh8(9, 2, 2) + text[6:]))
    assert activation.requests == []
    channel = proto.owner.channel
    assert channel.reassembler.expired == 1 and len(channel.reassembler) == 1
    channel.stop()
    assert reassembly_timers(clock) == []


def test_too_many_pending_concatenations_is_temporary_error():
    activation, proto, t, _ = setup(max_pending_parts=1)
    feed(proto, submit(seq=2, esm_class=0x40, short_message=udh8(1, 2, 1) + b"a"))
    feed(proto, submit(seq=3, esm_class=0x40, short_message=udh8(2, 2, 1) + b"a"))
    assert [p.command_status for p in received(t)] == [0, E.ESME_RTHROTTLED]


# -- receipts, help, replies ---------------------------------------------------

@pytest.mark.parametrize("pdu", [
    DeliverSm(sequence_number=5, source_addr=MSISDN, esm_class=0x04,
              short_message=b"id:123 sub:001 dlvrd:001 stat:DELIVRD err:000 text:"),
    DeliverSm(sequence_number=5, source_addr=MSISDN,
              optional=tlvs(receipted_message_id="abc", message_state=2)),
], ids=["esm_class", "receipted_message_id"])
def test_delivery_receipts_acknowledged_and_ignored(pdu):
    activation, proto, t, _ = setup()
    feed(proto, pdu)
    (resp,) = received(t)
    assert type(resp) is DeliverSmResp and resp.command_status == 0
    assert activation.requests == []
    assert proto.owner.channel.counters["receipts"] == 1


def test_unknown_command_gets_help_in_default_language():
    activation, proto, t, _ = setup()
    feed(proto, submit(short_message=b"BALANCE please"))
    out = received(t)
    assert type(out[0]) is SubmitSmResp and out[0].command_status == 0
    assert reply_text(out[1:]).startswith("To recharge, send RECHARGE/TOPUP")
    assert activation.requests == []


def test_keyword_without_hrn_gets_help_in_keyword_language():
    activation, proto, t, _ = setup()
    feed(proto, submit(short_message=b"DOPUNA"))
    assert reply_text(received(t)[1:]).startswith("Za dopunu pošaljite DOPUNA")


def test_barred_reply_has_unbar_time():
    activation, proto, t, _ = setup(lambda req: ActivationResult(
        ResultCode.SUBSCRIBER_BARRED, unbar_at=1767229200000))   # 2026-01-01 01:00 UTC
    feed(proto, submit(short_message=b"RECHARGE " + HRN.encode()))
    assert reply_text(received(t)[1:]) == \
        "Too many failed attempts. You can try again after 2026-01-01 01:00."


def test_long_reply_is_split_with_udh():
    long_text = "Your account was credited. " * 12
    activation = sms_activation()
    from protocols.smpp.replies import Replies
    channel = make_channel(activation)
    channel.replies = Replies({"en": {"SUCCESS": long_text}})
    factory = make_factory(channel=channel)
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"),
         submit(short_message=b"RECHARGE " + HRN.encode()))
    parts = [p for p in received(t) if isinstance(p, DeliverSm)]
    assert len(parts) == 3
    refs = set()
    for i, p in enumerate(parts, start=1):
        assert p.esm_class & 0x40 and len(p.short_message) <= 140 + 20
        udh, _ = parse_udh(p.short_message)
        assert (udh.concat.total, udh.concat.seqnum) == (3, i)
        refs.add(udh.concat.reference)
    assert len(refs) == 1
    assert reply_text(parts) == long_text.strip()


def test_beneficiary_form_when_enabled():
    activation, proto, t, _ = setup(allow_beneficiary=True)
    feed(proto, submit(short_message=("RECHARGE %s 0641112222" % HRN).encode()))
    (req,) = activation.requests
    assert (req.hrn, req.beneficiary) == (HRN, "0641112222")


def test_activation_failure_becomes_system_error_reply():
    class Broken:
        def activate(self, req):
            raise RuntimeError("boom")
    channel = make_channel(Broken())
    factory = make_factory(channel=channel)
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"),
         submit(short_message=b"RECHARGE " + HRN.encode()))
    assert reply_text([p for p in received(t) if isinstance(p, DeliverSm)]).startswith(
        "Sorry, the recharge failed")
    assert channel.in_flight == 0


def test_no_source_address_no_reply():
    activation, proto, t, _ = setup()
    feed(proto, submit(source_addr="", short_message=b"RECHARGE " + HRN.encode()))
    assert [type(p) for p in received(t)] == [SubmitSmResp]
    assert activation.requests == []


def test_data_sm_mo_reply():
    activation, proto, t, _ = setup()
    feed(proto, DataSm(sequence_number=3, source_addr=MSISDN, destination_addr=SHORT_CODE,
                       data_coding=8, optional=tlvs(
                           message_payload=("RECHARGE " + HRN).encode("utf-16-be"))))
    out = received(t)
    assert out[0].command_status == 0 and isinstance(out[1], DeliverSm)


def test_hrn_never_logged():
    from twisted.logger import globalLogPublisher
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        activation, proto, t, _ = setup()
        feed(proto, submit(short_message=b"RECHARGE " + HRN.encode()),
             submit(seq=3, short_message=b"hello"),
             submit(seq=4, esm_class=0x40, short_message=b"\x09\x00"))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    from twisted.logger import formatEvent
    text = " ".join(formatEvent(e) + repr(e) for e in seen)
    assert seen and HRN not in text and MSISDN in text


def test_refused_activations_are_logged_and_successes_left_to_the_transaction_table():
    from twisted.logger import formatEvent, globalLogPublisher
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        activation, proto, t, _ = setup(lambda req: ActivationResult(
            ResultCode.SUCCESS if req.channel_ref.endswith("1") else ResultCode.INVALID_HRN,
            txn_id="t-" + req.channel_ref))
        feed(proto, submit(seq=2, short_message=b"RECHARGE " + HRN.encode()),
             submit(seq=3, short_message=b"RECHARGE " + HRN.encode()))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    first, second = [r.channel_ref for r in activation.requests]
    lines = [formatEvent(e) for e in seen if "MO " in formatEvent(e)]
    assert lines == ["MO %s from %s: INVALID_HRN (txn t-%s)" % (second, MSISDN, second)]
    assert first.endswith("1")


def test_drain_waits_for_activations_and_their_replies():
    activation = sms_activation(hold=True)
    channel = make_channel(activation)
    factory = make_factory(channel=channel)
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    received(t)
    assert channel.drain().called                      # nothing under way
    feed(proto, submit(seq=2, short_message=b"RECHARGE " + HRN.encode()),
         submit(seq=3, short_message=b"hello"))         # an activation and a help reply
    drained = channel.drain()
    help_reply = [p for p in received(t) if isinstance(p, DeliverSm)][0]
    feed(proto, DeliverSmResp(sequence_number=help_reply.sequence_number))
    assert not drained.called                          # the activation is still out
    activation.release()
    (reply,) = [p for p in received(t) if isinstance(p, DeliverSm)]
    assert not drained.called                          # its reply is not answered yet
    feed(proto, DeliverSmResp(sequence_number=reply.sequence_number))
    assert drained.called and channel.counters["replies"] == 2


def test_a_reply_that_cannot_be_rendered_is_counted_and_frees_the_slot():
    class Exploding:
        def render(self, *a, **kw):
            raise RuntimeError("template bug")
    activation, proto, t, _ = setup()
    proto.owner.channel.replies = Exploding()
    feed(proto, submit(short_message=b"RECHARGE " + HRN.encode()))
    channel = proto.owner.channel
    assert channel.counters["reply_failures"] == 1 and channel.in_flight == 0
    assert channel.drain().called
