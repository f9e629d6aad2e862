"""Tests of the MAP USSD and TCAP codecs (3GPP TS 29.002 §7.6.7, §17.7; ITU-T Q.773),
with interop against pycrate's independent MAP / TCAP-MAP ASN.1 in both directions."""

import random

import pytest

from protocols.ussd.gsm7 import decode_ussd
from protocols.ussd.errors import (GeneralProblem, InvokeProblem, MapError, PAbortCause,
                                   ProblemType, UssdDecodeError, UssdEncodeError)
from protocols.ussd.map import (IsdnAddress, UssdRequest, answer_dialogue,
                                decode_isdn_address,
                                decode_map_argument, decode_ussd_res, encode_isdn_address,
                                encode_ussd_arg, encode_ussd_notify_arg,
                                encode_ussd_request_arg, encode_ussd_res, error_component)
from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as USSD_AC
from protocols.ussd.tcap import (Dialogue, Invoke, Reject, ReturnError, ReturnResult,
                                 TcapMessage, decode_tcap, encode_tcap)

pycrate_tcap = pytest.importorskip("pycrate_asn1dir.TCAP_MAP")
PC_MESSAGE = pycrate_tcap.TCAP_MAP_Messages.TCAP_MAP_Message
PC_USSD_ARG = pycrate_tcap.MAP_SS_DataTypes.USSD_Arg
PC_USSD_RES = pycrate_tcap.MAP_SS_DataTypes.USSD_Res

DIALOGUE_AS = (0, 0, 17, 773, 1, 1, 1)
MAP_DIALOGUE_AS = (0, 4, 0, 0, 1, 1, 1, 1)

# Hand-checked: SEQUENCE { OCTET STRING 0F, OCTET STRING "*100#" packed }.
USSD_ARG_100 = bytes.fromhex("300a04010f0405aa180c3602")
# ...plus msisdn [0] IMPLICIT 91 72 28 21 43 65 F7 (+27821234567, filler F).
USSD_ARG_100_MSISDN = bytes.fromhex("301304010f0405aa180c360280079172282143" "65f7")


def pycrate_begin(argument=None, opcode=59, user_info=True):
    """A TCAP Begin built by pycrate: AARQ for the USSD context and one Invoke."""
    aarq = {"protocol-version": (1, 1), "application-context-name": USSD_AC}
    if user_info:
        aarq["user-information"] = [{
            "direct-reference": MAP_DIALOGUE_AS,
            "encoding": ("single-ASN1-type", ("MAP-DialoguePDU", ("map-open", {
                "destinationReference": b"\x91\x72\x28", "originationReference":
                b"\x91\x72\x28\x01"})))}]
    argument = argument or {"ussd-DataCodingScheme": b"\x0f",
                            "ussd-String": bytes.fromhex("aa986ca6a2d56cb711"),
                            "msisdn": bytes.fromhex("917228214365f7")}
    PC_MESSAGE.set_val(("begin", {
        "otid": b"\x00\x01\x02\x03",
        "dialoguePortion": {
            "direct-reference": DIALOGUE_AS,
            "encoding": ("single-ASN1-type", ("DialoguePDU", ("dialogueRequest", aarq)))},
        "components": [("basicROS", ("invoke", {
            "invokeId": ("present", 1), "opcode": ("local", opcode),
            "argument": ("USSD-Arg", argument)}))]}))
    return PC_MESSAGE.to_ber()


def pycrate_decode(data):
    PC_MESSAGE.from_ber(data)
    return PC_MESSAGE.get_val()


# --- ISDN-AddressString ------------------------------------------------------------------

