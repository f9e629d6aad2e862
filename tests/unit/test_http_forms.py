"""The listener's requests skip Twisted's form parsing only for bodies that cannot be forms:
form fields still arrive, and every other body is read from its start."""
from __future__ import annotations

import json
import socket
from email.message import EmailMessage

import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.web import resource, server

from gateway.http import LimitedRequest, may_be_form

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
PIECES = ["text/xml", "application/x-www-form-urlencoded", "multipart/form-data", "TEXT/XML",
          "Application/X-WWW-Form-Urlencoded", "application/json", " ", "\t", ";", "(c)",
          '"', "/", "=", "charset=utf-8", "boundary=x", ",", "x", "\\"]


def twisted_reads(ctype: bytes) -> bytes:
    """The media type Twisted's form handling reads from a Content-Type (its own
    steps: the email package's parse of the header, as Latin-1)."""
    msg = EmailMessage()
    msg["content-type"] = ctype.decode("charmap")
    return msg.get_content_type().encode("charmap")


@settings(max_examples=2000, deadline=None, database=None)
@given(st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=5).map("".join),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)))
def test_a_body_twisted_could_read_as_a_form_is_never_skipped(ctype):
    raw = ctype.encode("latin-1")
    if not may_be_form(raw):
        assert twisted_reads(raw) not in FORMS


def test_plain_media_types():
    assert not may_be_form(b"text/xml; charset=utf-8")
    assert not may_be_form(b"application/json")
    assert may_be_form(b"application/x-www-form-urlencoded")
    assert may_be_form(b"Multipart/Form-Data; boundary=x")
    assert may_be_form(b"(comment) text/xml")          # unusual: left to Twisted


class Echo(resource.Resource):
    isLeaf = True

    def render_POST(self, request):
        args = {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()}
        return json.dumps({"args": args, "body": request.content.read().decode()}).encode()


def _post(port, ctype: bytes, body: bytes) -> dict:
    raw = (b"POST /echo?q=1 HTTP/1.0\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
           + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


@pytest_twisted.ensureDeferred
async def test_forms_are_parsed_and_other_bodies_read_from_the_start(reactor):
    site = server.Site(Echo())
    site.requestFactory = LimitedRequest
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    p = port.getHost().port
    try:
        form = await threads.deferToThread(_post, p, b"application/x-www-form-urlencoded",
                                           b"a=1&b=2")
        assert form["args"] == {"q": ["1"], "a": ["1"], "b": ["2"]}
        odd = await threads.deferToThread(_post, p, b"Application/X-WWW-Form-Urlencoded ; x=y",
                                          b"a=3")
        assert odd["args"]["a"] == ["3"]
        xml = await threads.deferToThread(_post, p, b"text/xml; charset=utf-8", b"<a>b=1</a>")
        assert xml == {"args": {"q": ["1"]}, "body": "<a>b=1</a>"}
    finally:
        await port.stopListening()
