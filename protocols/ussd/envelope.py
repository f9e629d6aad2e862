"""The HTTP envelope of C{POST /ussd}: requests to L{Envelope}, L{Answer} to
responses. Pure: no reactor, no dialogue state (the contract is in docs/ussd.md).

Two request forms, answered in the same form:

* **binary** -- C{Content-Type: application/octet-stream}; the body is the BER of a
  bare MAP USSD-Arg / USSD-Res or of a whole TCAP message, and headers carry the rest
  (C{X-USSD-Dialogue-Id}, C{X-USSD-Operation}, C{X-USSD-Payload}, C{X-USSD-MSISDN},
  C{X-USSD-Language}, C{X-USSD-Opcode}).
* **JSON** -- C{Content-Type: application/json}; an object with C{dialogue_id},
  C{operation}, optional C{msisdn}, C{language}, C{opcode} and at most one of
  C{map} / C{tcap} (base64 BER) or C{text} (plain text, for gateways that decode
  MAP themselves).

Anything unusable raises L{HttpError} naming the field; subscriber text is never
echoed back in an error.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from protocols.jsonbound import nesting_depth
from protocols.ussd.gsm7 import MAX_USSD_SEPTETS

OPERATIONS = ("begin", "continue", "end", "abort")
#: Answer operations: C{none} means nothing is to be relayed (the dialogue is closed).
ANSWER_OPERATIONS = ("continue", "end", "abort", "none")
PAYLOAD_KINDS = ("map", "tcap", "text")

BINARY_TYPES = ("application/octet-stream",)
JSON_TYPES = ("application/json",)
#: The envelope is one flat object: deeper nesting is refused before decoding.
MAX_JSON_DEPTH = 8

#: First octet of a TCAP message (Q.773 §4.2.1 application tags) or of a MAP SEQUENCE.
_TCAP_FIRST_OCTETS = frozenset({0x61, 0x62, 0x64, 0x65, 0x67})
_SEQUENCE = 0x30

_JSON_KEYS = frozenset({"dialogue_id", "operation", "msisdn", "language", "opcode",
                        "map", "tcap", "text"})

H_DIALOGUE_ID = b"x-ussd-dialogue-id"
H_OPERATION = b"x-ussd-operation"
H_PAYLOAD = b"x-ussd-payload"
H_MSISDN = b"x-ussd-msisdn"
H_LANGUAGE = b"x-ussd-language"
H_OPCODE = b"x-ussd-opcode"


class HttpError(Exception):
    """A request refused at the HTTP level: C{status}, a short C{error} word, and a
    C{detail} naming what was wrong (safe to send and log)."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def body(self) -> bytes:
        """The JSON body of the error response."""
        return json.dumps({"error": self.error, "detail": self.detail}).encode()


def bad(detail: str) -> HttpError:
    """A 400 C{bad_request} error."""
    return HttpError(400, "bad_request", detail)


