"""Whole TCAP messages to and from plain objects (ITU-T Q.773 §4.2 transaction and component
portions, §4.3 dialogue portion).

L{decode_tcap} checks the transaction portion first (a failure there answers with a
P-Abort), then the dialogue portion, then each component (a failure there answers with a
Reject). Operation parameters stay opaque BER for L{protocols.ussd.map} to decode.
"""

from dataclasses import dataclass, field

from pyasn1.codec.ber import encoder as ber_encoder
from pyasn1.type import univ

from protocols.ussd import tcap_types as T
from protocols.ussd.ber import (CLASS_CONTEXT, BerError, decode_tolerant, read_tlv,
                                split_tlvs)
from protocols.ussd.errors import (GeneralProblem, PAbortCause, ProblemType,
                                   UssdDecodeError, UssdEncodeError,
                                   badly_structured_component)

MESSAGE_KINDS = ("unidirectional", "begin", "continue", "end", "abort")
# Application tag numbers of the message types (Q.773 §4.2.1).
_MESSAGE_TAGS = {0x61: "unidirectional", 0x62: "begin", 0x64: "end",
                 0x65: "continue", 0x67: "abort"}


@dataclass(frozen=True)
class Dialogue:
    """A structured-dialogue PDU (AARQ, AARE or ABRT) from a dialogue portion.

    C{kind} is C{"request"}, C{"response"}, C{"abort"} or C{"other"} (an EXTERNAL
    this module does not interpret, kept whole in C{raw}). C{user_information} holds the
    raw BER of each EXTERNAL in user-information (e.g. MAP-OpenInfo), passed through.
    For a response, C{result} is 0 (accepted) or 1 (reject-permanent) and
    C{diagnostic} is C{("user"|"provider", value)}.
    """

    kind: str
    application_context: tuple | None = None
    result: int | None = None
    diagnostic: tuple | None = None
    abort_source: int | None = None
    user_information: tuple = ()
    raw: bytes | None = None


@dataclass(frozen=True)
class Invoke:
    """Invoke component; C{opcode} is an int (local) or an OID tuple (global)."""

    invoke_id: int
    opcode: int | tuple
    parameter: bytes | None = None
    linked_id: int | None = None


@dataclass(frozen=True)
class ReturnResult:
    """ReturnResult component (C{last} False for ReturnResultNotLast)."""

    invoke_id: int
    opcode: int | tuple | None = None
    parameter: bytes | None = None
    last: bool = True


@dataclass(frozen=True)
class ReturnError:
    """ReturnError component; C{error_code} local int or global OID tuple."""

    invoke_id: int
    error_code: int | tuple
    parameter: bytes | None = None


@dataclass(frozen=True)
class Reject:
    """Reject component; C{invoke_id} is C{None} when not derivable."""

    invoke_id: int | None
    problem_type: ProblemType
    problem: int


@dataclass(frozen=True)
class TcapMessage:
    """One TCAP message: C{kind} in L{MESSAGE_KINDS}, transaction ids as bytes.

    C{abort_cause} is the P-AbortCause of a provider Abort; a user Abort carries its
    ABRT/AARE in C{dialogue} instead.
    """

    kind: str
    otid: bytes | None = None
    dtid: bytes | None = None
    dialogue: Dialogue | None = None
    components: tuple = field(default_factory=tuple)
    abort_cause: int | None = None


def _abort(reason, cause, otid=None):
    return UssdDecodeError(reason, abort_cause=cause, otid=otid)


def _opcode_value(choice):
    name = choice.getName()
    value = choice.getComponent()
    return int(value) if name == "localValue" else tuple(value)


def _opt(seq, name):
    value = seq.getComponentByName(name)
    return value if value.isValue else None


def _opt_bytes(seq, name):
    value = _opt(seq, name)
    return bytes(value) if value is not None else None


