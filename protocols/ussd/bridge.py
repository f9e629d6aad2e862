"""The MAP/TCAP side of the bridge: an L{protocols.ussd.envelope.Envelope} in,
an L{protocols.ussd.envelope.Answer} out, with the dialogue logic in between.

Answers come in kind (3GPP TS 29.002 §12.1 USSD procedures; ITU-T Q.773/Q.774):

* **bare MAP** -- a begin carries the USSD-Arg of processUnstructuredSS-Request (59)
  and is answered by a USSD-Res (C{component=result}, the dialogue ends) or by the
  USSD-Arg of an unstructuredSS-Request (60, C{component=request}, it continues); a
  continue carries the subscriber's USSD-Res to that request.
* **TCAP** -- a Begin (AARQ for networkUnstructuredSsContext-v2 and an Invoke 59) is
  answered by a Continue (otid ours, dtid theirs, the AARE, an Invoke 60) or an End
  (dtid theirs, the AARE, a ReturnResultLast for the 59); a Continue carries the
  ReturnResultLast of our Invoke 60. The AARE rides on the first answer only.
* **text** -- plain text both ways.

Undecodable input is answered with what L{protocols.ussd.errors.UssdDecodeError}
calls for: a MAP ReturnError, a TCAP Reject (in an End) or a TCAP P-Abort; when not
even a transaction id can be read, L{protocols.ussd.envelope.HttpError} (400).
"""

from __future__ import annotations

import itertools
import random

from twisted.internet import defer

from protocols.ussd import map as ussd_map
from protocols.ussd.fastpath import (decode_map_argument, decode_tcap, decode_ussd_res,
                                     encode_tcap, encode_ussd_request_arg, encode_ussd_res)
from protocols.ussd.dialogue import DialogueBusy, TooManyDialogues, UnknownDialogue
from protocols.ussd.envelope import Answer, HttpError, bad
from protocols.ussd.errors import (InvokeProblem, MapError, PAbortCause, ProblemType,
                                   UssdDecodeError)
from protocols.ussd.map_types import Operation
from protocols.ussd.tcap import Invoke, Reject, ReturnError, ReturnResult, TcapMessage

PROCESS = int(Operation.PROCESS_UNSTRUCTURED_SS_REQUEST)
REQUEST = int(Operation.UNSTRUCTURED_SS_REQUEST)

# ReturnResultProblem values (ITU-T Q.773).
RR_UNRECOGNIZED_INVOKE_ID = 0
RR_MISTYPED_RESULT = 2

_PROBLEM_NAMES = {ProblemType.GENERAL: "general", ProblemType.INVOKE: "invoke",
                  ProblemType.RETURN_RESULT: "returnResult",
                  ProblemType.RETURN_ERROR: "returnError"}


def peek_otid(data: bytes) -> bytes | None:
    """The originating transaction id of a Begin or Continue that did not decode.

    Reads only the message header and its first element, an [APPLICATION 8] of 1..4
    octets (Q.773 §4.2.1), so that a truncated or garbled message can still be
    answered with a P-Abort; C{None} when even that is unreadable.
    """
    data = bytes(data or b"")
    if len(data) < 5 or data[0] not in (0x62, 0x65):
        return None
    first = data[1]
    if first & 0x80 and first != 0x80:
        size = first & 0x7F
        if size > 4:
            return None
        pos = 2 + size
    else:
        pos = 2
    if pos + 2 > len(data) or data[pos] != 0x48:
        return None
    size = data[pos + 1]
    if not 1 <= size <= 4 or pos + 2 + size > len(data):
        return None
    return data[pos + 2:pos + 2 + size]


