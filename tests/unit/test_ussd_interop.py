"""Interop with pycrate through the HTTP bridge, both directions (issue 6, item 5):
TCAP Begins, Continues and bare USSD-Args that pycrate's independent TCAP-MAP ASN.1
encodes are served by C{POST /ussd} over the real core, and pycrate decodes every
answer -- results, menus, MAP errors, rejects and aborts."""

from __future__ import annotations

import base64

import pytest
import pytest_twisted

from protocols.ussd.gsm7 import decode_ussd, encode_ussd
from protocols.ussd.map import encode_ussd_arg
from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as USSD_AC
from protocols.ussd.tcap import Invoke, TcapMessage, encode_tcap
from tests.unit.test_ussd_http import (E164, SUCCESS, post_ber, post_json,  # noqa: F401
                                       ussd)
from tests.helpers import credited_entries, txn_rows

pycrate_tcap = pytest.importorskip("pycrate_asn1dir.TCAP_MAP")
PC_MESSAGE = pycrate_tcap.TCAP_MAP_Messages.TCAP_MAP_Message
PC_USSD_ARG = pycrate_tcap.MAP_SS_DataTypes.USSD_Arg
PC_USSD_RES = pycrate_tcap.MAP_SS_DataTypes.USSD_Res

DIALOGUE_AS = (0, 0, 17, 773, 1, 1, 1)
MAP_DIALOGUE_AS = (0, 4, 0, 0, 1, 1, 1, 1)
OTID = b"\x11\x22\x33\x44"
MSISDN_TBCD = bytes.fromhex("91836114325476")      # +381641234567


def gsm(text):
    dcs, octets = encode_ussd(text)
    return bytes((dcs,)), octets


def pc_begin(text=None, *, dcs=None, octets=None, msisdn=MSISDN_TBCD, opcode=59,
             context=USSD_AC, invoke_id=1):
    """A TCAP Begin encoded by pycrate: AARQ with MAP-OpenInfo, one Invoke."""
    if text is not None:
        dcs, octets = gsm(text)
    argument = {"ussd-DataCodingScheme": dcs, "ussd-String": octets}
    if msisdn is not None:
        argument["msisdn"] = msisdn
    PC_MESSAGE.set_val(("begin", {
        "otid": OTID,
        "dialoguePortion": {
            "direct-reference": DIALOGUE_AS,
            "encoding": ("single-ASN1-type", ("DialoguePDU", ("dialogueRequest", {
                "protocol-version": (1, 1), "application-context-name": context,
                "user-information": [{
                    "direct-reference": MAP_DIALOGUE_AS,
                    "encoding": ("single-ASN1-type", ("MAP-DialoguePDU", ("map-open", {
                        "destinationReference": b"\x91\x83\x61",
                        "originationReference": b"\x91\x83\x61\x01"})))}]})))},
        "components": [("basicROS", ("invoke", {
            "invokeId": ("present", invoke_id), "opcode": ("local", opcode),
            "argument": ("USSD-Arg", argument)}))]}))
    return PC_MESSAGE.to_ber()


def pc_continue(text, dtid, invoke_id):
    """The subscriber's answer encoded by pycrate: a ReturnResultLast of our Invoke 60."""
    dcs, octets = gsm(text)
    PC_MESSAGE.set_val(("continue", {
        "otid": OTID, "dtid": dtid,
        "components": [("basicROS", ("returnResult", {
            "invokeId": ("present", invoke_id), "result": {
                "opcode": ("local", 60), "result": ("USSD-Res", {
                    "ussd-DataCodingScheme": dcs, "ussd-String": octets})}}))]}))
    return PC_MESSAGE.to_ber()


def pc_decode(data):
    PC_MESSAGE.from_ber(data)
    return PC_MESSAGE.get_val()


def ros_of(value):
    """The single component of a decoded message, as C{(kind, body)}."""
    (component,) = value["components"]
    assert component[0] == "basicROS"
    return component[1]


def text_of(arg):
    return decode_ussd(arg["ussd-DataCodingScheme"][0], arg["ussd-String"])


