"""Parsers bound their input: nesting depth and out-of-range numbers give 400/404, never 500."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytest_twisted

from protocols.ussd import envelope
from tests.admin_helpers import admin_node  # noqa: F401
from tests.unit.test_ussd_http import post, ussd  # noqa: F401


def _json_request():
    headers = {b"content-type": b"application/json"}
    return SimpleNamespace(getHeader=lambda name: headers.get(name.lower()))


def test_envelope_refuses_deep_nesting_with_400():
    body = b"[" * 4000 + b"]" * 4000
    doc = b'{"dialogue_id": "a", "operation": "begin", "text": ' + body + b"}"
    with pytest.raises(envelope.HttpError) as e:
        envelope.parse(_json_request(), doc)
    assert e.value.status == 400 and "nest" in e.value.detail


@pytest_twisted.ensureDeferred
async def test_ussd_listener_answers_400_to_deep_json(ussd):  # noqa: F811
    body = b'{"dialogue_id": "a", "operation": "begin", "text": ' + b"[" * 4000 + b"]" * 4000 + b"}"
    r = await post(ussd.url, body, {"Content-Type": "application/json"})
    assert r.code == 400, r.body
    assert r.json()["error"] == "bad_request" and "nest" in r.json()["detail"]


HUGE = "99999999999999999999"


@pytest_twisted.ensureDeferred
async def test_admin_ids_above_int64_are_404_or_400(admin_node):  # noqa: F811
    c = await admin_node.logged_in("admin")
    for path in ["/batches/" + HUGE, "/vouchers/" + HUGE, "/generation/jobs/" + HUGE,
                 "/generation/jobs/%s.json" % HUGE, "/distribution/exports/" + HUGE,
                 "/distribution/exports/%s/file" % HUGE, "/users/" + HUGE,
                 "/vouchers?serial=" + HUGE, "/vouchers?batch=" + HUGE,
                 "/audit?before=" + HUGE, "/batches?before=" + HUGE]:
        r = await c.get(path)
        assert r.status in (404, 400, 405, 200), (path, r.status)
        assert "Unexpected error" not in r.text, path
    await c.get("/users")
    for path in ["/vouchers/%s/reveal" % HUGE, "/users/" + HUGE]:
        r = await c.post(path, {"x": "1"})
        assert r.status in (404, 400), (path, r.status)


def test_soap_xml_nested_4000_deep_is_a_client_fault():
    from protocols.soap.codec import parse_envelope
    from protocols.soap.errors import SoapFault
    body = "<a>" * 4000 + "</a>" * 4000
    doc = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>%s'
           '</s:Body></s:Envelope>' % body).encode()
    with pytest.raises(SoapFault) as e:
        parse_envelope(doc)
    # a SOAP 1.1 fault travels as HTTP 500 (SOAP 1.1 section 6.2): a Client fault, no traceback
    assert e.value.faultcode == "Client.XMLSyntaxError" and "depth" in e.value.faultstring


def test_ber_nesting_is_bounded():
    from protocols.ussd.ber import MAX_DEPTH, BerError, read_tlv
    data = b""
    for _ in range(MAX_DEPTH + 2):
        data = b"\x30" + bytes((len(data),)) + data if len(data) < 128 else \
            b"\x30\x82" + len(data).to_bytes(2, "big") + data
    with pytest.raises(BerError):
        read_tlv(data)


def test_json_nesting_scan_skips_strings():
    from protocols.jsonbound import nesting_depth
    assert nesting_depth('{"a": "[[[[[[[[[[", "b": [1, {"c": "\\"]"}]}') == 3
    assert nesting_depth("[" * 100, limit=10) == 11
