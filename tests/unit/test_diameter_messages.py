"""Tests for billing.diameter builders, parsers, mapping (RFC 6733, RFC 4006).

Raw bytes are checked with a tiny independent AVP walker; wire compatibility
with python-diameter is checked both ways; CER and CCR are compared with
hand-written hex vectors in tests/unit/vectors/.
"""
import datetime
import decimal
import pathlib
import re
import struct

import pytest
from diameter.message import Message
from diameter.message.avp import Avp
from diameter.message.commands import (
    CapabilitiesExchangeAnswer, CreditControlAnswer, CreditControlRequest,
    DeviceWatchdogAnswer)

from billing.diameter.message import (
    CreditRequest, CreditSettings, DiameterEncodeError, LocalIdentity,
    Outcome, ValidityAvp, build_cca, build_ccr, build_cea, build_cer,
    build_dpa, build_dpr, build_dwa, build_dwr, credit_outcome,
    decode_message, key_from_session_id, map_result, mark_retransmission,
    money_digits, parse_capabilities, read_credit_request, read_header,
    session_id_for, set_identifiers)
from core.results import ResultCode

VECTORS = pathlib.Path(__file__).parent / "vectors"
UTC = datetime.timezone.utc
EVENT = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
LOCAL = LocalIdentity("ivoms.example.net", "example.net", ("192.0.2.10",),
                      origin_state_id=7)
OCS = LocalIdentity("ocs.example.net", "example.net", ("192.0.2.1",))
VALIDITY = ValidityAvp(10415, 9001, "Unsigned32")
SETTINGS = CreditSettings("ocs.example.net", "topup@ivoms",
                          validity_avps=(VALIDITY,))
REQUEST = CreditRequest("tx-42", "46701234567", decimal.Decimal("12.50"), 752,
                        EVENT, validity_days=30)


def load_vector(name):
    text = (VECTORS / name).read_text()
    return bytes.fromhex("".join(re.sub(r"#.*", "", text).split()))


def raw_avps(buf):
    """Independent walker: [(code, flags, vendor, payload)] of one level."""
    out, pos = [], 0
    while pos < len(buf):
        code, fl = struct.unpack_from(">II", buf, pos)
        flags, length = fl >> 24, fl & 0xFFFFFF
        head = 12 if flags & 0x80 else 8
        vendor = struct.unpack_from(">I", buf, pos + 8)[0] if head == 12 else 0
        out.append((code, flags, vendor, buf[pos + head:pos + length]))
        pos += (length + 3) & ~3
    return out


def top(data):
    return raw_avps(data[20:])


def first(avps, code):
    return next(a for a in avps if a[0] == code)


def ccr(**changes):
    req = CreditRequest(**{**REQUEST.__dict__, **changes})
    return build_ccr(LOCAL, SETTINGS, req, hop_by_hop=3, end_to_end=4)


# --- vectors and headers ----------------------------------------------------

def test_cer_matches_hand_written_vector():
    assert build_cer(LOCAL, hop_by_hop=1, end_to_end=2) == \
        load_vector("diameter_cer.hex")


def test_ccr_matches_hand_written_vector():
    assert ccr() == load_vector("diameter_ccr.hex")


@pytest.mark.parametrize("data, command, flags, app", [
    (build_cer(LOCAL), 257, 0x80, 0),
    (build_dwr(LOCAL), 280, 0x80, 0),
    (build_dpr(LOCAL), 282, 0x80, 0),
    (ccr(), 272, 0xC0, 4),
])
def test_request_headers(data, command, flags, app):
    h = read_header(data)
    assert (h.version, h.length, h.command_code, h.flags, h.application_id) \
        == (1, len(data), command, flags, app)


@pytest.mark.parametrize("build", [build_cer, build_dwr, build_dpr])
def test_base_requests_origin_avps_have_m_bit(build):
    avps = top(build(LOCAL))
    assert [(a[0], a[1]) for a in avps[:2]] == [(264, 0x40), (296, 0x40)]
    assert first(avps, 264)[3] == b"ivoms.example.net"