def test_isdn_address_vectors():
    assert encode_isdn_address("+27821234567").hex() == "917228214365f7"
    assert encode_isdn_address("0821234567", nature=2).hex() == "a18012325476"
    assert encode_isdn_address("*#12abc").hex() == "91ba21dcfe"
    assert decode_isdn_address(bytes.fromhex("917228214365f7")) == \
        IsdnAddress("27821234567", 1, 1)
    assert str(decode_isdn_address(bytes.fromhex("917228214365f7"))) == "+27821234567"
    assert decode_isdn_address(b"\x81") == IsdnAddress("", 0, 1)
    address = IsdnAddress("12345", 4, 9)
    assert decode_isdn_address(encode_isdn_address(address)) == address


@pytest.mark.parametrize("octets", ["", "91f721", "11" "21", "91" + "11" * 9])
def test_isdn_address_bad(octets):
    with pytest.raises(UssdDecodeError) as info:
        decode_isdn_address(bytes.fromhex(octets))
    assert info.value.map_error == MapError.UNEXPECTED_DATA_VALUE


@pytest.mark.parametrize("digits", ["", "12-3", "1" * 17, "+"])
def test_isdn_address_encode_bad(digits):
    with pytest.raises(UssdEncodeError):
        encode_isdn_address(digits)


# --- USSD-Arg / USSD-Res -----------------------------------------------------------------

def test_ussd_arg_vectors():
    assert encode_ussd_arg("*100#") == USSD_ARG_100
    assert encode_ussd_arg("*100#", msisdn="+27821234567") == USSD_ARG_100_MSISDN
    assert encode_ussd_request_arg("*100#") == encode_ussd_notify_arg("*100#")
    assert decode_map_argument(59, USSD_ARG_100_MSISDN) == UssdRequest(
        59, 0x0F, "*100#", IsdnAddress("27821234567"))
    assert encode_ussd_res("*100#") == USSD_ARG_100


def test_ussd_arg_from_pycrate():
    PC_USSD_ARG.set_val({"ussd-DataCodingScheme": b"\x0f",
                         "ussd-String": bytes.fromhex("aa986ca6a2d56cb711"),
                         "alertingPattern": b"\x05",
                         "msisdn": bytes.fromhex("917228214365f7")})
    request = decode_map_argument(59, PC_USSD_ARG.to_ber())
    assert (request.text, str(request.msisdn), request.alerting_pattern) == \
        ("*123*4567#", "+27821234567", 5)


@pytest.mark.parametrize("text", ["*123*1234567890123456#", "Ваш баланс: 10 €", "x" * 182])
def test_ussd_res_and_arg_to_pycrate(text):
    PC_USSD_RES.from_ber(encode_ussd_res(text))
    res = PC_USSD_RES.get_val()
    assert decode_ussd_res(PC_USSD_RES.to_ber()).text == text
    PC_USSD_ARG.from_ber(encode_ussd_arg(text, msisdn="+255700000001", alerting_pattern=1))
    arg = PC_USSD_ARG.get_val()
    assert arg["ussd-DataCodingScheme"] == res["ussd-DataCodingScheme"]
    assert arg["ussd-String"] == res["ussd-String"]
    assert arg["msisdn"] == bytes.fromhex("91527500000010")
    assert arg["alertingPattern"] == b"\x01"


def test_argument_with_extensions_decodes():
    # Unknown trailing elements after the '...': an extension container (SEQUENCE of a
    # privateExtensionList), a high-tag-number element and a constructed [5].
    tail = bytes.fromhex("300ca00a300806032a03040401ff" "9f2001aa" "a503020101")
    data = bytes((0x30, len(USSD_ARG_100_MSISDN) - 2 + len(tail))) \
        + USSD_ARG_100_MSISDN[2:] + tail
    assert decode_map_argument(60, data).text == "*100#"
    # Unknown element between two known optional extension additions.
    data = bytes.fromhex("301704010f0405aa180c3602" "9f2001aa" "8007917228214365f7")
    assert str(decode_map_argument(61, data).msisdn) == "+27821234567"
    # Indefinite length outer SEQUENCE.
    data = bytes.fromhex("308004010f0405aa180c36020000")
    assert decode_map_argument(59, data).text == "*100#"