def decode_dialogue(content):
    """Decode a dialogue portion's EXTERNAL (the content of [APPLICATION 11]).

    @raise UssdDecodeError: (P-Abort badlyFormattedTransactionPortion) if it is not an
        EXTERNAL or holds a malformed dialogue PDU.
    """
    try:
        external = decode_tolerant(content, T.EXTERNAL)
        ref = _opt(external, "direct-reference")
        encoding = external.getComponentByName("encoding")
        if ref is None or tuple(ref) != T.DIALOGUE_AS_ID \
                or encoding.getName() != "single-ASN1-type":
            return Dialogue("other", raw=bytes(content))
        pdu = decode_tolerant(bytes(encoding.getComponent()), T.DIALOGUE_PDU)
        name = pdu.getName()
        body = pdu.getComponent()
        info = _opt(body, "user-information")
        user_info = (tuple(t.raw for t in split_tlvs(bytes(info)))
                     if info is not None else ())
        if name == "dialogueAbort":
            return Dialogue("abort", abort_source=int(body["abort-source"]),
                            user_information=user_info, raw=bytes(content))
        acn = tuple(body["application-context-name"])
        if name == "dialogueRequest":
            return Dialogue("request", application_context=acn,
                            user_information=user_info, raw=bytes(content))
        diag = body["result-source-diagnostic"]
        side = "user" if diag.getName() == "dialogue-service-user" else "provider"
        return Dialogue("response", application_context=acn, result=int(body["result"]),
                        diagnostic=(side, int(diag.getComponent())),
                        user_information=user_info, raw=bytes(content))
    except BerError as exc:
        raise _abort("bad dialogue portion: %s" % exc,
                     PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION) from None


def decode_component(data):
    """Decode one component TLV into an L{Invoke}, L{ReturnResult},
    L{ReturnError} or L{Reject}.

    @raise UssdDecodeError: with a Reject general problem (unrecognizedComponent for an
        unknown tag, badlyStructuredComponent otherwise), C{invoke_id} set when readable.
    """
    try:
        item = read_tlv(data)
    except BerError as exc:
        raise badly_structured_component("bad component: %s" % exc) from None
    if item.tag_class != CLASS_CONTEXT or item.tag_number not in (1, 2, 3, 4, 7):
        raise UssdDecodeError(
            "unrecognized component tag %r" % (item.key,),
            reject=(ProblemType.GENERAL, GeneralProblem.UNRECOGNIZED_COMPONENT))
    try:
        value = decode_tolerant(data, T.COMPONENT)
    except BerError as exc:
        raise badly_structured_component("bad component: %s" % exc).with_context(
            invoke_id=_peek_invoke_id(item)) from None
    name = value.getName()
    body = value.getComponent()
    if name == "reject":
        derivable = body["invokeID"]
        invoke_id = (int(derivable.getComponent())
                     if derivable.getName() == "derivable" else None)
        problem = body["problem"]
        kinds = ("generalProblem", "invokeProblem", "returnResultProblem",
                 "returnErrorProblem")
        return Reject(invoke_id, ProblemType(kinds.index(problem.getName())),
                      int(problem.getComponent()))
    invoke_id = int(body["invokeID"])
    if name == "invoke":
        linked = _opt(body, "linkedID")
        return Invoke(invoke_id, _opcode_value(body["opCode"]),
                      _opt_bytes(body, "parameter"),
                      int(linked) if linked is not None else None)
    if name == "returnError":
        return ReturnError(invoke_id, _opcode_value(body["errorCode"]),
                           _opt_bytes(body, "parameter"))
    result = _opt(body, "result")
    if result is None:
        return ReturnResult(invoke_id, last=name == "returnResultLast")
    return ReturnResult(invoke_id, _opcode_value(result["opCode"]),
                        bytes(result["parameter"]), last=name == "returnResultLast")


def _peek_invoke_id(item):
    """Best-effort invoke id of a malformed component, for addressing the Reject."""
    try:
        first = split_tlvs(item.content)[0]
        if first.key == (0, 2) and len(first.content) == 1:
            return int.from_bytes(first.content, "big", signed=True)
    except (BerError, IndexError):
        pass
    return None