def test_cer_avps_and_flags():
    avps = {a[0]: a for a in top(build_cer(
        LocalIdentity("h.example", "example", ("2001:db8::1", "192.0.2.1"),
                      vendor_id=99, firmware_revision=3,
                      supported_vendor_ids=(10415,))))}
    assert avps[258][1:] == (0x40, 0, struct.pack(">I", 4))
    assert avps[269][1] == 0x00 and avps[267][1] == 0x00  # M MUST NOT
    assert avps[267][3] == struct.pack(">I", 3)
    assert avps[266][3] == struct.pack(">I", 99)
    assert avps[265][3] == struct.pack(">I", 10415)
    assert 278 not in avps  # no Origin-State-Id configured


def test_dpr_carries_disconnect_cause():
    assert first(top(build_dpr(LOCAL, 2)), 273)[1:] == (0x40, 0, b"\0\0\0\2")


def test_dwr_carries_origin_state_id():
    assert first(top(build_dwr(LOCAL)), 278)[3] == struct.pack(">I", 7)


# --- the CCR -----------------------------------------------------------------

def test_ccr_avp_codes_in_ccf_order():
    assert [a[0] for a in top(ccr())] == [
        263, 264, 296, 283, 258, 461, 416, 415, 55, 443, 437, 436, 9001]


def test_ccr_values_and_m_bits():
    avps = top(ccr())
    for code, flags, _vendor, _payload in avps[:-1]:
        assert flags == 0x40, code
    assert first(avps, 258)[3] == struct.pack(">I", 4)
    assert first(avps, 416)[3] == struct.pack(">i", 4)
    assert first(avps, 415)[3] == struct.pack(">I", 0)
    assert first(avps, 436)[3] == struct.pack(">i", 1)  # REFUND_ACCOUNT
    assert first(avps, 461)[3] == b"topup@ivoms"
    sub = raw_avps(first(avps, 443)[3])
    assert [(a[0], a[3]) for a in sub] == [(450, b"\0\0\0\0"),
                                           (444, b"46701234567")]
    money = raw_avps(raw_avps(first(avps, 437)[3])[0][3])
    assert [a[0] for a in money] == [445, 425]
    assert money[1][3] == struct.pack(">I", 752)
    unit = raw_avps(money[0][3])
    assert [(a[0], a[3]) for a in unit] == [
        (447, struct.pack(">q", 1250)), (429, struct.pack(">i", -2))]


def test_ccr_optional_destination_host_and_custom_action():
    settings = CreditSettings("ocs.example.net", "svc", "ocs1.ocs.example.net",
                              requested_action=-7)
    avps = top(build_ccr(LOCAL, settings, REQUEST))
    assert first(avps, 293)[3] == b"ocs1.ocs.example.net"
    assert first(avps, 436)[3] == struct.pack(">i", -7)
    assert 9001 not in [a[0] for a in avps]  # no validity AVP configured


@pytest.mark.parametrize("spec, payload", [
    (ValidityAvp(10415, 9001, "Unsigned32"), struct.pack(">I", 30)),
    (ValidityAvp(10415, 9001, "Integer32", mandatory=True),
     struct.pack(">i", 30)),
    (ValidityAvp(10415, 9001, "Time"),
     struct.pack(">I", 0xEB2080A5 + 30 * 86400)),
])
def test_validity_avp_types(spec, payload):
    settings = CreditSettings("r.example", "svc", validity_avps=(spec,))
    code, flags, vendor, got = top(build_ccr(LOCAL, settings, REQUEST))[-1]
    assert (code, vendor, got) == (9001, 10415, payload)
    assert flags == (0xC0 if spec.mandatory else 0x80)


def test_validity_avp_without_vendor_and_without_days():
    settings = CreditSettings("r.example", "svc",
                              validity_avps=(ValidityAvp(0, 5000),))
    assert top(build_ccr(LOCAL, settings, REQUEST))[-1][:3] == (5000, 0, 0)
    no_days = CreditRequest(**{**REQUEST.__dict__, "validity_days": None})
    assert top(build_ccr(LOCAL, settings, no_days))[-1][0] == 436


def test_ccr_round_trips_through_python_diameter():
    msg = Message.from_bytes(ccr())
    assert isinstance(msg, CreditControlRequest)
    assert msg.header.application_id == 4 and msg.header.is_request
    assert msg.session_id == session_id_for("ivoms.example.net", "tx-42")
    assert (msg.cc_request_type, msg.cc_request_number,
            msg.requested_action) == (4, 0, 1)
    assert msg.destination_realm == b"ocs.example.net"
    assert msg.subscription_id[0].subscription_id_data == "46701234567"
    money = msg.requested_service_unit.cc_money
    assert (money.unit_value.value_digits, money.unit_value.exponent,
            money.currency_code) == (1250, -2, 752)
    assert msg.event_timestamp.timestamp() == EVENT.timestamp()