def reject_of(excinfo):
    return excinfo.value.reject


@pytest.mark.parametrize("data", [
    "300b04020f0f0405aa180c3602",        # DCS of two octets
    "300904000405aa180c3602",            # DCS of zero octets
    "300a04010f0405aa180c36",            # truncated
    "310a04010f0405aa180c3602",          # SET, not SEQUENCE
    "300a02010f0405aa180c3602",          # INTEGER where the DCS should be
    "30079f200100040100",                # unknown element before mandatory ones
    "300304010f",                        # ussd-String missing
    "300a04010f0405aa180c3602ff",        # trailing garbage
])
def test_malformed_argument_is_mistyped_parameter(data):
    with pytest.raises(UssdDecodeError) as info:
        decode_map_argument(59, bytes.fromhex(data))
    assert reject_of(info) == (ProblemType.INVOKE, InvokeProblem.MISTYPED_PARAMETER)


def test_oversize_ussd_string():
    body = bytes((0x04, 0x01, 0x0F, 0x04, 0x81, 161)) + b"\x41" * 161
    data = bytes((0x30, 0x81, len(body))) + body
    with pytest.raises(UssdDecodeError) as info:
        decode_map_argument(59, data)
    assert reject_of(info) == (ProblemType.INVOKE, InvokeProblem.MISTYPED_PARAMETER)
    with pytest.raises(UssdEncodeError):
        encode_ussd_res("x" * 183)


def test_argument_value_errors():
    with pytest.raises(UssdDecodeError) as info:
        decode_map_argument(59, bytes.fromhex("3006040180040141"))
    assert info.value.map_error == MapError.UNKNOWN_ALPHABET
    with pytest.raises(UssdDecodeError) as info:
        decode_map_argument(59, None)
    assert info.value.map_error == MapError.DATA_MISSING
    with pytest.raises(UssdDecodeError) as info:
        decode_map_argument(46, USSD_ARG_100)
    assert reject_of(info) == (ProblemType.INVOKE, InvokeProblem.UNRECOGNIZED_OPERATION)
    with pytest.raises(UssdDecodeError) as info:  # UCS-2 string of odd length
        decode_map_argument(59, bytes.fromhex("30080401480403" "0041ff"))
    assert info.value.map_error == MapError.UNEXPECTED_DATA_VALUE


def test_every_truncation_of_an_argument_fails_cleanly():
    for cut in range(len(USSD_ARG_100_MSISDN)):
        with pytest.raises(UssdDecodeError):
            decode_map_argument(59, USSD_ARG_100_MSISDN[:cut])


# --- TCAP ---------------------------------------------------------------------------------

def test_pycrate_begin_is_decoded():
    message = decode_tcap(pycrate_begin())
    assert (message.kind, message.otid, message.dtid) == \
        ("begin", b"\x00\x01\x02\x03", None)
    assert message.dialogue.kind == "request"
    assert message.dialogue.application_context == USSD_AC
    assert len(message.dialogue.user_information) == 1
    [invoke] = message.components
    assert (invoke.invoke_id, invoke.opcode) == (1, 59)
    request = decode_map_argument(invoke.opcode, invoke.parameter)
    assert (request.text, str(request.msisdn)) == ("*123*4567#", "+27821234567")


def test_pycrate_continue_with_result_is_decoded():
    PC_MESSAGE.set_val(("continue", {
        "otid": b"\x00\x01\x02\x03", "dtid": b"\x0a",
        "components": [("basicROS", ("returnResult", {
            "invokeId": ("present", 2), "result": {
                "opcode": ("local", 60), "result": ("USSD-Res", {
                    "ussd-DataCodingScheme": b"\x0f", "ussd-String": b"\x31"})}}))]}))
    message = decode_tcap(PC_MESSAGE.to_ber())
    [result] = message.components
    assert (result.invoke_id, result.opcode, result.last) == (2, 60, True)
    assert decode_ussd_res(result.parameter).text == "1"


