"""C{POST /ussd} through the real resource on a 127.0.0.1 listener, with the real
ActivationService over a temporary SQLite store and the embedded ledger (issue 6):
every envelope form, bare MAP and TCAP dialogues, and bad input of every kind."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from io import BytesIO

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, task
from twisted.web import resource, server
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers

from core.normalise import MsisdnRules
from gateway.config import MsisdnSettings
from protocols.ussd.config import DialogueSettings, UssdSettings
from protocols.ussd.map import (decode_map_argument, decode_ussd_res, encode_ussd_arg,
                                encode_ussd_res)
from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as USSD_AC
from protocols.ussd.resource import build_resource
from protocols.ussd.tcap import (Dialogue, Invoke, ReturnResult, TcapMessage, decode_tcap,
                                 encode_tcap)
from tests.helpers import (VType, build_service, credited_entries, make_batch, make_store,
                           txn_rows, voucher_row, with_loopback_peer)
from tests.fakes import FakeActivationService

MSISDN = "0641234567"
E164 = "381641234567"
OTHER = "0647654321"
OTHER_E164 = "381647654321"
PEER_TID = b"\x00\x01\x02\x03"
BER = "application/octet-stream"


@dataclass
class Bridge:
    """A running /ussd listener over a fresh store; C{hrns} are available vouchers."""

    url: bytes
    store: object
    hrns: list
    serials: list
    clock: task.Clock
    resource: object

    def hrn(self) -> str:
        """An unused HRN (each call gives the next one)."""
        self.serials.append(self._serials.pop(0))
        return self.hrns.pop(0)


def start_bridge(sqlite_url, tmp_path, reactor, settings=None, count=8):
    """Start a listener; return C{(bridge, stop)}; C{await stop()} tears it down."""
    store, cipher = make_store(sqlite_url, str(tmp_path))
    _info, by_serial = make_batch(store, cipher, count)
    runner, service, _ledger = build_service(store, cipher, reactor=reactor)
    clock = task.Clock()
    res = build_resource(service, with_loopback_peer(settings or UssdSettings()), clock=clock,
                         hrn_lengths={VType().hrn_length},
                         numbering=MsisdnRules.from_settings(MsisdnSettings()))
    root = resource.Resource()
    root.putChild(b"ussd", res)
    site = server.Site(root)
    site.displayTracebacks = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    serials = sorted(by_serial)
    bridge = Bridge(b"http://127.0.0.1:%d/ussd" % port.getHost().port, store,
                    [by_serial[s] for s in serials], [], clock, res)
    bridge._serials = list(serials)

    async def stop():
        res.dialogues.stop()
        await port.stopListening()
        await runner.stop()
        store.dispose()
    return bridge, stop


@pytest.fixture
def ussd(sqlite_url, tmp_path, reactor):
    bridge, stop = start_bridge(sqlite_url, tmp_path, reactor)
    yield bridge
    pytest_twisted.blockon(defer.ensureDeferred(stop()))


@dataclass
class Response:
    code: int
    headers: dict
    body: bytes

    def json(self):
        assert self.headers["content-type"].startswith("application/json"), self.headers
        return json.loads(self.body)


class _Collect(protocol.Protocol):
    def __init__(self, done):
        self.done, self.data = done, []

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason=None):
        self.done.callback(b"".join(self.data))


def read_body(response):
    """The whole body of an Agent response (a Deferred)."""
    done = defer.Deferred()
    response.deliverBody(_Collect(done))
    return done


async def post(url, body=b"", headers=None, method=b"POST"):
    """One request on a fresh connection; headers as C{{name: str}}."""
    from twisted.internet import reactor
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    h = Headers({k.encode(): [v.encode()] for k, v in (headers or {}).items()})
    producer = FileBodyProducer(BytesIO(body)) if method == b"POST" else None
    response = await agent.request(method, url, h, producer)
    data = await read_body(response)
    headers = {k.decode().lower(): v[-1].decode("latin-1")
               for k, v in response.headers.getAllRawHeaders()}
    return Response(response.code, headers, data)


async def post_json(url, doc):
    return await post(url, json.dumps(doc).encode(), {"Content-Type": "application/json"})


async def post_ber(url, body, **headers):
    names = {"dialogue_id": "X-USSD-Dialogue-Id", "operation": "X-USSD-Operation",
             "msisdn": "X-USSD-MSISDN", "payload": "X-USSD-Payload",
             "opcode": "X-USSD-Opcode", "language": "X-USSD-Language"}
    h = {"Content-Type": BER}
    h.update({names[k]: str(v) for k, v in headers.items()})
    return await post(url, body, h)


def tcap_begin(text, msisdn="+381641234567", otid=PEER_TID, invoke_id=1,
               context=USSD_AC):
    """A TCAP Begin (AARQ + Invoke processUnstructuredSS-Request) built with our codec."""
    return encode_tcap(TcapMessage(
        "begin", otid=otid, dialogue=Dialogue("request", application_context=context),
        components=(Invoke(invoke_id, 59, encode_ussd_arg(text, msisdn=msisdn)),)))


def tcap_answer(text, our_tid, invoke_id, otid=PEER_TID):
    """The subscriber's answer: a Continue with the ReturnResultLast of our Invoke 60."""
    return encode_tcap(TcapMessage("continue", otid=otid, dtid=our_tid, components=(
        ReturnResult(invoke_id, 60, encode_ussd_res(text)),)))