def test_ccr_read_back_by_our_server_side():
    got = read_credit_request(decode_message(ccr()), (VALIDITY,))
    assert (got.key, got.msisdn, got.amount, got.currency_code,
            got.requested_action, got.cc_request_type, got.event_time,
            got.validity) == ("tx-42", "46701234567", decimal.Decimal("12.50"),
                              752, 1, 4, EVENT, (30,))


def test_time_after_2036_wraps_and_reads_back():
    later = datetime.datetime(2040, 6, 1, tzinfo=UTC)
    msg = decode_message(ccr(event_time=later))
    assert msg.get_time(55) == later
    assert first(top(msg.raw), 55)[3][0] < 0x80  # era 1: MSB clear


@pytest.mark.parametrize("changes", [
    {"amount": 1.5}, {"amount": decimal.Decimal("-1")},
    {"amount": decimal.Decimal("NaN")}, {"amount": 2 ** 63},
    {"currency_code": 1000}, {"msisdn": "+4670"}, {"msisdn": "1" * 16},
    {"key": "a;b"}, {"key": ""}, {"key": "x" * 129}, {"key": "tx 1"},
    {"event_time": datetime.datetime(2025, 1, 1)}, {"validity_days": -1},
    {"validity_days": 2 ** 32},
])
def test_ccr_rejects_bad_input(changes):
    with pytest.raises(DiameterEncodeError):
        ccr(**changes)


@pytest.mark.parametrize("kwargs", [
    {"destination_realm": "bad realm", "service_context_id": "s"},
    {"destination_realm": "r", "service_context_id": ""},
    {"destination_realm": "r", "service_context_id": "s",
     "requested_action": 2 ** 31},
])
def test_settings_validate(kwargs):
    with pytest.raises(DiameterEncodeError):
        CreditSettings(**kwargs)


@pytest.mark.parametrize("args", [(1, 2, "Float32"), (-1, 2), (1, 2 ** 32)])
def test_validity_avp_spec_validates(args):
    with pytest.raises(DiameterEncodeError):
        ValidityAvp(*args)


def test_local_identity_validates():
    with pytest.raises(DiameterEncodeError):
        LocalIdentity("h", "r", ())
    with pytest.raises(DiameterEncodeError):
        LocalIdentity("h", "r", ("not-an-ip",))
    with pytest.raises(ValueError):  # DiameterEncodeError is a ValueError
        LocalIdentity("h;x", "r", ("192.0.2.1",))


@pytest.mark.parametrize("amount, exponent, expected", [
    (decimal.Decimal("12.50"), None, (1250, -2)),
    (decimal.Decimal("12.5"), -2, (1250, -2)),
    (10, None, (10, 0)), (10, -2, (1000, -2)),
    (decimal.Decimal("1E+3"), None, (1000, 0)),
    (decimal.Decimal("1500"), 2, (15, 2)),
])
def test_money_digits(amount, exponent, expected):
    assert money_digits(amount, exponent) == expected


def test_money_digits_refuses_rounding():
    with pytest.raises(DiameterEncodeError):
        money_digits(decimal.Decimal("0.125"), -2)


# --- Session-Id scheme -------------------------------------------------------

def test_session_id_scheme_is_deterministic_and_recoverable():
    sid = session_id_for("ivoms.example.net", "tx-42")
    assert sid == "ivoms.example.net;2998585122;1973641132;tx-42"
    assert key_from_session_id(sid) == "tx-42"
    assert key_from_session_id(
        session_id_for("h.example", "a:b@c=d/1")) == "a:b@c=d/1"


@pytest.mark.parametrize("sid", [
    "ivoms.example.net;1;2;tx-42", "ivoms.example.net;tx-42",
    "host;2998585122;1973641132;", "other;1;2;3;4",
])
def test_foreign_session_ids_yield_no_key(sid):
    assert key_from_session_id(sid) is None


# --- identifiers and the T flag ----------------------------------------------