def test_end_with_result_to_pycrate():
    text = "Recharged 10.00. Balance 12.50"
    answer = Dialogue("response", application_context=USSD_AC, result=0,
                      diagnostic=("user", 0))
    result = ReturnResult(1, 59, encode_ussd_res(text))
    data = encode_tcap(TcapMessage("end", dtid=b"\x00\x01\x02\x03", dialogue=answer,
                                   components=(result,)))
    kind, value = pycrate_decode(data)
    assert kind == "end" and value["dtid"] == b"\x00\x01\x02\x03"
    aare = value["dialoguePortion"]["encoding"][1][1]
    assert aare[0] == "dialogueResponse"
    assert aare[1]["application-context-name"] == USSD_AC
    assert aare[1]["result"] == 0
    assert aare[1]["result-source-diagnostic"] == ("dialogue-service-user", 0)
    ros = value["components"][0][1]
    assert ros[0] == "returnResult"
    assert ros[1]["invokeId"] == ("present", 1)
    assert ros[1]["result"]["opcode"] == ("local", 59)
    res = ros[1]["result"]["result"]
    assert res[0] == "USSD-Res"
    assert decode_ussd(res[1]["ussd-DataCodingScheme"][0], res[1]["ussd-String"]) == text


def test_continue_with_request_invoke_to_pycrate():
    menu = "1. Recharge\n2. Balance"
    invoke = Invoke(2, 60, encode_ussd_request_arg(menu))
    data = encode_tcap(TcapMessage("continue", otid=b"\x0a", dtid=b"\x00\x01\x02\x03",
                                   components=(invoke,)))
    kind, value = pycrate_decode(data)
    assert (kind, value["otid"], value["dtid"]) == \
        ("continue", b"\x0a", b"\x00\x01\x02\x03")
    ros = value["components"][0][1]
    assert ros[0] == "invoke"
    assert (ros[1]["invokeId"], ros[1]["opcode"]) == (("present", 2), ("local", 60))
    assert ros[1]["argument"][0] == "USSD-Arg"
    arg = ros[1]["argument"][1]
    assert decode_ussd(arg["ussd-DataCodingScheme"][0], arg["ussd-String"]) == menu


def test_aborts_errors_and_rejects_to_pycrate():
    kind, value = pycrate_decode(encode_tcap(TcapMessage("abort", dtid=b"\x01",
                                                         abort_cause=2)))
    assert (kind, value["reason"]) == ("abort", ("p-abortCause", 2))
    kind, value = pycrate_decode(encode_tcap(TcapMessage(
        "abort", dtid=b"\x01", dialogue=Dialogue("abort", abort_source=0))))
    assert value["reason"][1]["encoding"][1][1] == ("dialogueAbort", {"abort-source": 0})
    components = (ReturnError(1, 71), Reject(None, ProblemType.GENERAL, 2),
                  Reject(3, ProblemType.INVOKE, 2), ReturnResult(4))
    data = encode_tcap(TcapMessage("end", dtid=b"\x01", components=components))
    kind, value = pycrate_decode(data)
    assert [c[1] for c in value["components"]] == [
        ("returnError", {"invokeId": ("present", 1), "errcode": ("local", 71)}),
        ("reject", {"invokeId": ("absent", 0), "problem": ("general", 2)}),
        ("reject", {"invokeId": ("present", 3), "problem": ("invoke", 2)}),
        ("returnResult", {"invokeId": ("present", 4)})]
    assert decode_tcap(data).components == components


def test_round_trip_keeps_user_information():
    message = decode_tcap(pycrate_begin())
    again = decode_tcap(encode_tcap(message))
    assert again == message


