"""HTTP wiring of the IVR channel: the twisted.web resource mounted at C{/ivr}.

URLs (relative to the mount point, or to C{[ivr] base_url}):

  - C{/ivr/} (also C{/ivr} and C{/ivr/start}), GET or POST: the entry document;
  - C{/ivr/collect?lang=..&attempt=..}, GET or POST: HRN collection;
  - C{/ivr/activate}, POST only: form parameters C{<ani_parameter>}, C{hrn},
    C{lang}, C{attempt} (and C{callref}); answers the result document.

Only the configured IVR platforms are served (L{protocols.common.peers}):
anyone else gets 403 (401 when HTTP credentials are missing or wrong) with
the reason in C{X-Ivoms-Error}, before any parameter is read.  Every answer
is a VoiceXML 2.1 document; a bad request gets the error document (spoken
apology) and never a traceback.
"""
from __future__ import annotations

from urllib.parse import quote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server

from protocols.common.peers import PeerGate, PeerRefused
from protocols.ivr.channel import IvrChannel
from protocols.ivr.config import IvrSettings
from protocols.ivr.context import Urls
from protocols.ivr.errors import BadRequest
from protocols.ivr.vxml import CONTENT_TYPE

#: child path -> page kind
PAGES = {b"": "entry", b"start": "entry", b"collect": "collect", b"activate": "activate"}

#: HRN lengths used when no voucher type is configured (DESIGN §3: 8-20).
FALLBACK_LENGTHS = tuple(range(8, 21))


def _client(request) -> str:
    return getattr(request.getClientAddress(), "host", "-")


class IvrResource(resource.Resource):
    """C{/ivr}: hands each path to an L{IvrPage} that knows the channel's base URL."""

    def __init__(self, channel: IvrChannel, peers: PeerGate) -> None:
        """
        @param peers: the IVR platforms served; anyone else is refused (403).
        """
        super().__init__()
        self.channel = channel
        self.peers = peers

    def _urls(self, segments) -> Urls:
        base = self.channel.settings.base_url
        if not base:
            base = "/" + "/".join(quote(s.decode("latin-1")) for s in segments if s) + "/"
        return Urls(base)

    def getChild(self, path, request):
        return IvrPage(self.channel, self.peers, PAGES.get(path, "not_found"),
                       self._urls(request.prepath[:-1]))

    def render(self, request):
        # "/ivr" without the trailing slash: the entry document, same base.
        return IvrPage(self.channel, self.peers, "entry", self._urls(request.prepath)).render(request)


class IvrPage(resource.Resource):
    """One document of the dialogue, for any HTTP method the page allows."""

    isLeaf = True
    log = Logger()

    def __init__(self, channel: IvrChannel, peers: PeerGate, kind: str, urls: Urls) -> None:
        super().__init__()
        self.channel = channel
        self.peers = peers
        self.kind = kind
        self.urls = urls

    def render(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        try:
            peer = self.peers.identify(request)      # before anything else is read
        except PeerRefused as e:
            return self._refused(request, e)
        if not isinstance(peer, defer.Deferred):
            return self._serve(request, peer)
        peer.addCallbacks(lambda p: self._serve(request, p),
                          lambda f: self._refused(request, f.trap(PeerRefused) and f.value))
        peer.addCallback(_finish, request)
        peer.addErrback(lambda f: self.log.failure("IVR answer not written", f))
        return server.NOT_DONE_YET

    def _serve(self, request, peer):
        """The document for the identified C{peer}'s request (bytes, or NOT_DONE_YET)."""
        try:
            self._check(request)
            if self.kind == "activate":
                return self._activate(request, self.peers.source(peer))
            if self.kind == "collect":
                return self.channel.collect(self.urls, request.args)
            return self.channel.entry(self.urls)
        except BadRequest as e:
            return self._bad(request, e)
        except Exception:
            self.log.failure("IVR {kind} page failed", kind=self.kind)
            return self._bad(request, BadRequest("internal"))

    def _refused(self, request, e: PeerRefused) -> bytes:
        """403 (401 when credentials would help) with the reason in C{X-Ivoms-Error}
        (the gate has logged and counted it)."""
        request.setResponseCode(401 if e.challenge else 403)
        if e.challenge:
            request.setHeader(b"www-authenticate", b'Basic realm="iVOMS IVR"')
        request.setHeader(b"x-ivoms-error", e.reason.encode("ascii"))
        return self.channel.error(self.urls, e.reason)

    def _check(self, request) -> None:
        if self.kind == "not_found" or any(request.postpath):
            raise BadRequest("not_found")
        if self.kind == "activate" and request.method != b"POST":
            raise BadRequest("method_not_allowed")
        content = getattr(request, "content", None)
        if content is not None:
            content.seek(0, 2)
            size = content.tell()
            content.seek(0)
            if size > self.channel.settings.max_body_bytes:
                raise BadRequest("oversize")

    def _bad(self, request, e: BadRequest) -> bytes:
        self.log.warn("IVR bad request from {client} ({method} {page}): {reason}",
                      client=_client(request), method=request.method.decode("ascii", "replace"),
                      page=self.kind, reason=e.reason)
        request.setResponseCode(self.channel.settings.bad_request_status)
        request.setHeader(b"x-ivoms-error", e.reason.encode("ascii"))
        return self.channel.error(self.urls, e.reason, e.lang)

    def _activate(self, request, source):
        d = self.channel.activate(self.urls, request.args, source)
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def write(result_and_body):
            result, body = result_and_body
            request.setHeader(b"x-ivoms-result", str(int(result.code)).encode("ascii"))
            return body

        def failed(failure: Failure):
            self.log.failure("IVR activation failed", failure)
            return self._bad(request, BadRequest("internal"))

        def finish(body):
            if not gone:
                request.write(body)
                request.finish()
        d.addCallbacks(write, failed)
        d.addCallback(finish)
        d.addErrback(lambda f: self.log.failure("IVR answer not written", f))
        return server.NOT_DONE_YET


def _finish(body, request):
    """Finish C{request} with C{body} unless its answer is written later (NOT_DONE_YET)."""
    if body is not server.NOT_DONE_YET:
        request.write(body)
        request.finish()


def build_resource(activation, settings: IvrSettings, *, clock, hrn_lengths=(),
                   passwords=None, metrics=None) -> IvrResource:
    """The C{/ivr} resource over an activation service.

    @param activation: provides L{core.interfaces.IActivationService}.
    @param settings: the C{[ivr]} table (L{IvrSettings}).
    @param clock: an C{IReactorTime} ("try again in N minutes").
    @param hrn_lengths: the HRN lengths of the configured voucher types; when
        empty, L{FALLBACK_LENGTHS}.
    @param passwords: the node's L{core.interfaces.IPasswordChecker} for the
        peers' HTTP Basic passwords.
    @param metrics: an L{core.metrics.IMetrics} told of refused requests.
    @return: an L{IvrResource}; the caller mounts it only when C{settings.enabled}.
    """
    lengths = tuple(sorted(set(hrn_lengths))) or FALLBACK_LENGTHS
    peers = PeerGate("ivr", settings.peers, clock=clock, passwords=passwords, metrics=metrics)
    return IvrResource(IvrChannel(activation, settings, lengths, clock=clock), peers)
