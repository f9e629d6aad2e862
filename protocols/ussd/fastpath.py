"""Fast TCAP/MAP USSD codec on bytes for the common dialogue shapes, falling back to pyasn1.

A USSD dialogue through the bridge is almost always the same few shapes: a TCAP Begin
(AARQ for a dialogue-as-id context, one Invoke of processUnstructuredSS-Request), a
Continue or End answering it (AARE, an Invoke of unstructuredSS-Request or a
ReturnResultLast), and the USSD-Arg / USSD-Res inside. This module reads and writes those
shapes directly on bytes. For anything else -- another component or dialogue kind,
indefinite or non-minimal lengths, elements out of order, a value a constraint refuses,
an unknown extension where the reference would have to decide -- it steps aside and the
pyasn1 codec (L{protocols.ussd.tcap}, L{protocols.ussd.map}) does the work, so
that every answer, error included, is the reference's.

The fast path only accepts input that the reference decodes to the very same objects,
and only writes what the reference would write byte for byte (checked by property tests
against pyasn1 on generated messages).
"""

from protocols.ussd import gsm7
from protocols.ussd import map as ussd_map
from protocols.ussd import tcap
from protocols.ussd.ber import MAX_DEPTH, encode_length
from protocols.ussd.map_types import MAX_ISDN_ADDRESS_LENGTH, MAX_USSD_STRING_LENGTH, Operation
from protocols.ussd.tcap import Dialogue, Invoke, ReturnResult, TcapMessage
from protocols.ussd.tcap_types import DIALOGUE_AS_ID

#: Deepest nesting the fast path reads itself; deeper input goes to the reference.
FAST_DEPTH = min(10, MAX_DEPTH)

_BEGIN, _END, _CONTINUE = 0x62, 0x64, 0x65
_KINDS = {_BEGIN: "begin", _END: "end", _CONTINUE: "continue"}
_KIND_TAGS = {v: k for k, v in _KINDS.items()}
_OPCODES = frozenset(int(op) for op in Operation)


class _Fallback(Exception):
    """The input is not one of the shapes served here: let the reference decide."""


# --- reading ------------------------------------------------------------------------

def _header(data, pos, end):
    """C{(tag_octet, content_start, content_end)} of a definite, minimally encoded
    element with a low tag number at C{pos}; L{_Fallback} for anything else."""
    if pos + 2 > end:
        raise _Fallback
    first = data[pos]
    if first & 0x1F == 0x1F:
        raise _Fallback
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 3 or pos + size > end:
            raise _Fallback
        length = int.from_bytes(data[pos:pos + size], "big")
        if length < 0x80 or length >> (8 * (size - 1)) == 0:
            raise _Fallback          # not the minimal form: the reference re-encodes it
        pos += size
    if pos + length > end:
        raise _Fallback
    return first, pos, pos + length


def _check(data, pos, end, depth):
    """Check that C{data[pos:end]} is a run of definite, minimal elements, nested at
    most L{FAST_DEPTH} deep (what the reference copies unchanged)."""
    if depth > FAST_DEPTH:
        raise _Fallback
    while pos < end:
        first, start, pos = _header(data, pos, end)
        if first & 0x20:
            _check(data, start, pos, depth + 1)


def _children(data, pos, end):
    """The elements of a constructed element's content: C{[(tag, start, end), ...]}."""
    out = []
    while pos < end:
        first, start, pos = _header(data, pos, end)
        out.append((first, start, pos))
    return out


def _integer(data, start, end):
    if start == end:
        raise _Fallback              # pyasn1 reads an empty INTEGER as 0; leave it there
    return int.from_bytes(data[start:end], "big", signed=True)


def _invoke_id(data, item):
    first, start, end = item
    if first != 0x02:
        raise _Fallback
    value = _integer(data, start, end)
    if not -128 <= value <= 127:
        raise _Fallback
    return value


def _local_opcode(data, item):
    first, start, end = item
    if first != 0x02:
        raise _Fallback              # a global (OID) code or something else
    return _integer(data, start, end)