def test_other_dialogue_and_unidirectional():
    # An EXTERNAL for the unidialogue abstract syntax (AUDT) is kept whole.
    audt = bytes.fromhex("600f" "80020780" "a109060704000001001302")
    external = bytes.fromhex("281c" "060700118605010201" "a011") + audt
    body = b"\x6b\x1e" + external + bytes.fromhex("6c05" "a103020101")
    with pytest.raises(UssdDecodeError) as info:  # an Invoke without its opcode
        decode_tcap(bytes((0x61, len(body))) + body)
    assert info.value.reject == (ProblemType.GENERAL,
                                 GeneralProblem.BADLY_STRUCTURED_COMPONENT)
    assert info.value.invoke_id == 1
    components = (Invoke(0, 61, encode_ussd_notify_arg("Hello")),)
    message = TcapMessage("unidirectional", dialogue=Dialogue("other", raw=external),
                          components=components)
    decoded = decode_tcap(encode_tcap(message))
    assert decoded.dialogue.kind == "other" and decoded.dialogue.raw == external
    assert decoded.components == components
    kind, value = pycrate_decode(encode_tcap(message))
    assert kind == "unidirectional"
    assert value["dialoguePortion"]["direct-reference"] == (0, 0, 17, 773, 1, 2, 1)


def test_indefinite_length_begin():
    # Begin, dialogue portion and component portion all with indefinite lengths.
    eoc = b"\x00\x00"
    otid = bytes.fromhex("480401020304")
    external = bytes.fromhex("281c060700118605010101a011600f80020780a109060704000001001302")
    invoke = bytes.fromhex("a115020101" "02013b" "300d04010f0405aa180c3602800191")
    data = (b"\x62\x80" + otid + b"\x6b\x80" + external + eoc
            + b"\x6c\x80" + invoke + eoc + eoc)
    message = decode_tcap(data)
    assert message.dialogue.application_context == USSD_AC
    request = decode_map_argument(59, message.components[0].parameter)
    assert (request.text, request.msisdn) == ("*100#", IsdnAddress("", 1, 1))


def test_tcap_tolerates_unknown_trailing_elements():
    begin = bytearray(pycrate_begin())
    extra = bytes.fromhex("9f3f0100")
    begin[1] += len(extra)
    assert decode_tcap(bytes(begin) + extra).components[0].opcode == 59