def decode_tcap(data):
    """Decode a whole TCAP message.

    @param data: the BER octets of one TCMessage.
    @return: a L{TcapMessage}.
    @raise UssdDecodeError: with C{abort_cause} when the message type or transaction
        portion is bad, or with C{reject} (and C{otid}) when a component is bad.
    """
    data = bytes(data)
    if not data or data[0] not in _MESSAGE_TAGS:
        raise _abort("unrecognized TCAP message type",
                     PAbortCause.UNRECOGNIZED_MESSAGE_TYPE)
    try:
        shell = decode_tolerant(data, T.TC_MESSAGE_SHELL)
    except BerError as exc:
        raise _abort("bad transaction portion: %s" % exc,
                     PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION) from None
    kind = shell.getName()
    body = shell.getComponent()
    otid = bytes(body["otid"]) if "otid" in body else None
    dtid = bytes(body["dtid"]) if "dtid" in body else None
    if kind == "abort":
        reason = _opt(body, "reason")
        if reason is None:
            return TcapMessage(kind, dtid=dtid)
        if reason.getName() == "p-abortCause":
            return TcapMessage(kind, dtid=dtid, abort_cause=int(reason.getComponent()))
        return TcapMessage(kind, dtid=dtid,
                           dialogue=decode_dialogue(bytes(reason.getComponent())))
    portion = _opt(body, "dialoguePortion")
    try:
        dialogue = decode_dialogue(bytes(portion)) if portion is not None else None
    except UssdDecodeError as exc:
        raise exc.with_context(otid=otid)
    components = ()
    portion = _opt(body, "components")
    if portion is not None:
        try:
            items = split_tlvs(bytes(portion))
        except BerError as exc:
            raise badly_structured_component("bad component portion: %s" % exc) \
                .with_context(otid=otid) from None
        try:
            components = tuple(decode_component(item.raw) for item in items)
        except UssdDecodeError as exc:
            raise exc.with_context(otid=otid)
    return TcapMessage(kind, otid=otid, dtid=dtid, dialogue=dialogue,
                       components=components)


# --- encoding -------------------------------------------------------------------------

def _set_code(choice, code):
    if isinstance(code, int):
        choice["localValue"] = code
    else:
        choice["globalValue"] = tuple(code)


def _fill_external(external, dialogue):
    """Fill a pyasn1 EXTERNAL (possibly tagged) from a L{Dialogue}."""
    if dialogue.kind == "other":
        if dialogue.raw is None:
            raise UssdEncodeError("dialogue of kind 'other' needs raw EXTERNAL octets")
        try:
            source = decode_tolerant(dialogue.raw, T.EXTERNAL)
        except BerError as exc:
            raise UssdEncodeError("raw dialogue is not an EXTERNAL: %s" % exc) from None
        for name in ("direct-reference", "indirect-reference", "data-value-descriptor"):
            if source[name].isValue:
                external[name] = source[name]
        enc = source["encoding"]
        external["encoding"][enc.getName()] = enc.getComponent()
        return
    pdu = T.DIALOGUE_PDU.clone()
    if dialogue.kind == "request":
        body = pdu["dialogueRequest"]
    elif dialogue.kind == "response":
        body = pdu["dialogueResponse"]
    elif dialogue.kind == "abort":
        body = pdu["dialogueAbort"]
    else:
        raise UssdEncodeError("unknown dialogue kind %r" % (dialogue.kind,))
    if dialogue.kind == "abort":
        body["abort-source"] = dialogue.abort_source or 0
    else:
        if dialogue.application_context is None:
            raise UssdEncodeError("dialogue %s needs an application context"
                                  % dialogue.kind)
        body["protocol-version"] = (1,)
        body["application-context-name"] = tuple(dialogue.application_context)
    if dialogue.kind == "response":
        body["result"] = dialogue.result or 0
        side, value = dialogue.diagnostic or ("user", 0)
        key = "dialogue-service-user" if side == "user" else "dialogue-service-provider"
        body["result-source-diagnostic"][key] = value
    if dialogue.user_information:
        body["user-information"] = b"".join(dialogue.user_information)
    external["direct-reference"] = T.DIALOGUE_AS_ID
    external["encoding"]["single-ASN1-type"] = ber_encoder.encode(pdu)