def _oid(data, start, end):
    """Decode OBJECT IDENTIFIER content as pyasn1 does; odd forms go to the reference."""
    if start == end or data[start] == 0x80:
        raise _Fallback
    arcs = []
    value = 0
    for pos in range(start, end):
        octet = data[pos]
        if value == 0 and octet == 0x80:
            raise _Fallback
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if data[end - 1] & 0x80:
        raise _Fallback
    first = arcs[0]
    if first < 40:
        head = (0, first)
    elif first < 80:
        head = (1, first - 40)
    else:
        head = (2, first - 80)
    return head + tuple(arcs[1:])


_DIALOGUE_AS_ID = bytes.fromhex("0607") + bytes((0, 17, 0x86, 0x05, 1, 1, 1))
_PROTOCOL_VERSION_1 = bytes.fromhex("80020780")


def _explicit_one(data, item, tag):
    """The single element inside the explicit tag C{item} (which must be C{tag})."""
    first, start, end = item
    if first != tag:
        raise _Fallback
    inner = _children(data, start, end)
    if len(inner) != 1:
        raise _Fallback
    return inner[0]


def _user_information(data, items, index):
    """C{(user_information, next_index)}: the [30] element at C{items[index]} if any."""
    if index < len(items) and items[index][0] == 0xBE:
        _, start, end = items[index]
        return tuple(bytes(data[s - _hl(data, s, e):e]) for _, s, e in
                     _children(data, start, end)), index + 1
    return (), index


def _hl(data, start, end):
    """Header length of the element whose content is C{data[start:end]}."""
    length = end - start
    return 2 if length < 0x80 else 2 + (length.bit_length() + 7) // 8


def _dialogue(data, start, end):
    """Decode the content of a dialogue portion ([APPLICATION 11])."""
    items = _children(data, start, end)
    if len(items) != 1 or items[0][0] != 0x28:
        raise _Fallback
    _, ext_start, ext_end = items[0]
    raw = bytes(data[start:end])
    parts = _children(data, ext_start, ext_end)
    if len(parts) != 2 or bytes(data[parts[0][1] - 2:parts[0][2]]) != _DIALOGUE_AS_ID:
        raise _Fallback
    pdu_tag, pdu_start, pdu_end = _explicit_one(data, parts[1], 0xA0)
    fields = _children(data, pdu_start, pdu_end)
    if pdu_tag in (0x60, 0x61):
        index = 0
        if fields and fields[0][0] == 0x80:
            _, s, e = fields[0]
            if bytes(data[s - 2:e]) != _PROTOCOL_VERSION_1:
                raise _Fallback
            index = 1
        if index >= len(fields):
            raise _Fallback
        oid_tag, s, e = _explicit_one(data, fields[index], 0xA1)
        if oid_tag != 0x06:
            raise _Fallback
        context = _oid(data, s, e)
        index += 1
        if pdu_tag == 0x60:
            info, index = _user_information(data, fields, index)
            if index != len(fields):
                raise _Fallback
            return Dialogue("request", application_context=context,
                            user_information=info, raw=raw)
        if index + 2 > len(fields):
            raise _Fallback
        tag_, s, e = _explicit_one(data, fields[index], 0xA2)
        if tag_ != 0x02:
            raise _Fallback
        result = _integer(data, s, e)
        choice = _explicit_one(data, fields[index + 1], 0xA3)
        side = {0xA1: "user", 0xA2: "provider"}.get(choice[0])
        if side is None:
            raise _Fallback
        tag_, s, e = _explicit_one(data, choice, choice[0])
        if tag_ != 0x02:
            raise _Fallback
        diagnostic = (side, _integer(data, s, e))
        info, index = _user_information(data, fields, index + 2)
        if index != len(fields):
            raise _Fallback
        return Dialogue("response", application_context=context, result=result,
                        diagnostic=diagnostic, user_information=info, raw=raw)
    raise _Fallback


def _plain_parameter(first):
    """Whether an operation parameter with this tag octet is read here: a SEQUENCE or a
    tagged element (pyasn1 has its own ideas about other universal tags in an ANY)."""
    return first == 0x30 or first & 0xC0 != 0


