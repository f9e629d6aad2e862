"""The HTTP channels' listener: one twisted.web Site whose children are the channels.

Each enabled HTTP channel's resource is built by L{gateway.adapters} from
explicit arguments and mounted under the channel's path (C{/ussd}, C{/ivr},
C{/soap}, C{/web} with the WAP pages under C{/web/wap}).  C{GET /health}
answers the node's readiness.

twisted.web parses the Content-Type of every POST (with the C{email}
package, tens of microseconds a request) to fill C{request.args} from a
form body.  A channel whose resource says C{reads_form_fields = False}
(C{/ussd}: it reads headers and the raw body only) is spared that parse:
its requests' C{args} hold the query string alone.  On the other channels a
POST whose Content-Type cannot be a form (SOAP's C{text/xml}, JSON) skips it
too; form posts to C{/web} and C{/ivr} are parsed as before.
"""
from __future__ import annotations

import json
import re
from urllib.parse import unquote_to_bytes

from twisted.web import resource, server

from gateway.adapters import channel_resources
from protocols.common.http_log import access_log_line


class Health(resource.Resource):
    """C{GET /health}: 200 and a small JSON status while the node runs."""

    isLeaf = True

    def __init__(self, name: str, activation):
        """
        @param name: the node's name.
        @param activation: provides L{core.interfaces.IActivationService} (C{in_flight}).
        """
        super().__init__()
        self.name = name
        self.activation = activation

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        body = {"status": "ok", "node": self.name, "in_flight": self.activation.in_flight}
        return json.dumps(body).encode()


class Root(resource.Resource):
    """C{/}: a plain index of the mounted channels."""

    def __init__(self):
        super().__init__()
        self.mounted = []

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return ("iVOMS channels: %s\n" % ", ".join("/" + m for m in self.mounted)).encode()

    def getChild(self, path, request):
        if path == b"":
            return self
        return resource.NoResource("No such channel.")


#: a media type as a bare token (no comment, quote or space inside), as Content-Type starts
_PLAIN_MEDIA_TYPE = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def may_be_form(content_type: bytes) -> bool:
    """Whether Twisted could read a POST body with this Content-Type as form fields.

    False only when the media type (before any C{;}) is a bare C{type/subtype}
    token other than the two form types: the email package, which Twisted
    asks, then reads the same type.  Anything unusual counts as a possible form.
    """
    media = content_type.split(b";", 1)[0].strip(b" \t")
    if not _PLAIN_MEDIA_TYPE.fullmatch(media):
        return True
    return media.lower() in _FORM_TYPES


class LimitedRequest(server.Request):
    """A request whose body may not exceed C{max_body} bytes: a larger declared
    Content-Length, or more bytes of a chunked body, is answered 413 and the
    connection closed before the body is buffered.

    A POST whose Content-Type cannot be a form (a SOAP C{text/xml} body, a
    JSON one) is not handed to Twisted's form parser, which would parse the
    Content-Type with the email package (tens of microseconds a request) to
    find nothing.
    """

    max_body = 1 << 20
    #: first path segments (as routed: percent-decoded) whose POST bodies are
    #: never parsed as form fields
    formless: frozenset = frozenset()
    _received = 0

    def requestReceived(self, command, path, version):
        if self.formless and first_segment(path) in self.formless:
            self._parsePOSTFormSubmission = False
        elif command == b"POST" and self._parsePOSTFormSubmission:
            ctype = self.requestHeaders.getRawHeaders(b"content-type")
            if ctype and not may_be_form(ctype[0]):
                self._parsePOSTFormSubmission = False
        super().requestReceived(command, path, version)

    def gotLength(self, length):
        if length is not None and length > self.max_body:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.max_body:
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self):
        transport = self.channel.transport if self.channel else None
        if transport is None or getattr(self, "_refused", False):
            return
        self._refused = True
        transport.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: 24\r\nConnection: close\r\n\r\n"
                        b"request body too large\r\n")
        transport.loseConnection()


def first_segment(uri: bytes) -> bytes:
    """The first path segment of a request URI as twisted.web routes it
    (query string cut off, percent-escapes decoded): C{b"ussd"} for
    C{b"/ussd?x=1"} or C{b"/%75ssd/"}."""
    path = uri.split(b"?", 1)[0]
    return unquote_to_bytes(path[1:].split(b"/", 1)[0])


def channel_site(root, channels, *, max_body: int) -> server.Site:
    """A Site over C{root} with C{channels} mounted on it.

    @param channels: C{(segment, resource)} pairs; each is put under C{root},
        and a resource whose C{reads_form_fields} is false gets no form parse.
    @param max_body: the most body bytes a request may send (L{LimitedRequest}).
    @return: a Site logging with L{access_log_line}, showing no tracebacks.
    """
    formless = []
    for segment, res in channels:
        root.putChild(segment, res)
        if not getattr(res, "reads_form_fields", True):
            formless.append(segment)
    site = server.Site(root, logFormatter=access_log_line)
    site.requestFactory = type("Request", (LimitedRequest,), {
        "max_body": max_body, "formless": frozenset(formless)})
    site.displayTracebacks = False
    return site


def make_site(node) -> server.Site:
    """The Site serving every enabled HTTP channel of C{node}."""
    root = Root()
    root.putChild(b"health", Health(node.config.node.name, node.activation))
    channels = list(channel_resources(node))
    root.mounted.extend(segment.decode() for segment, _ in channels)
    return channel_site(root, channels, max_body=node.config.http.max_body_bytes)