def _fill_component(choice, component):
    if isinstance(component, Invoke):
        body = choice["invoke"]
        body["invokeID"] = component.invoke_id
        if component.linked_id is not None:
            body["linkedID"] = component.linked_id
        _set_code(body["opCode"], component.opcode)
        if component.parameter is not None:
            body["parameter"] = component.parameter
    elif isinstance(component, ReturnResult):
        body = choice["returnResultLast" if component.last else "returnResultNotLast"]
        body["invokeID"] = component.invoke_id
        if component.parameter is not None:
            if component.opcode is None:
                raise UssdEncodeError("a ReturnResult parameter needs its opcode")
            _set_code(body["result"]["opCode"], component.opcode)
            body["result"]["parameter"] = component.parameter
    elif isinstance(component, ReturnError):
        body = choice["returnError"]
        body["invokeID"] = component.invoke_id
        _set_code(body["errorCode"], component.error_code)
        if component.parameter is not None:
            body["parameter"] = component.parameter
    elif isinstance(component, Reject):
        body = choice["reject"]
        if component.invoke_id is None:
            body["invokeID"]["not-derivable"] = univ.Null("")
        else:
            body["invokeID"]["derivable"] = component.invoke_id
        kinds = ("generalProblem", "invokeProblem", "returnResultProblem",
                 "returnErrorProblem")
        body["problem"][kinds[ProblemType(component.problem_type)]] = component.problem
    else:
        raise UssdEncodeError("not a TCAP component: %r" % (component,))


def encode_tcap(message):
    """Encode a L{TcapMessage} as BER.

    Begin needs C{otid}; Continue C{otid} and C{dtid}; End and Abort C{dtid}. An
    Abort carries C{abort_cause} (P-Abort) or C{dialogue} (U-Abort), or neither.

    @return: the octets of the TCMessage.
    @raise UssdEncodeError: for a missing or over-long (> 4 octets) transaction id, an
        invoke id outside -128..127, an unknown kind or component, or any value the
        TCAP types reject.
    """
    if message.kind not in MESSAGE_KINDS:
        raise UssdEncodeError("unknown TCAP message kind %r" % (message.kind,))
    needs = {"unidirectional": (), "begin": ("otid",), "continue": ("otid", "dtid"),
             "end": ("dtid",), "abort": ("dtid",)}[message.kind]
    for name in needs:
        tid = getattr(message, name)
        if not isinstance(tid, (bytes, bytearray)) or not 1 <= len(tid) <= 4:
            raise UssdEncodeError("%s %s must be 1..4 octets" % (message.kind, name))
    try:
        tc = T.TC_MESSAGE.clone()
        body = tc[message.kind]
        for name in needs:
            body[name] = bytes(getattr(message, name))
        if message.kind == "abort":
            if message.abort_cause is not None:
                body["reason"]["p-abortCause"] = int(message.abort_cause)
            elif message.dialogue is not None:
                _fill_external(body["reason"]["u-abortCause"], message.dialogue)
            return ber_encoder.encode(tc)
        if message.dialogue is not None:
            _fill_external(body["dialoguePortion"], message.dialogue)
        if message.components or message.kind == "unidirectional":
            portion = body["components"]
            for position, component in enumerate(message.components):
                _fill_component(portion.getComponentByPosition(position), component)
        return ber_encoder.encode(tc)
    except UssdEncodeError:
        raise
    except Exception as exc:  # pyasn1 constraint and type errors
        raise UssdEncodeError("cannot encode TCAP %s: %s" % (message.kind, exc)) from None
