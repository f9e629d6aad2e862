"""The USSD fast path against the pyasn1 reference: on generated TCAP messages and MAP
USSD-Arg / USSD-Res (extensions, long-form lengths, GSM 7-bit and UCS-2 text), both write
the same octets and read the same objects -- or raise the same error."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from protocols.ussd import fastpath  # noqa: E402
from protocols.ussd import map as ussd_map  # noqa: E402
from protocols.ussd import tcap  # noqa: E402
from protocols.ussd.ber import encode_tlv  # noqa: E402
from protocols.ussd.errors import UssdDecodeError, UssdEncodeError  # noqa: E402
from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as USSD_AC  # noqa: E402
from protocols.ussd.tcap import Dialogue, Invoke, ReturnResult, TcapMessage  # noqa: E402

PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

GSM_CHARS = "0123456789*#abcdefxyzABCXYZ @$!?.,:;-+/()\r\n€[]{}^~|\\"
UCS2_CHARS = "абвгдђежзшчћЖШЂ€日本 0123456789*#"


def _fits(text):
    try:
        ussd_map.encode_ussd_res(text)
    except UssdEncodeError:
        return False
    return True


texts = st.one_of(
    st.text(alphabet=GSM_CHARS, min_size=1, max_size=182),
    st.text(alphabet=UCS2_CHARS, min_size=1, max_size=80),
).filter(_fits)
msisdns = st.none() | st.builds(lambda plus, digits: plus + digits, st.sampled_from(["", "+"]),
                                st.text(alphabet="0123456789*#", min_size=1, max_size=16))
patterns = st.none() | st.integers(0, 255)
invoke_ids = st.integers(-128, 127)
opcodes = st.integers(-2**20, 2**20) | st.sampled_from([59, 60, 61])
tids = st.binary(min_size=1, max_size=4)
oids = st.one_of(
    st.just(USSD_AC),
    st.builds(lambda a, b, rest: (a, b) + tuple(rest), st.integers(0, 1), st.integers(0, 39),
              st.lists(st.integers(0, 2**32), max_size=8)),
    st.builds(lambda b, rest: (2, b) + tuple(rest), st.integers(0, 500),
              st.lists(st.integers(0, 2**20), max_size=4)))


def tlvs(depth=2):
    """Random definite-length BER elements (low tag numbers), some of them long."""
    primitive = st.builds(lambda cls, num, body: encode_tlv(cls, False, num, body),
                          st.sampled_from([0x00, 0x40, 0x80, 0xC0]), st.integers(0, 30),
                          st.binary(max_size=200))
    if depth == 0:
        return primitive
    constructed = st.builds(lambda cls, num, kids: encode_tlv(cls, True, num, b"".join(kids)),
                            st.sampled_from([0x00, 0x40, 0x80, 0xC0]), st.integers(0, 30),
                            st.lists(tlvs(depth - 1), max_size=3))
    return primitive | constructed


externals = st.lists(tlvs(1), max_size=3).map(lambda kids: encode_tlv(0, True, 8, b"".join(kids)))


@st.composite
def ussd_args(draw):
    return ussd_map.encode_ussd_arg(draw(texts), msisdn=draw(msisdns),
                                    alerting_pattern=draw(patterns))


@st.composite
def dialogues(draw):
    kind = draw(st.sampled_from(["request", "response"]))
    info = tuple(draw(st.lists(externals, max_size=2)))
    if kind == "request":
        return Dialogue("request", application_context=draw(oids), user_information=info)
    return Dialogue("response", application_context=draw(oids),
                    result=draw(st.integers(-300, 300)),
                    diagnostic=(draw(st.sampled_from(["user", "provider"])),
                                draw(st.integers(-300, 300))),
                    user_information=info)


parameters = st.one_of(ussd_args(), texts.map(ussd_map.encode_ussd_res), tlvs(2))


@st.composite
def components(draw):
    if draw(st.booleans()):
        return Invoke(draw(invoke_ids), draw(opcodes), draw(st.none() | parameters),
                      draw(st.none() | invoke_ids))
    if draw(st.booleans()):
        return ReturnResult(draw(invoke_ids))
    return ReturnResult(draw(invoke_ids), draw(opcodes), draw(parameters))


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(["begin", "continue", "end"]))
    return TcapMessage(kind, otid=draw(tids) if kind != "end" else None,
                       dtid=draw(tids) if kind != "begin" else None,
                       dialogue=draw(st.none() | dialogues()),
                       components=tuple(draw(st.lists(components(), max_size=3))))


def _outcome(fn, *args):
    """What C{fn(*args)} gives: C{("ok", value)} or C{("error", type, attributes)}."""
    try:
        return ("ok", fn(*args))
    except (UssdDecodeError, UssdEncodeError) as exc:
        return ("error", type(exc), sorted(vars(exc).items(), key=lambda kv: kv[0]))


def _mutations(data, draw):
    """C{data} with a few octets changed, cut or added (to reach the fallbacks)."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[pos:pos + draw(st.integers(1, 3))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=3))
    return bytes(data)


def _lengthen(data):
    """Re-encode the outermost element's length in a non-minimal long form."""
    first, length = data[0], data[1]
    if length & 0x80:
        return data
    return bytes((first, 0x82)) + length.to_bytes(2, "big") + data[2:]


# --- MAP -------------------------------------------------------------------------------