def test_builders_take_identifiers_and_transport_can_restamp():
    data = build_dwr(LOCAL, hop_by_hop=0xFFFFFFFF, end_to_end=5)
    h = read_header(data)
    assert (h.hop_by_hop, h.end_to_end) == (0xFFFFFFFF, 5)
    h2 = read_header(set_identifiers(data, hop_by_hop=9))
    assert (h2.hop_by_hop, h2.end_to_end) == (9, 5)
    with pytest.raises(DiameterEncodeError):
        build_dwr(LOCAL, hop_by_hop=2 ** 32)
    with pytest.raises(DiameterEncodeError):
        set_identifiers(data[:-4], end_to_end=1)


def test_mark_retransmission_sets_t_keeps_end_to_end():
    data = ccr()
    again = mark_retransmission(data, hop_by_hop=77)
    h = read_header(again)
    assert h.flags == 0xD0 and h.is_retransmit
    assert (h.hop_by_hop, h.end_to_end) == (77, 4)
    assert again[20:] == data[20:]
    assert not read_header(data).is_retransmit
    with pytest.raises(DiameterEncodeError):
        mark_retransmission(build_dwa(decode_message(build_dwr(LOCAL)), OCS))


# --- answers: ours, and python-diameter's parsed by ours ---------------------

def test_python_diameter_defects_we_avoid():
    """python-diameter 0.9 behaviour the builders must not inherit."""
    assert CreditControlRequest().header.application_id == 0
    assert CreditControlAnswer().header.application_id == 0
    dropped = CreditControlAnswer()
    dropped.experimental_result = "ignored"  # no such AVP definition
    assert 297 not in [a.code for a in dropped.avps]
    req = Message.from_bytes(ccr())
    assert req.to_answer().session_id is None
    pd_ccr = CreditControlRequest()
    pd_ccr.session_id, pd_ccr.origin_host, pd_ccr.origin_realm = \
        "s", b"h.example", b"example"
    pd_ccr.destination_realm, pd_ccr.service_context_id = b"r", "x"
    pd_ccr.cc_request_type, pd_ccr.cc_request_number = 4, 0
    assert first(top(pd_ccr.as_bytes()), 264)[1] == 0x00  # M missing
    # ...while ours: app 4, M set, Session-Id copied into the answer
    ours = decode_message(ccr())
    assert ours.header.application_id == 4
    assert first(top(ours.raw), 264)[1] == 0x40
    assert decode_message(build_cca(ours, OCS, 2001)).session_id == \
        ours.session_id


def test_our_cca_header_and_avps():
    req = decode_message(ccr())
    answer = build_cca(req, OCS, 2001)
    h = read_header(answer)
    assert (h.flags, h.command_code, h.application_id, h.hop_by_hop,
            h.end_to_end) == (0x40, 272, 4, 3, 4)
    avps = top(answer)
    assert [a[0] for a in avps] == [263, 268, 264, 296, 258, 416, 415]
    assert [a[1] for a in avps] == [0x40] * 7
    assert credit_outcome(decode_message(answer), req.session_id).is_success


def test_experimental_only_cca_and_e_bit():
    req = decode_message(ccr())
    msg = decode_message(build_cca(req, OCS, None, experimental=(10415, 5030)))
    assert msg.result_code is None
    assert (msg.experimental_result.vendor_id,
            msg.experimental_result.code) == (10415, 5030)
    assert [a[0] for a in raw_avps(first(top(msg.raw), 297)[3])] == [266, 298]
    assert credit_outcome(msg).result is ResultCode.SUBSCRIBER_UNKNOWN
    busy = build_cca(req, OCS, 3004)
    assert read_header(busy).flags == 0x60  # P + E for a protocol error
    assert credit_outcome(decode_message(busy)).is_unknown


def pd_cca(result_code=None, experimental=None, session_id="s;1;2;k"):
    answer = CreditControlAnswer()
    answer.header.hop_by_hop_identifier = 3
    answer.session_id = session_id
    answer.origin_host, answer.origin_realm = b"ocs.example", b"example"
    answer.cc_request_type, answer.cc_request_number = 4, 0
    answer.result_code = result_code
    if experimental:  # CreditControlAnswer has no attribute for it
        answer.append_avp(Avp.new(297, value=[
            Avp.new(266, value=experimental[0]),
            Avp.new(298, value=experimental[1])]))
    return answer.as_bytes()