SUCCESS = "Your account was credited with 10.00 EUR. Valid until "


# --- plain text JSON ---------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_text_direct_code(ussd):
    hrn = ussd.hrn()
    r = await post_json(ussd.url, {"dialogue_id": "gw-1", "operation": "begin",
                                   "msisdn": MSISDN, "text": "*123*%s#" % hrn})
    doc = r.json()
    assert r.code == 200 and doc["operation"] == "end" and doc["dialogue_id"] == "gw-1"
    assert doc["text"].startswith(SUCCESS)
    assert voucher_row(ussd.store, ussd.serials[0])[:2] == ("used", E164)
    (t,) = txn_rows(ussd.store)
    assert (t["channel"], t["channel_ref"], t["result_code"]) == ("ussd", "gw-1", 0)
    assert t["source"] == "ussd:local"          # the peer that sent it, not its address
    again = (await post_json(ussd.url, {"dialogue_id": "gw-2", "operation": "begin",
                                        "msisdn": MSISDN, "text": "*123*%s#" % hrn})).json()
    assert again["text"] == "You have already used this voucher."


@pytest_twisted.ensureDeferred
async def test_text_menu_my_number_and_another(ussd):
    async def say(did, text, op="continue"):
        doc = {"dialogue_id": did, "operation": op, "text": text}
        if op == "begin":
            doc["msisdn"] = MSISDN
        return (await post_json(ussd.url, doc)).json()
    menu = await say("m1", "*123#", "begin")
    assert menu["operation"] == "continue" and menu["text"].startswith("Recharge\n1 ")
    assert (await say("m1", "1"))["text"] == "Enter the 14-digit voucher number:"
    done = await say("m1", ussd.hrn())
    assert done["operation"] == "end" and done["text"].startswith(SUCCESS)
    await say("m2", "*123#", "begin")
    await say("m2", "2")
    assert (await say("m2", OTHER))["text"].startswith("Recharge %s." % OTHER)
    done = await say("m2", ussd.hrn())
    assert done["text"].startswith("%s was credited with 10.00 EUR" % OTHER)
    accounts = sorted(m for _, m, _ in credited_entries(ussd.store))
    assert accounts == sorted([E164, OTHER_E164])
    # help, and a dialogue that no longer exists
    assert (await say("m3", "*123*3#", "begin"))["operation"] == "end"
    late = await say("m3", "1")
    assert late["operation"] == "end" and late["text"].startswith("Your session has expired")