class Bridge:
    """Serves decoded envelopes with a L{protocols.ussd.dialogue.DialogueManager}."""

    def __init__(self, dialogues, *, first_tid=None, shared=None):
        """
        @param dialogues: the L{protocols.ussd.dialogue.DialogueManager}.
        @param first_tid: first of our TCAP transaction ids (random when C{None}).
        @param shared: a L{protocols.ussd.shared.SharedDialogues} when the
            dialogues live in a store every node shares; None: in this node.
        """
        self.dialogues = dialogues
        self.shared = shared
        start = random.getrandbits(32) if first_tid is None else first_tid
        self._tids = itertools.count(start)

    def handle(self, envelope) -> defer.Deferred:
        """Serve one envelope.

        @return: Deferred firing with an L{protocols.ussd.envelope.Answer};
            it fails with L{protocols.ussd.envelope.HttpError} for a request
            that cannot be answered in protocol terms (and with anything else only
            on a bug, which the resource turns into a 500).
        """
        serve = {
            "tcap": self._tcap,
            "map": self._map,
            "text": self._text,
            None: self._release_only,
        }[envelope.payload_kind]
        if self.shared is None:
            return defer.maybeDeferred(serve, envelope)
        d = self.shared.step(envelope.dialogue_id, envelope.operation, serve, envelope)
        return d.addErrback(_held)

    # -- no payload / plain text ------------------------------------------------------

    def _release_only(self, env):
        if env.operation not in ("end", "abort"):
            raise bad("a payload is required for %s" % env.operation)
        self.dialogues.release(env.dialogue_id, "ended" if env.operation == "end"
                               else "aborted", source=env.source)
        return Answer("none", env.payload_kind)

    def _text(self, env):
        if env.operation in ("end", "abort"):
            return self._release_only(env)
        if env.operation == "begin":
            try:
                d = self.dialogues.begin(env.dialogue_id, env.msisdn, env.payload,
                                         language=env.language, source=env.source)
            except TooManyDialogues:
                raise HttpError(503, "busy", "too many open USSD dialogues") from None
        else:
            try:
                d = self.dialogues.continue_(env.dialogue_id, env.payload, source=env.source)
            except UnknownDialogue:
                return Answer("end", "text", text=self.dialogues.expired_text(env.language),
                              reason="no open dialogue with this id (ended or timed out)")
            except DialogueBusy:
                raise _busy() from None
        return d.addCallback(lambda reply: Answer(
            "end" if reply.ends else "continue", "text", text=reply.text))

    # -- bare MAP ---------------------------------------------------------------------

    def _map(self, env):
        if env.operation in ("end", "abort"):
            return self._release_only(env)
        if env.operation == "begin":
            return self._map_begin(env)
        return self._map_continue(env)

    def _map_begin(self, env):
        opcode = PROCESS if env.opcode is None else env.opcode
        if opcode != PROCESS:
            return _map_reject((ProblemType.INVOKE, InvokeProblem.UNRECOGNIZED_OPERATION),
                               "operation %d is not served at begin; only "
                               "processUnstructuredSS-Request (59)" % opcode)
        try:
            arg = decode_map_argument(PROCESS, env.payload)
        except UssdDecodeError as exc:
            return _map_error_answer(exc)
        msisdn = str(arg.msisdn) if arg.msisdn and arg.msisdn.digits else env.msisdn
        if not msisdn:
            return _map_error(MapError.DATA_MISSING,
                              "no MSISDN in the USSD-Arg nor in X-USSD-MSISDN / msisdn")
        try:
            d = self.dialogues.begin(env.dialogue_id, msisdn, arg.text,
                                     language=env.language, dcs_language=arg.language,
                                     source=env.source)
        except TooManyDialogues:
            return _map_error(MapError.USSD_BUSY, "too many open USSD dialogues")
        return d.addCallback(_map_reply)

    def _map_continue(self, env):
        try:
            res = decode_ussd_res(env.payload)
        except UssdDecodeError as exc:
            self.dialogues.release(env.dialogue_id, "ended (undecodable answer)",
                                   source=env.source)
            if exc.map_error is None:
                return _map_reject((ProblemType.RETURN_RESULT, RR_MISTYPED_RESULT),
                                   exc.reason)
            return _map_error_answer(exc)
        try:
            d = self.dialogues.continue_(env.dialogue_id, res.text, source=env.source)
        except UnknownDialogue:
            text = self.dialogues.expired_text(env.language)
            return Answer("end", "map", encode_ussd_res(text), text=text,
                          component="result", opcode=PROCESS,
                          reason="no open dialogue with this id (ended or timed out)")
        except DialogueBusy:
            raise _busy() from None
        return d.addCallback(_map_reply)

    # -- TCAP -------------------------------------------------------------------------

    def _tcap(self, env):
        try:
            message = decode_tcap(env.payload)
        except UssdDecodeError as exc:
            return self._tcap_undecodable(env, exc)
        if env.operation is not None and env.operation != message.kind:
            raise bad("X-USSD-Operation / operation is %r but the TCAP message is a %s"
                      % (env.operation, message.kind))
        if message.kind == "unidirectional":
            return Answer("none", "tcap", reason="TCAP Unidirectional is not served")
        if message.kind == "begin":
            return self._tcap_begin(env, message)
        # Continue, End and Abort name our transaction in their dtid.
        dialogue_id = env.dialogue_id or _tcap_dialogue_id(message.dtid)
        if message.kind in ("end", "abort"):
            self.dialogues.release(dialogue_id, "ended" if message.kind == "end"
                                   else "aborted", source=env.source)
            return Answer("none", "tcap", dialogue_id=dialogue_id)
        return self._tcap_continue(env, message, dialogue_id)

    def _tcap_undecodable(self, env, exc):
        otid = exc.otid or peek_otid(env.payload)
        if env.dialogue_id:
            self.dialogues.release(env.dialogue_id, "ended (undecodable message)",
                                   source=env.source)
        if otid is None:
            raise bad("TCAP message unusable and no transaction id to answer: %s"
                      % exc.reason)
        if exc.abort_cause is not None:
            return _tcap_abort(otid, exc.abort_cause, exc.reason, env.dialogue_id)
        component = ussd_map.error_component(exc, exc.invoke_id)
        return _tcap_end(otid, None, [component], exc.reason, env.dialogue_id)

    def _tcap_begin(self, env, message):
        otid = message.otid
        our_tid = self._new_tid()
        dialogue_id = env.dialogue_id or _tcap_dialogue_id(our_tid)
        aare = ussd_map.answer_dialogue(message.dialogue)
        if aare is not None and aare.result != 0:
            return Answer("abort", "tcap", encode_tcap(TcapMessage(
                "abort", dtid=otid, dialogue=aare)), dialogue_id=dialogue_id,
                reason="application context not supported; "
                       "networkUnstructuredSsContext-v2 is served")
        invoke = next((c for c in message.components if isinstance(c, Invoke)), None)
        if invoke is None:
            return _tcap_end(otid, aare, [], "the Begin carries no Invoke", dialogue_id)
        if invoke.opcode != PROCESS:
            return _tcap_end(otid, aare, [Reject(
                invoke.invoke_id, ProblemType.INVOKE, InvokeProblem.UNRECOGNIZED_OPERATION)],
                "operation %r is not served at begin" % (invoke.opcode,), dialogue_id)
        try:
            arg = decode_map_argument(PROCESS, invoke.parameter)
        except UssdDecodeError as exc:
            return _tcap_end(otid, aare, [ussd_map.error_component(exc, invoke.invoke_id)],
                             exc.reason, dialogue_id)
        msisdn = str(arg.msisdn) if arg.msisdn and arg.msisdn.digits else env.msisdn
        if not msisdn:
            return _tcap_end(otid, aare, [ReturnError(invoke.invoke_id,
                                                      int(MapError.DATA_MISSING))],
                             "no MSISDN in the USSD-Arg nor in the envelope", dialogue_id)
        transport = {"peer_tid": otid, "our_tid": our_tid,
                     "invoke_id": invoke.invoke_id, "aare": aare, "pending": None,
                     "next_invoke": invoke.invoke_id}
        try:
            d = self.dialogues.begin(dialogue_id, msisdn, arg.text, language=env.language,
                                     dcs_language=arg.language, source=env.source,
                                     transport=transport)
        except TooManyDialogues:
            return _tcap_end(otid, aare, [ReturnError(invoke.invoke_id,
                                                      int(MapError.USSD_BUSY))],
                             "too many open USSD dialogues", dialogue_id)
        return d.addCallback(_tcap_reply, transport, dialogue_id)

    def _tcap_continue(self, env, message, dialogue_id):
        session = self.dialogues.get(dialogue_id, env.source)
        transport = session.transport if session is not None else {}
        if session is None or transport.get("our_tid") != message.dtid:
            return _tcap_abort(message.otid, PAbortCause.UNRECOGNIZED_TRANSACTION_ID,
                               "no open dialogue for this transaction (ended or timed "
                               "out)", dialogue_id)
        if session.busy:
            raise _busy()
        peer, pending = transport["peer_tid"], transport["pending"]
        result = next((c for c in message.components if isinstance(c, ReturnResult)
                       and c.invoke_id == pending), None)
        if result is None:
            self.dialogues.release(dialogue_id, "ended (no answer to our request)",
                                   source=env.source)
            other = message.components[0] if message.components else None
            if isinstance(other, (ReturnError, Reject)):
                return _tcap_end(peer, None, [], "the subscriber's side answered our "
                                 "request with an error or reject", dialogue_id)
            components = []
            if isinstance(other, ReturnResult):
                components = [Reject(other.invoke_id, ProblemType.RETURN_RESULT,
                                     RR_UNRECOGNIZED_INVOKE_ID)]
            elif isinstance(other, Invoke):
                components = [Reject(other.invoke_id, ProblemType.INVOKE,
                                     InvokeProblem.UNRECOGNIZED_OPERATION)]
            return _tcap_end(peer, None, components, "the Continue carries no result "
                             "for our unstructuredSS-Request", dialogue_id)
        try:
            res = decode_ussd_res(result.parameter)
        except UssdDecodeError as exc:
            self.dialogues.release(dialogue_id, "ended (undecodable answer)",
                                   source=env.source)
            if exc.map_error is not None:
                components = [ReturnError(transport["invoke_id"], int(exc.map_error))]
            else:
                components = [Reject(pending, ProblemType.RETURN_RESULT, RR_MISTYPED_RESULT),
                              ReturnError(transport["invoke_id"],
                                          int(MapError.SYSTEM_FAILURE))]
            return _tcap_end(peer, None, components, exc.reason, dialogue_id)
        transport["pending"] = None
        try:
            d = self.dialogues.continue_(dialogue_id, res.text, source=env.source)
        except DialogueBusy:
            raise _busy() from None
        return d.addCallback(_tcap_reply, transport, dialogue_id)

    def _new_tid(self) -> bytes:
        return (next(self._tids) % (1 << 32)).to_bytes(4, "big")


