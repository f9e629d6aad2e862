"""C{POST /ussd}: the twisted.web resource of the USSD gateway bridge, and its wiring.

L{build_resource} builds it from explicit arguments (the node's wiring mounts
it). The resource resolves the client to a configured peer (refusing anyone else before
the body is read; L{protocols.common.peers}), reads at most C{max_body_bytes}, decodes the envelope
(L{protocols.ussd.envelope}), lets the L{protocols.ussd.bridge.Bridge} answer,
and writes the answer in the request's own form. Nothing a client sends can make it
answer with a traceback: envelope problems are 4xx JSON naming the field, protocol
problems are MAP errors / TCAP rejects / aborts, and a bug is a 500 JSON (logged).
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from protocols.common.peers import REASONS, PeerGate, PeerRefused
from protocols.ussd import envelope
from protocols.ussd.bridge import Bridge
from protocols.ussd.config import UssdSettings
from protocols.ussd.dialogue import DialogueManager
from protocols.ussd.shared import SharedDialogues
from protocols.ussd.envelope import HttpError
from protocols.ussd.replies import Texts


class UssdResource(resource.Resource):
    """The C{/ussd} leaf: POST only."""

    isLeaf = True
    log = Logger()
    #: only headers and the raw body are read: the listener skips twisted.web's
    #: form parse (and its C{email}-based Content-Type parse) for C{/ussd}
    reads_form_fields = False

    def __init__(self, bridge, *, peers, max_body_bytes=8192, max_dialogue_id_length=64):
        """
        @param bridge: a L{protocols.ussd.bridge.Bridge}.
        @param peers: a L{protocols.common.peers.PeerGate}: only the gateways
            it knows are served.
        """
        super().__init__()
        self.bridge = bridge
        self.dialogues = bridge.dialogues
        self.peers = peers
        self.max_body_bytes = max_body_bytes
        self.max_dialogue_id_length = max_dialogue_id_length

    def render(self, request):
        if request.method != b"POST":
            request.setHeader(b"allow", b"POST")
            return self._error(request, HttpError(405, "method_not_allowed",
                                                  "only POST is served at /ussd"))
        return self.render_POST(request)

    def render_POST(self, request):
        try:
            peer = self.peers.identify(request)      # before the body is even read
        except PeerRefused as e:
            return self._error(request, refusal(e))
        if not isinstance(peer, defer.Deferred):
            return self._serve(request, peer)
        peer.addCallback(lambda p: self._serve(request, p))
        peer.addErrback(lambda f: self._error(request, refusal(f.trap(PeerRefused) and f.value)))
        peer.addCallback(_write, request)
        peer.addErrback(lambda f: self.log.failure("USSD answer not written", f))
        return server.NOT_DONE_YET

    def _serve(self, request, peer):
        """Read, decode and answer the request of the identified C{peer}."""
        try:
            body = envelope.read_body(request, self.max_body_bytes)
            env = envelope.parse(request, body,
                                 max_dialogue_id=self.max_dialogue_id_length,
                                 source=self.peers.source(peer))
        except HttpError as e:
            return self._error(request, e)
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = self.bridge.handle(env)
        d.addCallback(self._answered, request, env, gone)
        d.addErrback(self._failed, request, env, gone)
        return server.NOT_DONE_YET

    def _answered(self, answer, request, env, gone):
        if answer.reason:
            self.log.info("USSD dialogue {dialogue_id}: answered {operation} ({reason})",
                          dialogue_id=answer.dialogue_id or env.dialogue_id,
                          operation=answer.operation, reason=answer.reason)
        if gone:
            self.log.warn("USSD dialogue {dialogue_id}: gateway left before the answer",
                          dialogue_id=answer.dialogue_id or env.dialogue_id)
            return
        body = envelope.render(request, env, answer)
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def _failed(self, failure, request, env, gone):
        if failure.check(HttpError):
            error = failure.value
            self.log.info("USSD dialogue {dialogue_id}: refused ({status} {detail})",
                          dialogue_id=env.dialogue_id, status=error.status,
                          detail=error.detail)
        else:
            self.log.failure("USSD dialogue {dialogue_id}: internal error", failure,
                             dialogue_id=env.dialogue_id)
            error = HttpError(500, "internal_error",
                              "the request could not be served; see the node's log")
        if gone:
            return
        body = self._error(request, error)
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    @staticmethod
    def _error(request, error):
        request.setResponseCode(error.status)
        if error.status in (401, 403):
            request.setHeader(b"x-ivoms-error", error.detail.split(":")[0].encode("ascii"))
        if error.status == 401:
            request.setHeader(b"www-authenticate", b'Basic realm="iVOMS USSD"')
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return error.body()


def refusal(e: PeerRefused) -> HttpError:
    """The HTTP answer to a request no peer claims: 401 when credentials are
    missing or wrong, else 403; the reason leads the detail."""
    status = 401 if e.challenge else 403
    return HttpError(status, "unauthorized" if status == 401 else "forbidden",
                     "%s: %s" % (e.reason, REASONS[e.reason]))


def _write(body, request):
    """Finish C{request} with C{body} unless its answer is written later (NOT_DONE_YET)."""
    if body is not server.NOT_DONE_YET:
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()


def build_resource(activation, settings: UssdSettings, *, clock, hrn_lengths=None,
                   numbering=None, passwords=None, metrics=None,
                   dialogue_store=None) -> UssdResource:
    """The C{/ussd} resource over an activation service.

    @param activation: provides L{core.interfaces.IActivationService}.
    @param settings: the C{[ussd]} table (L{UssdSettings}).
    @param clock: an C{IReactorTime} for dialogue timeouts.
    @param hrn_lengths: the HRN lengths of the configured voucher types, or
        None to accept any length the core accepts.
    @param numbering: provides L{core.interfaces.INumberingPlan}; when given,
        a beneficiary number it rejects is asked for again.
    @param passwords: the node's L{core.interfaces.IPasswordChecker} for the
        peers' HTTP Basic passwords.
    @param metrics: an L{core.metrics.IMetrics} told of refused requests.
    @param dialogue_store: a L{core.interfaces.IDialogueStore} every node
        shares (any node continues a dialogue), or None (dialogues in this node).
    @return: a L{UssdResource}; the caller mounts it only when C{settings.enabled}.
    """
    msisdn_check = None
    if numbering is not None:
        msisdn_check = lambda number: numbering.normalise(number) is not None  # noqa: E731
    dialogues = DialogueManager.from_settings(
        activation, settings, clock=clock, texts=Texts.from_settings(settings.texts),
        hrn_lengths=set(hrn_lengths or ()) or None,
        msisdn_check=msisdn_check)
    peers = PeerGate("ussd", settings.peer_list(), clock=clock, passwords=passwords,
                     metrics=metrics)
    shared = (SharedDialogues(dialogues, dialogue_store, clock)
              if dialogue_store is not None else None)
    return UssdResource(Bridge(dialogues, shared=shared), peers=peers,
                        max_body_bytes=settings.max_body_bytes,
                        max_dialogue_id_length=settings.max_dialogue_id_length)
