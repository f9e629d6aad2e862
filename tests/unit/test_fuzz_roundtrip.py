"""Encode then decode gives back the message, for generated valid messages of each codec."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz_targets import FUZZ

# -- SMPP ----------------------------------------------------------------------------
from protocols.smpp.codec import decode_pdu, encode_pdu
from protocols.smpp.pdus import PDU_CLASSES

_LATIN1 = st.characters(min_codepoint=1, max_codepoint=255)


def _field_value(field):
    if field.kind == "int8":
        return st.integers(0, 255)
    if field.kind == "sm":
        return st.binary(max_size=field.max_len)
    if field.kind == "time":
        return st.sampled_from(["", "260101120000000+", "000000010000000R"])
    return st.text(_LATIN1, max_size=field.max_len - 1)


def _pdu(cls):
    fields = {f.name: _field_value(f) for f in cls.FIELDS}
    return st.builds(lambda seq, values: cls.build(sequence_number=seq, **values),
                     st.integers(0, 0x7FFFFFFF), st.fixed_dictionaries(fields))


@pytest.mark.parametrize("cls", sorted(PDU_CLASSES.values(), key=lambda c: c.command_id),
                         ids=lambda c: c.__name__)
def test_smpp_pdu_round_trips(cls):
    @FUZZ
    @given(pdu=_pdu(cls))
    def check(pdu):
        assert decode_pdu(encode_pdu(pdu)) == pdu

    check()


# -- BER -----------------------------------------------------------------------------
from protocols.ussd.ber import CLASS_CONTEXT, encode_tlv, read_tlv, split_tlvs  # noqa: E402


def test_ber_element_round_trips():
    @FUZZ
    @given(number=st.integers(0, 100_000), content=st.binary(max_size=300),
           tag_class=st.sampled_from([0x00, 0x40, CLASS_CONTEXT, 0xC0]))
    def check(number, content, tag_class):
        raw = encode_tlv(tag_class, False, number, content)
        item = read_tlv(raw)
        assert (item.tag_class, item.constructed, item.tag_number, item.content, item.raw) \
            == (tag_class, False, number, content, raw)
        outer = read_tlv(encode_tlv(tag_class, True, number, raw + raw))
        assert [i.raw for i in split_tlvs(outer.content)] == [raw, raw]

    check()


# -- MAP / TCAP ----------------------------------------------------------------------
from protocols.ussd.map import decode_map_argument, decode_ussd_res, encode_ussd_arg, encode_ussd_res  # noqa: E402,E501
from protocols.ussd.tcap import Invoke, TcapMessage, decode_tcap, encode_tcap  # noqa: E402

_USSD_TEXT = st.text(st.sampled_from("0123456789*#ABCabc xyz.,-"), min_size=1, max_size=80)


def test_map_ussd_arg_and_res_round_trip():
    @FUZZ
    @given(text=_USSD_TEXT, digits=st.one_of(st.none(), st.text("0123456789", min_size=5, max_size=15)))
    def check(text, digits):
        msisdn = "+" + digits if digits else None
        req = decode_map_argument(59, encode_ussd_arg(text, msisdn))
        assert req.text == text and req.opcode == 59
        if msisdn:
            assert req.msisdn.digits == digits
        assert decode_ussd_res(encode_ussd_res(text)).text == text

    check()


def test_tcap_begin_with_an_invoke_round_trips():
    @FUZZ
    @given(otid=st.binary(min_size=1, max_size=4), invoke_id=st.integers(-128, 127),
           param=st.one_of(st.none(), st.binary(min_size=1, max_size=64).map(
               lambda b: b"\x04" + bytes((len(b),)) + b)))
    def check(otid, invoke_id, param):
        msg = TcapMessage("begin", otid=otid,
                          components=(Invoke(invoke_id, 59, param),))
        back = decode_tcap(encode_tcap(msg))
        assert back.kind == "begin" and back.otid == otid
        assert back.components == msg.components

    check()


# -- CAI -----------------------------------------------------------------------------
from billing.cai.codec import format_response, format_time, parse_response, parse_time  # noqa: E402

_CAI_TOKEN = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"), min_size=1, max_size=12)


def test_cai_response_and_time_round_trip():
    @FUZZ
    @given(code=st.integers(0, 9999), fields=st.dictionaries(_CAI_TOKEN, _CAI_TOKEN, max_size=6),
           seconds=st.integers(0, 4_000_000_000))
    def check(code, fields, seconds):
        r = parse_response(format_response(code, **fields))
        assert r.code == code and r.fields == fields
        assert parse_time(format_time(seconds * 1000)) == seconds * 1000

    check()


# -- Diameter ------------------------------------------------------------------------
from billing.diameter.message.framing import decode_message  # noqa: E402
from billing.diameter.message.messages import LocalIdentity, build_answer, build_cer  # noqa: E402
from billing.diameter.message.parsing import parse_capabilities  # noqa: E402

_LABEL = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"), min_size=1, max_size=10)


def test_diameter_answers_round_trip():
    @FUZZ
    @given(host=_LABEL, realm=_LABEL, hop=st.integers(0, 2**32 - 1), end=st.integers(0, 2**32 - 1),
           result=st.sampled_from([2001, 3002, 4010, 5012]), session=_LABEL)
    def check(host, realm, hop, end, result, session):
        local = LocalIdentity("%s.%s.net" % (host, realm), "%s.net" % realm, ("192.0.2.10",))
        cer = decode_message(build_cer(local, hop_by_hop=hop, end_to_end=end))
        caps = parse_capabilities(cer)
        assert (caps.origin_host, caps.origin_realm) == (local.origin_host, local.origin_realm)
        answer = decode_message(build_answer(cer.header, local, result, session_id=session))
        assert answer.result_code == result and answer.session_id == session
        assert answer.origin_host == local.origin_host
        assert (answer.header.hop_by_hop, answer.header.end_to_end) == (hop, end)
        assert not answer.header.is_request

    check()


# -- USSD JSON envelope --------------------------------------------------------------
import json  # noqa: E402

from protocols.ussd import envelope  # noqa: E402
from tests.fuzz_targets import fake_request  # noqa: E402


def test_ussd_json_envelope_parses_what_a_gateway_sends():
    @FUZZ
    @given(did=st.text(st.sampled_from("abcdef0123456789-"), min_size=1, max_size=64),
           op=st.sampled_from(["begin", "continue", "end", "abort"]), text=_USSD_TEXT,
           digits=st.text("0123456789", min_size=8, max_size=12))
    def check(did, op, text, digits):
        doc = {"dialogue_id": did, "operation": op, "msisdn": "+" + digits}
        if op in ("begin", "continue"):
            doc["text"] = text
        env = envelope.parse(fake_request({b"content-type": b"application/json"}),
                             json.dumps(doc).encode())
        assert env.dialogue_id == did and env.operation == op and env.form == "json"

    check()