def _tcap_dialogue_id(our_tid) -> str:
    """The dialogue id of a TCAP dialogue the gateway gave no id for: our transaction id."""
    return "tcap-" + (our_tid or b"").hex()


def _held(failure):
    failure.trap(DialogueBusy)
    raise _busy()


def _busy():
    return HttpError(409, "dialogue_busy",
                     "the previous request of this dialogue is still being served")


# -- answer builders --------------------------------------------------------------------

def _map_reply(reply):
    if reply.ends:
        return Answer("end", "map", encode_ussd_res(reply.text), text=reply.text,
                      component="result", opcode=PROCESS)
    return Answer("continue", "map", encode_ussd_request_arg(reply.text),
                  text=reply.text, component="request", opcode=REQUEST)


def _map_error(code, reason):
    return Answer("end", "map", component="error", map_error=int(code), reason=reason)


def _map_reject(problem, reason):
    kind, code = problem
    return Answer("end", "map", component="reject",
                  problem=(_PROBLEM_NAMES[ProblemType(kind)], int(code)), reason=reason)


def _map_error_answer(exc):
    if exc.map_error is not None:
        return _map_error(exc.map_error, exc.reason)
    if exc.reject is not None:
        return _map_reject(exc.reject, exc.reason)
    return _map_error(MapError.SYSTEM_FAILURE, exc.reason)