@pytest.mark.parametrize("data, cause", [
    ("6300", PAbortCause.UNRECOGNIZED_MESSAGE_TYPE),
    ("", PAbortCause.UNRECOGNIZED_MESSAGE_TYPE),
    ("6200", PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
    ("6207480501020304056c00", PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
    ("6505480101", PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
    ("620a4801016b05280306010a", PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
])
def test_transaction_portion_errors_abort(data, cause):
    with pytest.raises(UssdDecodeError) as info:
        decode_tcap(bytes.fromhex(data))
    assert info.value.abort_cause == cause


def test_component_errors_reject_with_otid():
    with pytest.raises(UssdDecodeError) as info:
        decode_tcap(bytes.fromhex("620a480107" "6c05a503020101"))
    assert info.value.reject == (ProblemType.GENERAL, GeneralProblem.UNRECOGNIZED_COMPONENT)
    assert info.value.otid == b"\x07"
    with pytest.raises(UssdDecodeError) as info:
        decode_tcap(bytes.fromhex("620d480107" "6c08a106020105050101"))
    assert info.value.reject == (ProblemType.GENERAL,
                                 GeneralProblem.BADLY_STRUCTURED_COMPONENT)
    assert (info.value.otid, info.value.invoke_id) == (b"\x07", 5)


def test_error_component():
    try:
        decode_map_argument(59, bytes.fromhex("3006040144040141"))
    except UssdDecodeError as exc:
        assert error_component(exc, 4) == ReturnError(4, 71)
    try:
        decode_map_argument(3, b"")
    except UssdDecodeError as exc:
        assert error_component(exc, 4) == Reject(4, ProblemType.INVOKE, 1)
    try:
        decode_tcap(b"\x63\x00")
    except UssdDecodeError as exc:
        assert error_component(exc, None) is None
    assert error_component(UssdDecodeError("x", map_error=36), None) == \
        Reject(None, ProblemType.GENERAL, GeneralProblem.MISTYPED_COMPONENT)


@pytest.mark.parametrize("message", [
    TcapMessage("begin"),
    TcapMessage("continue", otid=b"\x01"),
    TcapMessage("end", dtid=b"\x01\x02\x03\x04\x05"),
    TcapMessage("end", dtid=b"\x01", components=(Invoke(200, 59),)),
    TcapMessage("end", dtid=b"\x01", components=("junk",)),
    TcapMessage("end", dtid=b"\x01", components=(ReturnResult(1, None, b"\x05\x00"),)),
    TcapMessage("end", dtid=b"\x01", dialogue=Dialogue("response")),
    TcapMessage("bogus"),
])
def test_encode_errors(message):
    with pytest.raises(UssdEncodeError):
        encode_tcap(message)


def test_every_truncation_of_a_message_fails_cleanly():
    for data in (pycrate_begin(), encode_tcap(TcapMessage(
            "end", dtid=b"\x01\x02", dialogue=Dialogue("response", USSD_AC, 0, ("user", 0)),
            components=(ReturnResult(1, 59, encode_ussd_res("ok")),)))):
        for cut in range(len(data)):
            with pytest.raises(UssdDecodeError):
                decode_tcap(data[:cut])


def _mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        pos = rng.randrange(len(data)) if data else 0
        if op == 0 and data:
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and data:
            data[pos] = rng.choice((0x00, 0x01, 0x1F, 0x30, 0x7F, 0x80, 0x81, 0x84, 0xFF,
                                    rng.randrange(256)))
        elif op == 2:
            data.insert(pos, rng.randrange(256))
        elif op == 3 and data:
            del data[pos:pos + rng.randint(1, 4)]
        else:
            data = data[:pos] + data[pos:pos + 8] * 2 + data[pos + 8:]
    return bytes(data)


def test_mutation_fuzz_only_our_error_escapes():
    rng = random.Random(29002)
    seeds = [pycrate_begin(), USSD_ARG_100_MSISDN,
             encode_tcap(TcapMessage("continue", otid=b"\x0a", dtid=b"\x00\x01",
                                     dialogue=Dialogue("response", USSD_AC, 0, ("user", 0)),
                                     components=(Invoke(2, 60, encode_ussd_request_arg(
                                         "Menu Ж")),)))]
    decoded = 0
    for _ in range(1500):
        for seed in seeds:
            data = _mutate(rng, seed)
            try:
                message = decode_tcap(data)
                for component in message.components:
                    if isinstance(component, Invoke):
                        decode_map_argument(component.opcode, component.parameter)
                decoded += 1
            except UssdDecodeError:
                pass
            try:
                decode_map_argument(59, data)
                decode_ussd_res(data)
            except UssdDecodeError:
                pass
    assert decoded > 0  # some mutations (e.g. of message text) still decode


def test_answer_dialogue():
    request = decode_tcap(pycrate_begin()).dialogue
    accepted = answer_dialogue(request)
    assert (accepted.kind, accepted.application_context, accepted.result) == \
        ("response", USSD_AC, 0)
    v1 = Dialogue("request", application_context=(0, 4, 0, 0, 1, 0, 19, 1))
    refused = answer_dialogue(v1)
    assert (refused.application_context, refused.result, refused.diagnostic) == \
        (USSD_AC, 1, ("user", 2))
    assert answer_dialogue(None) is None
    kind, value = pycrate_decode(encode_tcap(TcapMessage("abort", dtid=b"\x01",
                                                         dialogue=refused)))
    aare = value["reason"][1]["encoding"][1][1][1]
    assert (aare["result"], aare["result-source-diagnostic"]) == \
        (1, ("dialogue-service-user", 2))