def aare_of(value):
    pdu = value["dialoguePortion"]["encoding"][1][1]
    assert pdu[0] == "dialogueResponse"
    return pdu[1]


@pytest_twisted.ensureDeferred
async def test_pycrate_begin_with_direct_code(ussd):
    r = await post_ber(ussd.url, pc_begin("*123*%s#" % ussd.hrn()), dialogue_id="pc-1")
    kind, value = pc_decode(r.body)
    assert kind == "end" and value["dtid"] == OTID
    aare = aare_of(value)
    assert (aare["application-context-name"], aare["result"],
            aare["result-source-diagnostic"]) == (USSD_AC, 0, ("dialogue-service-user", 0))
    op, body = ros_of(value)
    assert op == "returnResult" and body["invokeId"] == ("present", 1)
    assert body["result"]["opcode"] == ("local", 59)
    assert body["result"]["result"][0] == "USSD-Res"
    assert text_of(body["result"]["result"][1]).startswith(SUCCESS)
    assert [m for _, m, _ in credited_entries(ussd.store)] == [E164]
    assert txn_rows(ussd.store)[0]["channel_ref"] == "pc-1"


@pytest_twisted.ensureDeferred
async def test_pycrate_menu_dialogue(ussd):
    r = await post_ber(ussd.url, pc_begin("*123#"))
    kind, value = pc_decode(r.body)
    assert kind == "continue" and value["dtid"] == OTID and len(value["otid"]) == 4
    ours = value["otid"]
    assert aare_of(value)["result"] == 0
    op, body = ros_of(value)
    assert (op, body["opcode"]) == ("invoke", ("local", 60))
    assert body["argument"][0] == "USSD-Arg"
    assert text_of(body["argument"][1]).startswith("Recharge\n1 Recharge my number")
    r = await post_ber(ussd.url, pc_continue("2", ours, body["invokeId"][1]))
    kind, value = pc_decode(r.body)
    assert kind == "continue" and "dialoguePortion" not in value
    op, body = ros_of(value)
    assert text_of(body["argument"][1]) == "Enter the phone number to recharge:"
    r = await post_ber(ussd.url, pc_continue("0647654321", ours, body["invokeId"][1]))
    op, body = ros_of(pc_decode(r.body)[1])
    r = await post_ber(ussd.url, pc_continue(ussd.hrn(), ours, body["invokeId"][1]))
    kind, value = pc_decode(r.body)
    assert kind == "end" and value["dtid"] == OTID
    op, body = ros_of(value)
    assert op == "returnResult" and body["invokeId"] == ("present", 1)
    assert text_of(body["result"]["result"][1]).startswith("0647654321 was credited")
    assert [m for _, m, _ in credited_entries(ussd.store)] == ["381647654321"]


@pytest_twisted.ensureDeferred
async def test_pycrate_bare_argument_in_json(ussd):
    dcs, octets = gsm("*123*%s#" % ussd.hrn())
    PC_USSD_ARG.set_val({"ussd-DataCodingScheme": dcs, "ussd-String": octets,
                         "alertingPattern": b"\x05", "msisdn": MSISDN_TBCD})
    r = await post_json(ussd.url, {"dialogue_id": "pc-3", "operation": "begin",
                                   "map": base64.b64encode(PC_USSD_ARG.to_ber()).decode()})
    doc = r.json()
    assert (doc["operation"], doc["component"], doc["opcode"]) == ("end", "result", 59)
    PC_USSD_RES.from_ber(base64.b64decode(doc["map"]))
    assert text_of(PC_USSD_RES.get_val()) == doc["text"] and doc["text"].startswith(SUCCESS)


@pytest_twisted.ensureDeferred
async def test_pycrate_ucs2_menu_answer(ussd):
    r = await post_ber(ussd.url, pc_begin("*123#"))
    kind, value = pc_decode(r.body)
    op, body = ros_of(value)
    # the handset answers in UCS-2: still understood
    r = await post_ber(ussd.url, pc_continue("Ж", value["otid"], body["invokeId"][1]))
    kind, value = pc_decode(r.body)
    assert kind == "continue"
    assert text_of(ros_of(value)[1]["argument"][1]).startswith("Invalid choice.\n")