@pytest_twisted.ensureDeferred
async def test_text_timeout_and_abort(ussd):
    begin = {"dialogue_id": "t1", "operation": "begin", "msisdn": MSISDN, "text": "*123#"}
    assert (await post_json(ussd.url, begin)).json()["operation"] == "continue"
    ussd.clock.advance(DialogueSettings().timeout + 1)
    late = (await post_json(ussd.url, {"dialogue_id": "t1", "operation": "continue",
                                       "text": "1"})).json()
    assert late["text"].startswith("Your session has expired")
    assert (await post_json(ussd.url, dict(begin, dialogue_id="t2"))).code == 200
    r = await post_json(ussd.url, {"dialogue_id": "t2", "operation": "abort"})
    assert r.code == 200 and r.json() == {"dialogue_id": "t2", "operation": "none"}
    assert ussd.resource.dialogues.sessions == {}
    assert ussd.clock.getDelayedCalls() == []


# --- bare MAP ------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_bare_map_binary_direct_code(ussd):
    arg = encode_ussd_arg("*123*%s#" % ussd.hrn(), msisdn="+381641234567")
    r = await post_ber(ussd.url, arg, dialogue_id="b1", operation="begin")
    assert r.code == 200 and r.headers["content-type"] == BER
    assert (r.headers["x-ussd-operation"], r.headers["x-ussd-component"],
            r.headers["x-ussd-opcode"], r.headers["x-ussd-payload"],
            r.headers["x-ussd-dialogue-id"]) == ("end", "result", "59", "map", "b1")
    assert decode_ussd_res(r.body).text.startswith(SUCCESS)


@pytest_twisted.ensureDeferred
async def test_bare_map_base64_menu_with_envelope_msisdn(ussd):
    async def send(op, ber):
        r = await post_json(ussd.url, {"dialogue_id": "b2", "operation": op,
                                       "msisdn": MSISDN,
                                       "map": base64.b64encode(ber).decode()})
        return r.json()
    menu = await send("begin", encode_ussd_arg("*123#"))
    assert (menu["operation"], menu["component"], menu["opcode"]) == \
        ("continue", "request", 60)
    assert decode_map_argument(60, base64.b64decode(menu["map"])).text == menu["text"]
    prompt = await send("continue", encode_ussd_res("1"))
    assert prompt["text"] == "Enter the 14-digit voucher number:"
    done = await send("continue", encode_ussd_res(ussd.hrn()))
    assert (done["operation"], done["component"], done["opcode"]) == ("end", "result", 59)
    assert decode_ussd_res(base64.b64decode(done["map"])).text.startswith(SUCCESS)
    assert [m for _, m, _ in credited_entries(ussd.store)] == [E164]


@pytest_twisted.ensureDeferred
async def test_bare_map_errors(ussd):
    async def begin(ber, **kw):
        return await post_ber(ussd.url, ber, dialogue_id="e", operation="begin", **kw)
    # no MSISDN anywhere
    r = await begin(encode_ussd_arg("*123#"))
    assert (r.headers["x-ussd-component"], r.headers["x-ussd-map-error"]) == ("error", "35")
    assert "MSISDN" in r.headers["x-ussd-reason"] and r.body == b""
    # unknown DCS: coding group 1000 is reserved
    r = await begin(bytes.fromhex("300a040180" "0405aa180c3602"), msisdn=MSISDN)
    assert (r.headers["x-ussd-component"], r.headers["x-ussd-map-error"]) == ("error", "71")
    # oversize USSD string (161 octets)
    body = b"\x04\x01\x0f\x04\x81\xa1" + b"\x31" * 161
    r = await begin(b"\x30\x81" + bytes((len(body),)) + body, msisdn=MSISDN)
    assert (r.headers["x-ussd-component"], r.headers["x-ussd-problem"]) == \
        ("reject", "invoke:2")
    # truncated and garbage BER
    arg = encode_ussd_arg("*123#")
    for broken in (arg[:5], arg[:-1], b"\x30\x80\x04", b"\x30\xff" + b"\x00" * 20):
        r = await begin(broken, msisdn=MSISDN)
        assert r.code == 200 and r.headers["x-ussd-operation"] == "end"
        assert r.headers["x-ussd-component"] in ("reject", "error")
    # an operation other than processUnstructuredSS-Request
    r = await begin(arg, msisdn=MSISDN, opcode=61)
    assert r.headers["x-ussd-problem"] == "invoke:1"
    # a malformed answer mid-dialogue ends it with a reject of the result
    await begin(arg, msisdn=MSISDN)
    r = await post_ber(ussd.url, b"\x30\x03\x04\x01", dialogue_id="e", operation="continue")
    assert r.headers["x-ussd-problem"] == "returnResult:2"
    assert ussd.resource.dialogues.sessions == {}