def _component(data, item):
    first, start, end = item
    fields = _children(data, start, end)
    if not fields:
        raise _Fallback
    invoke_id = _invoke_id(data, fields[0])
    if first == 0xA1:
        index = 1
        linked = None
        if index < len(fields) and fields[index][0] == 0x80:
            _, s, e = fields[index]
            linked = _integer(data, s, e)
            if not -128 <= linked <= 127:
                raise _Fallback
            index += 1
        if index >= len(fields):
            raise _Fallback
        opcode = _local_opcode(data, fields[index])
        index += 1
        parameter = None
        if index < len(fields):
            first, s, e = fields[index]
            if not _plain_parameter(first):
                raise _Fallback
            parameter = bytes(data[s - _hl(data, s, e):e])
            index += 1
        if index != len(fields):
            raise _Fallback
        return Invoke(invoke_id, opcode, parameter, linked)
    if first == 0xA2:
        if len(fields) == 1:
            return ReturnResult(invoke_id, last=True)
        if len(fields) != 2 or fields[1][0] != 0x30:
            raise _Fallback
        _, s, e = fields[1]
        inner = _children(data, s, e)
        if len(inner) != 2:
            raise _Fallback
        opcode = _local_opcode(data, inner[0])
        first, ps, pe = inner[1]
        if not _plain_parameter(first):
            raise _Fallback
        return ReturnResult(invoke_id, opcode, bytes(data[ps - _hl(data, ps, pe):pe]),
                            last=True)
    raise _Fallback


def _decode_tcap(data):
    kind = _KINDS.get(data[0]) if data else None
    if kind is None:
        raise _Fallback
    first, start, end = _header(data, 0, len(data))
    if end != len(data):
        raise _Fallback
    _check(data, start, end, 1)
    items = _children(data, start, end)
    tids = {}
    index = 0
    for name, tag_ in (("otid", 0x48), ("dtid", 0x49)):
        if kind == "begin" and name == "dtid" or kind == "end" and name == "otid":
            continue
        if index >= len(items) or items[index][0] != tag_:
            raise _Fallback
        _, s, e = items[index]
        if not 1 <= e - s <= 4:
            raise _Fallback
        tids[name] = bytes(data[s:e])
        index += 1
    dialogue = None
    if index < len(items) and items[index][0] == 0x6B:
        _, s, e = items[index]
        dialogue = _dialogue(data, s, e)
        index += 1
    components = ()
    if index < len(items) and items[index][0] == 0x6C:
        _, s, e = items[index]
        parts = _children(data, s, e)
        if not parts:
            raise _Fallback
        components = tuple(_component(data, part) for part in parts)
        index += 1
    if index != len(items):
        raise _Fallback
    return TcapMessage(kind, otid=tids.get("otid"), dtid=tids.get("dtid"),
                       dialogue=dialogue, components=components)


def decode_tcap(data):
    """Decode a whole TCAP message: L{protocols.ussd.tcap.decode_tcap}, faster for
    the common shapes.

    @return: a L{protocols.ussd.tcap.TcapMessage}, equal to the reference's.
    @raise UssdDecodeError: as the reference (which then does the decoding).
    """
    data = bytes(data)
    try:
        return _decode_tcap(data)
    except (_Fallback, IndexError, ValueError):
        return tcap.decode_tcap(data)


def _ussd_sequence(data):
    """C{(dcs, string, other elements)} of a USSD-Arg / USSD-Res SEQUENCE."""
    if not data or data[0] != 0x30:
        raise _Fallback
    _, start, end = _header(data, 0, len(data))
    if end != len(data):
        raise _Fallback
    _check(data, start, end, 1)
    items = _children(data, start, end)
    if len(items) < 2 or items[0][0] != 0x04 or items[1][0] != 0x04:
        raise _Fallback
    _, s, e = items[0]
    if e - s != 1:
        raise _Fallback
    dcs = data[s]
    _, s, e = items[1]
    if not 1 <= e - s <= MAX_USSD_STRING_LENGTH:
        raise _Fallback
    return dcs, data[s:e], items[2:]


