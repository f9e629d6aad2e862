"""The /ivr resource and channel over a fake activation service, walked in memory (no sockets)."""
from __future__ import annotations

from io import BytesIO
from urllib.parse import parse_qsl, urlsplit

import pytest
import pytest_twisted
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web import resource, server
from twisted.web.test.requesthelper import DummyRequest

from core.inbox import request_key
from core.requests import ActivationResult, Channel
from core.results import ResultCode as R
from protocols.ivr.config import IvrSettings
from protocols.ivr.resource import build_resource
from tests.fakes import FakeActivationService
from tests.helpers import with_loopback_peer
from tests.vxml_walker import NOINPUT, Walker, assert_valid

HRN = "12345678901234"
ANI = {"session.connection.remote.uri": "tel:+381641234567",
       "session.connection.ccxml.sessionid": "call-42"}


#: What the fake activation service answers unless a test says otherwise.
CREDITED = ActivationResult(R.SUCCESS, amount=500, currency="EUR")


def _site(activation, settings=None, mount=(b"ivr",), reactor=None):
    root = parent = resource.Resource()
    for seg in mount[:-1]:
        child = resource.Resource()
        parent.putChild(seg, child)
        parent = child
    parent.putChild(mount[-1], build_resource(activation,
                                              with_loopback_peer(settings or IvrSettings()),
                                              clock=reactor or task.Clock()))
    return root


def _request(root, method, url, fields=None, body=None):
    parts = urlsplit(url)
    req = DummyRequest([s.encode() for s in parts.path.lstrip("/").split("/")])
    req.method = method.encode()
    req.client = IPv4Address("TCP", "127.0.0.1", 40000)     # the IVR platform, a configured peer
    for k, v in parse_qsl(parts.query, keep_blank_values=True) + list(fields or []):
        req.args.setdefault(k.encode(), []).append(v.encode())
    req.content = BytesIO(body or b"")
    child = resource.getChildForRequest(root, req)
    out = child.render(req)
    return req, out


def memory_fetch(root):
    async def fetch(method, url, fields):
        req, out = _request(root, method, url, fields)
        if out is server.NOT_DONE_YET:
            if not req.finished:
                await req.notifyFinish()
            out = b"".join(req.written)
        headers = {k.decode().lower(): b",".join(v).decode()
                   for k, v in req.responseHeaders.getAllRawHeaders()}
        return req.responseCode or 200, headers, out
    return fetch


@pytest.fixture
def logged():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


@pytest_twisted.ensureDeferred
async def test_walk_builds_the_activation_request(logged):
    act = FakeActivationService(CREDITED)
    root = _site(act, IvrSettings(call_ref_expr="session.connection.ccxml.sessionid"))
    call = await Walker(memory_fetch(root), ANI).call("http://ivr.test/ivr/", [HRN + "#", "1"])
    assert call.said("Your account has been credited with 5 EUR.") and call.ended == "exit"
    (req,) = act.requests
    assert (req.msisdn, req.hrn, req.channel, req.channel_ref, req.source) == (
        "+381641234567", HRN, Channel.IVR, "call-42", "ivr:local")
    # the replay key names the peer: another platform's call id never answers for this one
    assert req.idempotency_key == request_key("ivr", "call-42", "ivr:local", "+381641234567", HRN)
    for _, body in [(d[0], d[3]) for d in call.documents]:
        assert_valid(body)
    texts = [formatEvent(e) + repr(e) for e in logged]
    assert any("IVR call call-42 from" in t for t in texts)
    assert not any(HRN in t for t in texts)


@pytest_twisted.ensureDeferred
async def test_base_url_and_mount_point():
    act = FakeActivationService(CREDITED)
    root = _site(act, IvrSettings(base_url="https://ivoms.example/x/ivr/"))
    req, out = _request(root, "GET", "/ivr/")
    assert b'next="https://ivoms.example/x/ivr/activate"' in out
    root = _site(act, mount=(b"voice", b"ivr"))
    req, out = _request(root, "GET", "/voice/ivr/start")
    assert b'next="/voice/ivr/activate"' in out
    req, out = _request(root, "GET", "/voice/ivr")
    assert b'next="/voice/ivr/activate"' in out


@pytest_twisted.ensureDeferred
async def test_activation_failure_is_an_apology_not_a_traceback():
    root = _site(FakeActivationService(RuntimeError("boom")))
    status, headers, body = await memory_fetch(root)(
        "POST", "/ivr/activate", [("msisdn", "0641234567"), ("hrn", HRN)])
    assert (status, headers["x-ivoms-error"]) == (200, "internal")
    assert b"boom" not in body and b"Traceback" not in body
    assert_valid(body)


def test_result_header_and_no_store():
    root = _site(FakeActivationService(ActivationResult(R.INVALID_HRN)))
    req, out = _request(root, "POST", "/ivr/activate", [("msisdn", "0641234567"), ("hrn", HRN)])
    assert out is server.NOT_DONE_YET and req.finished
    assert req.responseHeaders.getRawHeaders(b"x-ivoms-result") == [b"119"]
    assert req.responseHeaders.getRawHeaders(b"cache-control") == [b"no-store"]
    assert req.responseHeaders.getRawHeaders(b"content-type") == [b"application/voicexml+xml; charset=utf-8"]


def test_caller_gone_before_the_answer():
    act = FakeActivationService(hold=True)
    root = _site(act)
    req, out = _request(root, "POST", "/ivr/activate", [("msisdn", "0641234567"), ("hrn", HRN)])
    assert out is server.NOT_DONE_YET
    for d in req._finishedDeferreds:          # the platform hung up
        d.errback(ConnectionError("gone"))
    req._finishedDeferreds = []
    act.held[0].callback(ActivationResult(R.SUCCESS))
    assert req.written == [] and not req.finished


def test_oversize_body_and_unknown_child():
    root = _site(FakeActivationService(CREDITED), IvrSettings(max_body_bytes=256))
    req, out = _request(root, "POST", "/ivr/collect", body=b"x" * 257)
    assert req.responseHeaders.getRawHeaders(b"x-ivoms-error") == [b"oversize"]
    assert_valid(out)
    req, out = _request(root, "GET", "/ivr/collect/../../etc/passwd")
    assert req.responseHeaders.getRawHeaders(b"x-ivoms-error") == [b"not_found"]


@pytest_twisted.ensureDeferred
async def test_barred_minutes_use_the_injected_clock():
    clock = task.Clock()
    clock.advance(1_750_000_000)
    act = FakeActivationService(ActivationResult(R.SUBSCRIBER_BARRED, unbar_at=1_750_000_000_000 + 900_000))
    root = _site(act, reactor=clock)
    call = await Walker(memory_fetch(root), ANI).call("http://ivr.test/ivr/", [HRN + "#", "1"])
    assert call.said("You can try again in 15 minutes, after 15:21.")


@pytest_twisted.ensureDeferred
async def test_no_care_number_says_goodbye_after_the_limit():
    root = _site(FakeActivationService(CREDITED))
    call = await Walker(memory_fetch(root), ANI).call("http://ivr.test/ivr/", [NOINPUT] * 3)
    assert call.prompts[-1] == "Thank you for calling. Goodbye." and call.transfer is None
    assert call.ended == "exit"