@PROPERTY
@given(texts, msisdns, patterns)
def test_ussd_arg_encoding_agrees(text, msisdn, pattern):
    assert _outcome(fastpath.encode_ussd_arg, text, msisdn, pattern) == \
        _outcome(ussd_map.encode_ussd_arg, text, msisdn, pattern)


@PROPERTY
@given(texts)
def test_ussd_res_encoding_agrees(text):
    assert fastpath.encode_ussd_res(text) == ussd_map.encode_ussd_res(text)
    assert fastpath.encode_ussd_request_arg(text) == ussd_map.encode_ussd_request_arg(text)


@PROPERTY
@given(ussd_args(), st.lists(tlvs(1), max_size=3), st.integers(0, 4), st.sampled_from([59, 60, 61, 62]),
       st.data())
def test_ussd_arg_decoding_agrees(arg, extensions, where, opcode, data):
    """Extensions (unknown elements) anywhere after the mandatory two, and mutations."""
    body = tlvs_of(arg)
    where = min(where, len(body))
    body = body[:where] + extensions + body[where:]
    ber = encode_tlv(0, True, 16, b"".join(body))
    assert _outcome(fastpath.decode_map_argument, opcode, ber) == \
        _outcome(ussd_map.decode_map_argument, opcode, ber)
    mutated = _mutations(ber, data.draw)
    assert _outcome(fastpath.decode_map_argument, opcode, mutated) == \
        _outcome(ussd_map.decode_map_argument, opcode, mutated)
    long = _lengthen(ber)
    assert _outcome(fastpath.decode_map_argument, opcode, long) == \
        _outcome(ussd_map.decode_map_argument, opcode, long)


@PROPERTY
@given(texts, st.lists(tlvs(1), max_size=2), st.data())
def test_ussd_res_decoding_agrees(text, extensions, data):
    ber = ussd_map.encode_ussd_res(text)
    ber = encode_tlv(0, True, 16, b"".join(tlvs_of(ber) + extensions))
    assert _outcome(fastpath.decode_ussd_res, ber) == _outcome(ussd_map.decode_ussd_res, ber)
    mutated = _mutations(ber, data.draw)
    assert _outcome(fastpath.decode_ussd_res, mutated) == \
        _outcome(ussd_map.decode_ussd_res, mutated)


def tlvs_of(ber):
    from protocols.ussd.ber import read_tlv, split_tlvs
    return [t.raw for t in split_tlvs(read_tlv(ber).content)]


# --- TCAP ------------------------------------------------------------------------------

@PROPERTY
@given(messages())
def test_tcap_encoding_agrees(message):
    assert _outcome(fastpath.encode_tcap, message) == _outcome(tcap.encode_tcap, message)


@PROPERTY
@given(messages(), st.data())
def test_tcap_decoding_agrees(message, data):
    try:
        ber = tcap.encode_tcap(message)
    except UssdEncodeError:
        return
    assert _outcome(fastpath.decode_tcap, ber) == _outcome(tcap.decode_tcap, ber)
    mutated = _mutations(ber, data.draw)
    assert _outcome(fastpath.decode_tcap, mutated) == _outcome(tcap.decode_tcap, mutated)
    long = _lengthen(ber)
    assert _outcome(fastpath.decode_tcap, long) == _outcome(tcap.decode_tcap, long)


def test_the_common_shapes_take_the_fast_path(monkeypatch):
    """The bridge's usual Begin, Continue and End never reach pyasn1."""
    def refuse(*args, **kwargs):
        raise AssertionError("the reference codec was used")
    begin = tcap.encode_tcap(TcapMessage(
        "begin", otid=b"\x00\x00\x00\x07", dialogue=Dialogue("request", application_context=USSD_AC),
        components=(Invoke(1, 59, ussd_map.encode_ussd_arg("*123*12345678901234#",
                                                            msisdn="+381641234567")),)))
    cont = tcap.encode_tcap(TcapMessage(
        "continue", otid=b"\x07", dtid=b"\x01\x02", components=(
            ReturnResult(2, 60, ussd_map.encode_ussd_res("1")),)))
    for name in ("decode_tcap", "encode_tcap"):
        monkeypatch.setattr(tcap, name, refuse)
    for name in ("decode_map_argument", "decode_ussd_res", "encode_ussd_res", "encode_ussd_arg"):
        monkeypatch.setattr(ussd_map, name, refuse)
    message = fastpath.decode_tcap(begin)
    arg = fastpath.decode_map_argument(59, message.components[0].parameter)
    assert (arg.text, str(arg.msisdn)) == ("*123*12345678901234#", "+381641234567")
    reply = fastpath.decode_tcap(cont)
    assert fastpath.decode_ussd_res(reply.components[0].parameter).text == "1"
    aare = Dialogue("response", application_context=USSD_AC, result=0, diagnostic=("user", 0))
    for message in (
            TcapMessage("end", dtid=b"\x00\x00\x00\x07", dialogue=aare, components=(
                ReturnResult(1, 59, fastpath.encode_ussd_res("Recharged 10.00 EUR")),)),
            TcapMessage("continue", otid=b"\x01\x02", dtid=b"\x07", dialogue=aare, components=(
                Invoke(2, 60, fastpath.encode_ussd_request_arg("Recharge\n1 Me\nЖ")),))):
        assert fastpath.encode_tcap(message)