@pytest_twisted.ensureDeferred
async def test_bare_map_busy(sqlite_url, tmp_path, reactor):
    settings = UssdSettings(dialogue=DialogueSettings(max_sessions=1))
    bridge, stop = start_bridge(sqlite_url, tmp_path, reactor, settings, count=1)
    try:
        arg = encode_ussd_arg("*123#", msisdn=MSISDN)
        r = await post_ber(bridge.url, arg, dialogue_id="x1", operation="begin")
        assert r.headers["x-ussd-operation"] == "continue"
        r = await post_ber(bridge.url, arg, dialogue_id="x2", operation="begin")
        assert (r.headers["x-ussd-component"], r.headers["x-ussd-map-error"]) == \
            ("error", "72")
        r = await post_json(bridge.url, {"dialogue_id": "x3", "operation": "begin",
                                         "msisdn": MSISDN, "text": "*123#"})
        assert r.code == 503 and r.json()["error"] == "busy"
    finally:
        await stop()


# --- TCAP ------------------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_tcap_menu_dialogue(ussd):
    r = await post_ber(ussd.url, tcap_begin("*123#"))     # no dialogue id: our tid is it
    assert r.headers["x-ussd-payload"] == "tcap" and r.headers["x-ussd-operation"] == \
        "continue"
    first = decode_tcap(r.body)
    assert first.kind == "continue" and first.dtid == PEER_TID and len(first.otid) == 4
    dialogue_id = "tcap-" + first.otid.hex()
    assert r.headers["x-ussd-dialogue-id"] == dialogue_id
    assert (first.dialogue.kind, first.dialogue.result, first.dialogue.application_context) \
        == ("response", 0, USSD_AC)
    (invoke,) = first.components
    assert invoke.opcode == 60 and invoke.invoke_id == 2
    assert decode_map_argument(60, invoke.parameter).text.startswith("Recharge\n")
    r = await post_ber(ussd.url, tcap_answer("1", first.otid, invoke.invoke_id))
    second = decode_tcap(r.body)
    assert (second.kind, second.otid, second.dtid, second.dialogue) == \
        ("continue", first.otid, PEER_TID, None)
    (invoke,) = second.components
    r = await post_ber(ussd.url, tcap_answer(ussd.hrn(), first.otid, invoke.invoke_id),
                       operation="continue")
    end = decode_tcap(r.body)
    assert (end.kind, end.dtid, end.dialogue) == ("end", PEER_TID, None)
    (result,) = end.components
    assert (result.invoke_id, result.opcode, result.last) == (1, 59, True)
    assert decode_ussd_res(result.parameter).text.startswith(SUCCESS)
    (t,) = txn_rows(ussd.store)
    assert (t["channel"], t["channel_ref"]) == ("ussd", dialogue_id)


@pytest_twisted.ensureDeferred
async def test_tcap_direct_code_base64_json(ussd):
    begin = tcap_begin("*123*%s#" % ussd.hrn())
    r = await post_json(ussd.url, {"dialogue_id": "j1", "operation": "begin",
                                   "tcap": base64.b64encode(begin).decode()})
    doc = r.json()
    assert doc["operation"] == "end" and doc["text"].startswith(SUCCESS)
    end = decode_tcap(base64.b64decode(doc["tcap"]))
    assert end.kind == "end" and end.dialogue.result == 0
    assert decode_ussd_res(end.components[0].parameter).text == doc["text"]