def test_python_diameter_cca_parsed_by_us():
    msg = decode_message(pd_cca(2001))
    assert (msg.session_id, msg.result_code, msg.origin_host,
            msg.header.hop_by_hop) == ("s;1;2;k", 2001, "ocs.example", 3)
    assert credit_outcome(msg, "s;1;2;k").is_success
    wrong = credit_outcome(msg, "s;1;2;other")
    assert wrong.is_unknown and "does not match" in wrong.reason
    exp = decode_message(pd_cca(experimental=(10415, 5030)))
    assert credit_outcome(exp).result is ResultCode.SUBSCRIBER_UNKNOWN
    assert msg.find_path(264)[0].payload == b"ocs.example"


def test_python_diameter_cea_and_dwa_parsed_by_us():
    cea = CapabilitiesExchangeAnswer()
    cea.result_code, cea.origin_host, cea.origin_realm = 2001, b"o.ex", b"ex"
    cea.host_ip_address, cea.vendor_id = ["192.0.2.1"], 10415
    cea.product_name, cea.auth_application_id = "OCS", [4]
    caps = parse_capabilities(decode_message(cea.as_bytes()))
    assert (caps.origin_host, caps.result_code, caps.host_ip_addresses,
            caps.vendor_id, caps.product_name) == \
        ("o.ex", 2001, ("192.0.2.1",), 10415, "OCS")
    assert caps.supports_credit_control
    dwa = DeviceWatchdogAnswer()
    dwa.result_code, dwa.origin_host, dwa.origin_realm = 2001, b"o.ex", b"ex"
    assert decode_message(dwa.as_bytes()).result_code == 2001


def test_our_cea_dwa_dpa():
    cer = decode_message(build_cer(LOCAL, hop_by_hop=8, end_to_end=9))
    caps = parse_capabilities(cer)
    assert caps.auth_application_ids == {4} and caps.origin_state_id == 7
    cea = decode_message(build_cea(cer, OCS))
    assert (cea.header.flags, cea.header.hop_by_hop, cea.header.end_to_end,
            cea.header.application_id) == (0, 8, 9, 0)
    assert parse_capabilities(cea).supports_credit_control
    for req, build in ((build_dwr(LOCAL), build_dwa),
                       (build_dpr(LOCAL), build_dpa)):
        answer = decode_message(build(decode_message(req), OCS))
        assert answer.result_code == 2001 and not answer.header.is_request
        assert [a[:2] for a in top(answer.raw)] == [(268, 0x40), (264, 0x40),
                                                    (296, 0x40)]


# --- result mapping ----------------------------------------------------------

@pytest.mark.parametrize("code, outcome, result", [
    (2001, Outcome.SUCCESS, 0),
    (5030, Outcome.REJECTED, 102),
    (4012, Outcome.REJECTED, 115), (4010, Outcome.REJECTED, 115),
    (5003, Outcome.REJECTED, 115), (5031, Outcome.REJECTED, 115),
    (4001, Outcome.REJECTED, 115), (5005, Outcome.REJECTED, 115),
    (3002, Outcome.UNKNOWN, 151), (3004, Outcome.UNKNOWN, 151),
    (5012, Outcome.UNKNOWN, 151), (3001, Outcome.UNKNOWN, 151),
    (2002, Outcome.UNKNOWN, 151), (1001, Outcome.UNKNOWN, 151),
    (6000, Outcome.UNKNOWN, 151), (0, Outcome.UNKNOWN, 151),
])
def test_result_mapping_table(code, outcome, result):
    got = map_result(code)
    assert (got.outcome, got.result, got.diameter_code) == \
        (outcome, result, code)
    assert map_result(code, 10415).outcome is outcome


@pytest.mark.parametrize("result_code, experimental, expected", [
    (2001, (10415, 5030), 102),      # any rejection beats success
    (5012, (10415, 5030), 102),      # ...and beats unknown
    (4012, (10415, 5030), 102),      # the Experimental-Result is more specific
    (2001, (10415, 3002), 151),      # success needs every result to agree
    (None, None, 151),               # no result at all
])
def test_combined_results(result_code, experimental, expected):
    assert credit_outcome(decode_message(
        pd_cca(result_code, experimental))).result == expected


def test_credit_outcome_of_wrong_messages_is_unknown():
    assert credit_outcome(decode_message(ccr())).is_unknown
    dwa = decode_message(build_dwa(decode_message(build_dwr(LOCAL)), OCS))
    assert credit_outcome(dwa).is_unknown