def _tcap_end(dtid, aare, components, reason, dialogue_id):
    data = encode_tcap(TcapMessage("end", dtid=dtid, dialogue=aare,
                                   components=tuple(c for c in components if c)))
    return Answer("end", "tcap", data, reason=reason, dialogue_id=dialogue_id)


def _tcap_abort(dtid, cause, reason, dialogue_id):
    data = encode_tcap(TcapMessage("abort", dtid=dtid, abort_cause=int(cause)))
    return Answer("abort", "tcap", data, reason=reason, dialogue_id=dialogue_id)


def _tcap_reply(reply, transport, dialogue_id):
    aare = transport.pop("aare", None)
    peer = transport["peer_tid"]
    if reply.ends:
        data = encode_tcap(TcapMessage("end", dtid=peer, dialogue=aare, components=(
            ReturnResult(transport["invoke_id"], PROCESS,
                         encode_ussd_res(reply.text)),)))
        return Answer("end", "tcap", data, text=reply.text, dialogue_id=dialogue_id)
    invoke_id = _next_invoke_id(transport)
    transport["pending"] = invoke_id
    data = encode_tcap(TcapMessage(
        "continue", otid=transport["our_tid"], dtid=peer, dialogue=aare, components=(
            Invoke(invoke_id, REQUEST, encode_ussd_request_arg(reply.text)),)))
    return Answer("continue", "tcap", data, text=reply.text, dialogue_id=dialogue_id)


def _next_invoke_id(transport) -> int:
    """Our next invoke id: after the peer's, within the one-octet range -128..127."""
    value = transport["next_invoke"] + 1
    if value > 127:
        value = -128
    transport["next_invoke"] = value
    return value