def _decode_arg(opcode, data):
    if opcode not in _OPCODES:
        raise _Fallback
    dcs, string, rest = _ussd_sequence(data)
    pattern = msisdn = None
    expect = 2          # 2: alertingPattern or msisdn may come, 3: msisdn, 4: nothing
    for first, s, e in rest:
        key = first & 0xDF          # (class, number): the constructed bit aside
        if key == 0x04 and expect <= 2:
            if first != 0x04 or e - s != 1:
                raise _Fallback
            pattern, expect = data[s], 3
        elif key == 0x80 and expect <= 3:
            if first != 0x80 or not 1 <= e - s <= MAX_ISDN_ADDRESS_LENGTH:
                raise _Fallback
            msisdn, expect = data[s:e], 4
        # anything else stands where the extension marker allows it: ignored
    text, language = gsm7.decode_ussd_with_language(dcs, string)
    return ussd_map.UssdRequest(
        opcode=int(opcode), dcs=dcs, text=text, language=language,
        msisdn=ussd_map.decode_isdn_address(msisdn) if msisdn is not None else None,
        alerting_pattern=pattern)


def decode_map_argument(opcode, ber):
    """L{protocols.ussd.map.decode_map_argument}, faster for the usual USSD-Arg.

    @raise UssdDecodeError: as the reference.
    """
    if ber:
        try:
            return _decode_arg(opcode, bytes(ber))
        except (_Fallback, IndexError):
            pass
    return ussd_map.decode_map_argument(opcode, ber)


def _decode_res(data):
    dcs, string, _ = _ussd_sequence(data)
    # USSD-Res has nothing after its two elements but extensions: ignored
    text, language = gsm7.decode_ussd_with_language(dcs, string)
    return ussd_map.UssdResponse(dcs, text, language)


def decode_ussd_res(ber):
    """L{protocols.ussd.map.decode_ussd_res}, faster for the usual USSD-Res.

    @raise UssdDecodeError: as the reference.
    """
    if ber:
        try:
            return _decode_res(bytes(ber))
        except (_Fallback, IndexError):
            pass
    return ussd_map.decode_ussd_res(ber)


# --- writing ------------------------------------------------------------------------

def _tlv(tag_, content):
    n = len(content)
    if n < 0x80:
        return bytes((tag_, n)) + content
    return bytes((tag_,)) + encode_length(n) + content