@pytest_twisted.ensureDeferred
async def test_pycrate_bad_payloads_get_clear_answers(ussd):
    # unknown DCS (reserved coding group 1000): End + ReturnError unknownAlphabet (71)
    r = await post_ber(ussd.url, pc_begin(dcs=b"\x80", octets=b"\xaa\x18\x0c\x36\x02"))
    kind, value = pc_decode(r.body)
    assert kind == "end" and value["dtid"] == OTID and aare_of(value)["result"] == 0
    assert ros_of(value) == ("returnError", {"invokeId": ("present", 1),
                                             "errcode": ("local", 71)})
    # no MSISDN in the argument nor the envelope: ReturnError dataMissing (35)
    r = await post_ber(ussd.url, pc_begin("*123#", msisdn=None))
    assert ros_of(pc_decode(r.body)[1])[1]["errcode"] == ("local", 35)
    # unstructuredSS-Notify at begin: Reject unrecognizedOperation
    r = await post_ber(ussd.url, pc_begin("*123#", opcode=61))
    assert ros_of(pc_decode(r.body)[1]) == (
        "reject", {"invokeId": ("present", 1), "problem": ("invoke", 1)})
    # an application context we do not serve: Abort with a rejecting AARE
    r = await post_ber(ussd.url, pc_begin("*123#", context=(0, 4, 0, 0, 1, 0, 19, 1)))
    kind, value = pc_decode(r.body)
    assert kind == "abort" and value["dtid"] == OTID
    aare = value["reason"][1]["encoding"][1][1]
    assert aare[0] == "dialogueResponse" and aare[1]["result"] == 1
    assert aare[1]["application-context-name"] == USSD_AC
    # oversize USSD string (161 octets, beyond pycrate's own bound): Reject mistyped
    body = b"\x04\x01\x0f\x04\x81\xa1" + b"\x31" * 161
    oversize = b"\x30\x81" + bytes((len(body),)) + body
    r = await post_ber(ussd.url, encode_tcap(TcapMessage(
        "begin", otid=OTID, components=(Invoke(5, 59, oversize),))))
    assert ros_of(pc_decode(r.body)[1]) == (
        "reject", {"invokeId": ("present", 5), "problem": ("invoke", 2)})
    # every truncation of a pycrate Begin: an Abort or End pycrate reads, or a 400
    begin = pc_begin("*123*%s#" % ("1" * 14))
    for cut in range(1, len(begin), 7):
        r = await post_ber(ussd.url, begin[:cut], dialogue_id="cut", payload="tcap")
        if r.code == 400:
            assert "transaction id" in r.json()["detail"]
            continue
        assert r.code == 200, (cut, r.body)
        kind, value = pc_decode(r.body)
        assert kind in ("abort", "end") and value["dtid"] == OTID
    assert txn_rows(ussd.store) == [] and ussd.resource.dialogues.sessions == {}


@pytest_twisted.ensureDeferred
async def test_our_bare_map_answers_decode_in_pycrate(ussd):
    r = await post_ber(ussd.url, encode_ussd_arg("*123#", msisdn="+381641234567"),
                       dialogue_id="pc-5", operation="begin")
    assert r.headers["x-ussd-component"] == "request"
    PC_USSD_ARG.from_ber(r.body)
    assert text_of(PC_USSD_ARG.get_val()).startswith("Recharge\n")
    dcs, octets = gsm("3")
    PC_USSD_RES.set_val({"ussd-DataCodingScheme": dcs, "ussd-String": octets})
    r = await post_ber(ussd.url, PC_USSD_RES.to_ber(), dialogue_id="pc-5",
                       operation="continue")
    PC_USSD_RES.from_ber(r.body)
    assert "*123*voucher number#" in text_of(PC_USSD_RES.get_val())