@pytest_twisted.ensureDeferred
async def test_tcap_errors(ussd):
    # unsupported application context: U-Abort carrying a rejecting AARE
    r = await post_ber(ussd.url, tcap_begin("*123#", context=(0, 4, 0, 0, 1, 0, 19, 1)))
    abort = decode_tcap(r.body)
    assert r.headers["x-ussd-operation"] == "abort" and abort.dtid == PEER_TID
    assert (abort.dialogue.kind, abort.dialogue.result) == ("response", 1)
    # a Continue for a transaction we do not know: P-Abort unrecognizedTransactionID
    r = await post_ber(ussd.url, tcap_answer("1", b"\x09\x09\x09\x09", 2))
    abort = decode_tcap(r.body)
    assert (abort.kind, abort.dtid, abort.abort_cause) == ("abort", PEER_TID, 1)
    # truncated Begin: the otid is still readable, so a P-Abort answers it
    begin = tcap_begin("*123#")
    r = await post_ber(ussd.url, begin[:-3])
    assert r.headers["x-ussd-operation"] in ("abort", "end")
    assert decode_tcap(r.body).dtid == PEER_TID
    # nothing readable at all: 400
    r = await post_ber(ussd.url, b"\x62\x05\x01", dialogue_id="z", payload="tcap")
    assert r.code == 400 and "transaction id" in r.json()["detail"]
    # the envelope's operation must agree with the message
    r = await post_ber(ussd.url, begin, operation="continue")
    assert r.code == 400 and "TCAP message is a begin" in r.json()["detail"]
    # unknown DCS inside the Invoke: End with ReturnError unknownAlphabet
    bad_dcs = bytes.fromhex("300a040180" "0405aa180c3602")
    r = await post_ber(ussd.url, encode_tcap(TcapMessage(
        "begin", otid=PEER_TID, dialogue=Dialogue("request", application_context=USSD_AC),
        components=(Invoke(1, 59, bad_dcs),))))
    end = decode_tcap(r.body)
    assert end.kind == "end" and end.dialogue.result == 0
    assert (end.components[0].invoke_id, end.components[0].error_code) == (1, 71)
    # the network ends or aborts (naming our transaction): nothing to relay
    for closing in (TcapMessage("abort", dtid=b"", abort_cause=4),
                    TcapMessage("end", dtid=b"")):
        ours = decode_tcap((await post_ber(ussd.url, tcap_begin("*123#"))).body).otid
        assert ussd.resource.dialogues.get("tcap-" + ours.hex(), "ussd:local") is not None
        closing = TcapMessage(closing.kind, dtid=ours, abort_cause=closing.abort_cause)
        r = await post_ber(ussd.url, encode_tcap(closing))
        assert r.headers["x-ussd-operation"] == "none" and r.body == b""
        assert r.headers["x-ussd-dialogue-id"] == "tcap-" + ours.hex()
        assert ussd.resource.dialogues.sessions == {}


@pytest_twisted.ensureDeferred
async def test_tcap_timeout_then_continue_aborts(ussd):
    r = await post_ber(ussd.url, tcap_begin("*123#"))
    first = decode_tcap(r.body)
    ussd.clock.advance(DialogueSettings().timeout + 1)
    r = await post_ber(ussd.url, tcap_answer("1", first.otid, first.components[0].invoke_id))
    assert decode_tcap(r.body).abort_cause == 1


