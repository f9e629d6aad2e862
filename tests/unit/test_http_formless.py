"""The channels' Site skips twisted.web's form parse for channels that read no form fields."""
from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web import resource

from gateway.http import channel_site, first_segment


class Echo(resource.Resource):
    """Answers with the form fields twisted.web parsed for the request."""

    isLeaf = True

    def render_POST(self, request):
        return repr(sorted(request.args.items())).encode()


class Formless(Echo):
    reads_form_fields = False


def _post(site, path: bytes, ctype: bytes, body: bytes) -> bytes:
    proto = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1234))
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                       b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                       % (path, ctype, len(body), body))
    return transport.value()


def test_formless_channel_gets_no_form_fields_others_do():
    site = channel_site(resource.Resource(), [(b"ussd", Formless()), (b"web", Echo())],
                        max_body=1000)
    form = b"application/x-www-form-urlencoded"
    web = _post(site, b"/web/x?q=1", form, b"hrn=123")
    assert b"(b'hrn', [b'123'])" in web and b"(b'q', [b'1'])" in web
    ussd = _post(site, b"/ussd?q=1", form, b"hrn=123")
    assert b"hrn" not in ussd and b"(b'q', [b'1'])" in ussd
    # routed the way twisted.web routes: percent-escapes decoded, query cut off
    assert b"hrn" not in _post(site, b"/%75ssd/", form, b"hrn=123")
    multipart = (b"--B\r\nContent-Disposition: form-data; name=\"hrn\"\r\n\r\n123\r\n--B--\r\n")
    mp = b"multipart/form-data; boundary=B"
    assert b"(b'hrn', [b'123'])" in _post(site, b"/web", mp, multipart)
    assert b"hrn" not in _post(site, b"/ussd", mp, multipart)


def test_body_cap_still_applies_to_formless_channels():
    site = channel_site(resource.Resource(), [(b"ussd", Formless())], max_body=10)
    answer = _post(site, b"/ussd", b"application/octet-stream", b"x" * 11)
    assert answer.startswith(b"HTTP/1.1 413")


def test_first_segment_is_the_routed_one():
    assert first_segment(b"/ussd") == b"ussd"
    assert first_segment(b"/ussd/x?y=/z") == b"ussd"
    assert first_segment(b"/%75ssd?a") == b"ussd"
    assert first_segment(b"/") == b""
    assert first_segment(b"/web%2Fussd") == b"web/ussd"