@dataclass(frozen=True)
class Envelope:
    """One decoded request.

    @ivar form: C{"binary"} or C{"json"} (the answer uses the same).
    @ivar dialogue_id: the gateway's dialogue id (C{None} only for TCAP, where the
        peer's transaction id stands in).
    @ivar operation: one of L{OPERATIONS} (C{None} only for TCAP).
    @ivar payload_kind: C{"map"}, C{"tcap"}, C{"text"}, or C{None} when there is
        no payload (allowed for end and abort).
    @ivar payload: BER C{bytes} or C{str} text.
    @ivar source: C{"ussd:<client address>"}.
    """

    form: str
    dialogue_id: str | None
    operation: str | None
    payload_kind: str | None
    payload: bytes | str | None = None
    msisdn: str | None = None
    language: str | None = None
    opcode: int | None = None
    source: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the bridge sends back.

    @ivar operation: one of L{ANSWER_OPERATIONS}.
    @ivar payload_kind: C{"map"}, C{"tcap"} or C{"text"} (mirrors the request).
    @ivar payload: the BER to relay (MAP USSD-Res / USSD-Arg or a TCAP message).
    @ivar text: the plain text shown to the subscriber, when there is one.
    @ivar component: for bare MAP: C{"result"} (USSD-Res of opcode 59), C{"request"}
        (USSD-Arg of an unstructuredSS-Request, opcode 60), C{"error"} (MAP error
        C{map_error}) or C{"reject"} (TCAP problem C{problem}).
    @ivar problem: C{(problem type name, code)}, e.g. C{("invoke", 2)}.
    @ivar reason: why an error, abort or reject was sent (safe to log).
    """

    operation: str
    payload_kind: str | None
    payload: bytes | None = None
    text: str | None = None
    component: str | None = None
    opcode: int | None = None
    map_error: int | None = None
    problem: tuple | None = None
    reason: str | None = None
    dialogue_id: str | None = None


def _media_type(request) -> str:
    raw = request.getHeader(b"content-type") or b""
    return raw.split(b";", 1)[0].strip().lower().decode("latin-1")


def read_body(request, max_bytes: int) -> bytes:
    """The request body, at most C{max_bytes} long.

    @raise HttpError: 413 when it is longer.
    """
    length = request.getHeader(b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        raise HttpError(413, "too_large", "body of %d octets is over the limit of %d"
                        % (int(length), max_bytes))
    content = request.content
    if content is None:
        return b""
    content.seek(0)
    body = content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise HttpError(413, "too_large", "body is over the limit of %d octets" % max_bytes)
    return body


def parse(request, body: bytes, *, max_dialogue_id: int = 64,
          source: str | None = None) -> Envelope:
    """Decode the envelope of a C{POST /ussd}.

    @param request: the twisted.web request (only headers are read from it).
    @param body: the body from L{read_body}.
    @return: an L{Envelope}.
    @raise HttpError: 415 for another content type; 400 naming the bad field.
    """
    media = _media_type(request)
    if media in BINARY_TYPES:
        return _parse_binary(request, body, max_dialogue_id, source)
    if media in JSON_TYPES:
        return _parse_json(body, max_dialogue_id, source)
    raise HttpError(415, "unsupported_media_type",
                    "content-type must be application/octet-stream (BER) or "
                    "application/json, got %r" % (media or "none",))


def _header(request, name) -> str | None:
    value = request.getHeader(name)
    if value is None:
        return None
    try:
        text = value.decode("ascii").strip()
    except UnicodeDecodeError:
        raise bad("%s: must be ASCII" % name.decode()) from None
    return text or None


def _parse_binary(request, body, max_dialogue_id, source):
    kind = _header(request, H_PAYLOAD)
    if kind is not None:
        kind = kind.lower()
        if kind not in ("map", "tcap"):
            raise bad("X-USSD-Payload: must be 'map' or 'tcap'")
    elif body:
        if body[0] in _TCAP_FIRST_OCTETS:
            kind = "tcap"
        elif body[0] == _SEQUENCE:
            kind = "map"
        else:
            raise bad("body: first octet 0x%02X is neither a MAP USSD-Arg/USSD-Res "
                      "(0x30) nor a TCAP message (0x62, 0x64, 0x65, 0x67); say which "
                      "with X-USSD-Payload" % body[0])
    opcode = _header(request, H_OPCODE)
    return _checked(
        "binary", _header(request, H_DIALOGUE_ID), _header(request, H_OPERATION),
        kind if body else None, body or None, _header(request, H_MSISDN),
        _header(request, H_LANGUAGE), _opcode(opcode, "X-USSD-Opcode"),
        max_dialogue_id, source, names=_HEADER_NAMES)


def _parse_json(body, max_dialogue_id, source):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("body: not a UTF-8 JSON document") from None
    if nesting_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise bad("body: JSON nested more than %d levels deep" % MAX_JSON_DEPTH)
    try:
        doc = json.loads(text)
    except ValueError:
        raise bad("body: not a UTF-8 JSON document") from None
    if not isinstance(doc, dict):
        raise bad("body: must be a JSON object")
    unknown = sorted(set(doc) - _JSON_KEYS)
    if unknown:
        raise bad("%s: unknown field (allowed: %s)" % (unknown[0], ", ".join(sorted(_JSON_KEYS))))
    present = [k for k in PAYLOAD_KINDS if doc.get(k) is not None]
    if len(present) > 1:
        raise bad("%s: give only one of map, tcap, text" % present[1])
    kind = present[0] if present else None
    payload = None
    if kind in ("map", "tcap"):
        value = doc[kind]
        if not isinstance(value, str):
            raise bad("%s: must be a base64 string" % kind)
        try:
            payload = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise bad("%s: not valid base64" % kind) from None
        if not payload:
            raise bad("%s: must not be empty" % kind)
    elif kind == "text":
        payload = doc["text"]
        if not isinstance(payload, str):
            raise bad("text: must be a string")
        if not payload or len(payload) > MAX_USSD_SEPTETS:
            raise bad("text: must be 1..%d characters (a USSD string)" % MAX_USSD_SEPTETS)
    strings = {}
    for key in ("dialogue_id", "operation", "msisdn", "language"):
        value = doc.get(key)
        if value is not None and not isinstance(value, str):
            raise bad("%s: must be a string" % key)
        strings[key] = value.strip() if value else None
    opcode = doc.get("opcode")
    if opcode is not None and (isinstance(opcode, bool) or not isinstance(opcode, int)):
        raise bad("opcode: must be an integer")
    return _checked("json", strings["dialogue_id"], strings["operation"], kind, payload,
                    strings["msisdn"], strings["language"], opcode, max_dialogue_id,
                    source, names=_JSON_NAMES)


_HEADER_NAMES = {"dialogue_id": "X-USSD-Dialogue-Id", "operation": "X-USSD-Operation",
                 "msisdn": "X-USSD-MSISDN", "language": "X-USSD-Language",
                 "opcode": "X-USSD-Opcode", "payload": "body"}
_JSON_NAMES = {"dialogue_id": "dialogue_id", "operation": "operation",
               "msisdn": "msisdn", "language": "language", "opcode": "opcode",
               "payload": "map, tcap or text"}


def _opcode(value, name):
    if value is None:
        return None
    if not value.isdigit():
        raise bad("%s: must be an integer" % name)
    return int(value)


def _checked(form, dialogue_id, operation, kind, payload, msisdn, language, opcode,
             max_dialogue_id, source, *, names):
    if operation is not None:
        operation = operation.lower()
        if operation not in OPERATIONS:
            raise bad("%s: must be one of %s" % (names["operation"], ", ".join(OPERATIONS)))
    elif kind != "tcap":
        raise bad("%s: required (one of %s)" % (names["operation"], ", ".join(OPERATIONS)))
    if dialogue_id is not None:
        if len(dialogue_id) > max_dialogue_id or not dialogue_id.isprintable() \
                or not dialogue_id.isascii():
            raise bad("%s: must be 1..%d printable ASCII characters"
                      % (names["dialogue_id"], max_dialogue_id))
    elif kind != "tcap":
        raise bad("%s: required" % names["dialogue_id"])
    if operation in ("begin", "continue") and kind is None:
        raise bad("%s: required for %s" % (names["payload"], operation))
    if msisdn is not None:
        digits = msisdn[1:] if msisdn.startswith("+") else msisdn
        if not (digits.isdigit() and digits.isascii() and 1 <= len(digits) <= 20):
            raise bad("%s: must be 1..20 digits with an optional leading +"
                      % names["msisdn"])
    if language is not None:
        if not (language.isalpha() and language.isascii() and 2 <= len(language) <= 3):
            raise bad("%s: must be a 2- or 3-letter language code" % names["language"])
        language = language.lower()
    if opcode is not None:
        if kind != "map":
            raise bad("%s: only meaningful with a bare MAP payload" % names["opcode"])
        if not 0 <= opcode <= 255:
            raise bad("%s: must be 0..255" % names["opcode"])
    if kind == "text" and operation == "begin" and msisdn is None:
        raise bad("%s: required to begin a dialogue with plain text" % names["msisdn"])
    return Envelope(form, dialogue_id, operation, kind, payload, msisdn, language, opcode,
                    source)


# -- answers ----------------------------------------------------------------------------

def _ascii(text: str) -> bytes:
    return text.encode("ascii", "replace").replace(b"\r", b" ").replace(b"\n", b" ")


def render(request, envelope: Envelope, answer: Answer) -> bytes:
    """Write C{answer} in the envelope's form: set headers, return the body."""
    dialogue_id = answer.dialogue_id or envelope.dialogue_id
    if envelope.form == "json":
        return _render_json(request, dialogue_id, answer)
    request.setHeader(b"content-type", b"application/octet-stream")
    if dialogue_id:
        request.setHeader(b"x-ussd-dialogue-id", _ascii(dialogue_id))
    request.setHeader(b"x-ussd-operation", answer.operation.encode())
    if answer.payload_kind in ("map", "tcap"):
        request.setHeader(b"x-ussd-payload", answer.payload_kind.encode())
    if answer.component:
        request.setHeader(b"x-ussd-component", answer.component.encode())
    if answer.opcode is not None:
        request.setHeader(b"x-ussd-opcode", b"%d" % answer.opcode)
    if answer.map_error is not None:
        request.setHeader(b"x-ussd-map-error", b"%d" % answer.map_error)
    if answer.problem is not None:
        request.setHeader(b"x-ussd-problem", _ascii("%s:%d" % answer.problem))
    if answer.reason:
        request.setHeader(b"x-ussd-reason", _ascii(answer.reason))
    return answer.payload or b""


def _render_json(request, dialogue_id, answer):
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    doc = {"dialogue_id": dialogue_id, "operation": answer.operation}
    if answer.payload is not None and answer.payload_kind in ("map", "tcap"):
        doc[answer.payload_kind] = base64.b64encode(answer.payload).decode("ascii")
    if answer.text is not None:
        doc["text"] = answer.text
    for key in ("component", "opcode", "map_error", "reason"):
        value = getattr(answer, key)
        if value is not None:
            doc[key] = value
    if answer.problem is not None:
        doc["problem"] = {"type": answer.problem[0], "code": answer.problem[1]}
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