def _int(value):
    """INTEGER content as pyasn1 writes it (one spare bit whenever the magnitude
    fills whole octets, so -128 takes two)."""
    if type(value) is not int:
        raise _Fallback
    bits = value.bit_length()
    if bits % 8 == 0:
        bits += 1
    return value.to_bytes((bits + 7) // 8, "big", signed=True)


def _int_tlv(tag_, value):
    return _tlv(tag_, _int(value))


def _oid_content(arcs):
    arcs = tuple(arcs)
    if len(arcs) < 2 or any(not isinstance(a, int) or a < 0 for a in arcs):
        raise _Fallback
    first, second = arcs[0], arcs[1]
    if first > 2 or (first < 2 and second > 39):
        raise _Fallback
    out = bytearray()
    for value in (first * 40 + second,) + arcs[2:]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


_AS_ID_CONTENT = _oid_content(DIALOGUE_AS_ID)


_PORTIONS: dict = {}


def _dialogue_portion(dialogue):
    """The dialogue portion's octets; the few distinct AAREs a node sends are kept."""
    context, diagnostic = dialogue.application_context, dialogue.diagnostic
    if type(context) is not tuple or type(diagnostic) not in (tuple, type(None)):
        return _write_dialogue_portion(dialogue)
    # equal values of other types (1.0 for 1) must not share an entry
    key = (dialogue, tuple(map(type, context)), type(dialogue.result),
           diagnostic and tuple(map(type, diagnostic)))
    try:
        return _PORTIONS[key]
    except KeyError:
        pass
    except TypeError:           # unhashable contents: not kept
        return _write_dialogue_portion(dialogue)
    data = _write_dialogue_portion(dialogue)
    if len(_PORTIONS) >= 64:
        _PORTIONS.clear()
    _PORTIONS[key] = data
    return data


def _write_dialogue_portion(dialogue):
    if dialogue.kind == "request" or dialogue.kind == "response":
        if dialogue.application_context is None:
            raise _Fallback
        body = _PROTOCOL_VERSION_1 + _tlv(0xA1, _tlv(0x06, _oid_content(
            dialogue.application_context)))
        if dialogue.kind == "response":
            side, value = dialogue.diagnostic or ("user", 0)
            body += _tlv(0xA2, _int_tlv(0x02, dialogue.result or 0)) + _tlv(0xA3, _tlv(
                0xA1 if side == "user" else 0xA2, _int_tlv(0x02, value)))
        if dialogue.user_information:
            info = b"".join(dialogue.user_information)
            if not info:
                raise _Fallback
            body += _tlv(0xBE, info)
        pdu = _tlv(0x60 if dialogue.kind == "request" else 0x61, body)
    else:
        raise _Fallback
    external = _tlv(0x06, _AS_ID_CONTENT) + _tlv(0xA0, pdu)
    return _tlv(0x6B, _tlv(0x28, external))


def _code(value):
    if type(value) is not int:
        raise _Fallback
    return _int_tlv(0x02, value)


def _id(value):
    if type(value) is not int or not -128 <= value <= 127:
        raise _Fallback
    return _int_tlv(0x02, value)


def _parameter(value):
    if not isinstance(value, bytes) or not value:
        raise _Fallback
    return value


def _component_bytes(component):
    kind = type(component)
    if kind is Invoke:
        body = _id(component.invoke_id)
        if component.linked_id is not None:
            if type(component.linked_id) is not int or not -128 <= component.linked_id <= 127:
                raise _Fallback
            body += _int_tlv(0x80, component.linked_id)
        body += _code(component.opcode)
        if component.parameter is not None:
            body += _parameter(component.parameter)
        return _tlv(0xA1, body)
    if kind is ReturnResult:
        body = _id(component.invoke_id)
        if component.parameter is not None:
            if component.opcode is None:
                raise _Fallback
            body += _tlv(0x30, _code(component.opcode) + _parameter(component.parameter))
        return _tlv(0xA2 if component.last else 0xA7, body)
    raise _Fallback


def _tid(value):
    if type(value) is not bytes or not 1 <= len(value) <= 4:
        raise _Fallback
    return value


def _encode_tcap(message):
    tag_ = _KIND_TAGS.get(message.kind)
    if tag_ is None:
        raise _Fallback
    body = b""
    if message.kind != "end":
        body += _tlv(0x48, _tid(message.otid))
    if message.kind != "begin":
        body += _tlv(0x49, _tid(message.dtid))
    if message.dialogue is not None:
        body += _dialogue_portion(message.dialogue)
    if message.components:
        if len(message.components) > 64:
            raise _Fallback
        body += _tlv(0x6C, b"".join(_component_bytes(c) for c in message.components))
    return _tlv(tag_, body)


def encode_tcap(message):
    """Encode a L{protocols.ussd.tcap.TcapMessage}: the octets of
    L{protocols.ussd.tcap.encode_tcap}, written directly for the common shapes.

    @raise UssdEncodeError: as the reference.
    """
    try:
        return _encode_tcap(message)
    except _Fallback:
        return tcap.encode_tcap(message)


def _map_body(text):
    dcs, octets = gsm7.encode_ussd(text)
    return bytes((0x04, 0x01, dcs)) + _tlv(0x04, octets)


def encode_ussd_res(text):
    """L{protocols.ussd.map.encode_ussd_res}, written directly (same octets).

    @raise UssdEncodeError: as the reference.
    """
    return _tlv(0x30, _map_body(text))


def encode_ussd_arg(text, msisdn=None, alerting_pattern=None):
    """L{protocols.ussd.map.encode_ussd_arg}, written directly (same octets).

    @raise UssdEncodeError: as the reference.
    """
    if alerting_pattern is not None and not (type(alerting_pattern) is int
                                             and 0 <= alerting_pattern <= 0xFF):
        return ussd_map.encode_ussd_arg(text, msisdn, alerting_pattern)
    address = b"" if msisdn is None else _tlv(0x80, ussd_map.encode_isdn_address(msisdn))
    body = _map_body(text)
    if alerting_pattern is not None:
        body += bytes((0x04, 0x01, alerting_pattern))
    return _tlv(0x30, body + address)


def encode_ussd_request_arg(text, msisdn=None):
    """L{protocols.ussd.map.encode_ussd_request_arg}, written directly.

    @raise UssdEncodeError: as the reference.
    """
    return encode_ussd_arg(text, msisdn=msisdn)