# --- the HTTP envelope --------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_envelope_errors_are_clear_json(ussd):
    hrn = ussd.hrn()
    r = await post(ussd.url, method=b"GET")
    assert r.code == 405 and r.json()["error"] == "method_not_allowed"
    r = await post(ussd.url, b"x", {"Content-Type": "text/plain"})
    assert r.code == 415 and "application/json" in r.json()["detail"]
    r = await post_ber(ussd.url, b"\x30" * 9000, dialogue_id="a", operation="begin")
    assert r.code == 413 and r.json()["error"] == "too_large"
    cases = [
        ({"operation": "begin", "msisdn": MSISDN, "text": "*123#"}, "dialogue_id"),
        ({"dialogue_id": "a", "operation": "start", "text": "*123#"}, "operation"),
        ({"dialogue_id": "a", "operation": "begin", "text": "*123*%s#" % hrn}, "msisdn"),
        ({"dialogue_id": "a", "operation": "begin", "msisdn": "06x", "text": "1"}, "msisdn"),
        ({"dialogue_id": "a", "operation": "begin", "msisdn": MSISDN, "map": "%%%"}, "map"),
        ({"dialogue_id": "a", "operation": "begin", "msisdn": MSISDN, "text": "x" * 183},
         "text"),
        ({"dialogue_id": "a", "operation": "begin", "msisdn": MSISDN, "text": "1",
          "map": "AAAA"}, "text: give only one"),
        ({"dialogue_id": "a", "operation": "continue"}, "map, tcap or text"),
        ({"dialogue_id": "a", "op": "begin"}, "op"),
        ({"dialogue_id": "\x01", "operation": "end"}, "dialogue_id"),
    ]
    for doc, field in cases:
        r = await post_json(ussd.url, doc)
        detail = r.json()["detail"]
        assert r.code == 400 and detail.startswith(field), (doc, detail)
        assert hrn not in detail
    for body in (b"{", b"[1]", b"\xff\xfe"):
        r = await post(ussd.url, body, {"Content-Type": "application/json"})
        assert r.code == 400 and r.json()["detail"].startswith("body")
    r = await post_ber(ussd.url, b"\x99\x00", dialogue_id="a", operation="begin")
    assert r.code == 400 and "X-USSD-Payload" in r.json()["detail"]
    r = await post_ber(ussd.url, encode_ussd_arg("*123#"), operation="begin")
    assert r.code == 400 and r.json()["detail"] == "X-USSD-Dialogue-Id: required"
    assert txn_rows(ussd.store) == []


@pytest_twisted.ensureDeferred
async def test_allowed_addresses(sqlite_url, tmp_path, reactor):
    settings = UssdSettings(allowed_addresses=["10.0.0.0/8"])
    bridge, stop = start_bridge(sqlite_url, tmp_path, reactor, settings, count=1)
    try:
        r = await post_json(bridge.url, {"dialogue_id": "a", "operation": "begin",
                                         "msisdn": MSISDN, "text": "*123#"})
        assert r.code == 403 and r.json()["error"] == "forbidden"
    finally:
        await stop()


def test_build_resource_defaults():
    res = build_resource(FakeActivationService(), UssdSettings(), clock=task.Clock())
    assert res.max_body_bytes == 8192 and res.dialogues.service_codes == {"123": ""}
    assert sorted(res.dialogues.hrn_lengths) == list(range(8, 21))


@pytest_twisted.ensureDeferred
async def test_no_hrn_in_the_log(ussd):
    from twisted.logger import formatEvent, globalLogPublisher
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        hrns = [ussd.hrn(), ussd.hrn()]
        await post_json(ussd.url, {"dialogue_id": "l1", "operation": "begin",
                                   "msisdn": MSISDN, "text": "*123*%s#" % hrns[0]})
        await post_ber(ussd.url, tcap_begin("*123*%s#" % hrns[1]))
        await post_ber(ussd.url, tcap_begin("*123*%s#" % hrns[1])[:-2])
        await post_json(ussd.url, {"dialogue_id": "l2", "operation": "begin",
                                   "msisdn": "x", "text": "*123*%s#" % hrns[0]})
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert any("l1" in formatEvent(e) for e in events)
    for e in events:
        blob = formatEvent(e) + repr(e)
        assert not any(h in blob for h in hrns), formatEvent(e)
