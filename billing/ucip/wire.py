"""XML-RPC as UCIP uses it, written and read without xmlrpc.client's per-call machinery (pure).

L{dumps_call} and L{dumps_response} write a method call or response with one
struct parameter straight into a list of strings.  L{loads} reads the
common case -- one flat struct of simple values (string, i4/int/i8,
boolean, double, dateTime.iso8601), as a refill request and most answers
are -- with two regular expressions, and answers exactly what
C{xmlrpc.client.loads} answers.  Every other document (nested arrays or
structs, entities, CDATA, comments, attributes, faults, anything malformed)
is handed to C{xmlrpc.client.loads} itself, so no document is ever read
differently from the standard library.
"""
from __future__ import annotations

import datetime
import re
import xmlrpc.client

_INT_MIN, _INT_MAX = -2 ** 31, 2 ** 31 - 1


class _Unsupported(Exception):
    """Outside the subset read here: the standard library decides."""


def _escape(s: str) -> str:
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    return s


def _value(v, out: list) -> None:
    t = type(v)
    if t is str:
        out.append("<value><string>%s</string></value>" % _escape(v))
    elif t is int:
        if not _INT_MIN <= v <= _INT_MAX:
            raise OverflowError("int exceeds XML-RPC limits")
        out.append("<value><i4>%d</i4></value>" % v)
    elif t is bool:
        out.append("<value><boolean>%d</boolean></value>" % v)
    elif t is dict:
        _struct(v, out)
    elif t is list or t is tuple:
        out.append("<value><array><data>")
        for item in v:
            _value(item, out)
        out.append("</data></array></value>")
    elif t is xmlrpc.client.DateTime:
        out.append("<value><dateTime.iso8601>%s</dateTime.iso8601></value>" % v.value)
    elif isinstance(v, datetime.datetime):
        out.append("<value><dateTime.iso8601>%s</dateTime.iso8601></value>"
                   % v.strftime("%Y%m%dT%H:%M:%S"))
    elif isinstance(v, int) and not isinstance(v, bool):
        _value(int(v), out)
    elif t is float:
        out.append("<value><double>%r</double></value>" % v)
    else:
        raise TypeError("cannot marshal %s objects" % t.__name__)


def _struct(v: dict, out: list) -> None:
    """A C{<struct>} value; strings, ints and dates (a UCIP request's
    members) are written inline, as L{_value} writes them."""
    out.append("<value><struct>")
    for k, item in v.items():
        if type(k) is not str:
            raise TypeError("struct keys must be strings")
        t = type(item)
        if t is str:
            out.append("<member><name>%s</name><value><string>%s</string></value></member>"
                       % (_escape(k), _escape(item)))
        elif t is int and _INT_MIN <= item <= _INT_MAX:
            out.append("<member><name>%s</name><value><i4>%d</i4></value></member>"
                       % (_escape(k), item))
        elif t is xmlrpc.client.DateTime:
            out.append("<member><name>%s</name><value><dateTime.iso8601>%s</dateTime.iso8601>"
                       "</value></member>" % (_escape(k), item.value))
        else:
            out.append("<member><name>%s</name>" % _escape(k))
            _value(item, out)
            out.append("</member>")
    out.append("</struct></value>")


def dumps_call(method: str, struct: dict) -> bytes:
    """C{<methodCall>} of C{method} with the one parameter C{struct}, UTF-8."""
    out = ["<?xml version=\"1.0\"?>\n<methodCall><methodName>%s</methodName><params><param>"
           % _escape(method)]
    _value(struct, out)
    out.append("</param></params></methodCall>\n")
    return "".join(out).encode("utf-8")


def dumps_response(struct: dict) -> bytes:
    """C{<methodResponse>} with the one parameter C{struct}, UTF-8."""
    out = ["<?xml version=\"1.0\"?>\n<methodResponse><params><param>"]
    _value(struct, out)
    out.append("</param></params></methodResponse>\n")
    return "".join(out).encode("utf-8")


#: What expat treats otherwise than verbatim text (line-end normalisation,
#: characters XML forbids, the CDATA end marker): the standard library reads those.
_NOT_VERBATIM = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\r]")
_ENVELOPE = {
    "response": re.compile(
        r"(?:<\?xml[^>]*\?>)?\s*<methodResponse>\s*<params>\s*<param>\s*<value>\s*<struct>"
        r"(.*)</struct>\s*</value>\s*</param>\s*</params>\s*</methodResponse>\s*", re.S),
    "call": re.compile(
        r"(?:<\?xml[^>]*\?>)?\s*<methodCall>\s*<methodName>([A-Za-z0-9_.:/]+)</methodName>"
        r"\s*<params>\s*<param>\s*<value>\s*<struct>"
        r"(.*)</struct>\s*</value>\s*</param>\s*</params>\s*</methodCall>\s*", re.S),
}
_MEMBER = re.compile(
    r"\s*<member>\s*<name>([^<&]*)</name>\s*<value>(?:\s*<(string|i4|int|i8|boolean|double|"
    r"dateTime\.iso8601)>([^<&]*)</\2>\s*|([^<&]*))</value>\s*</member>")


def _members(text: str) -> dict:
    """The members of a flat struct (simple values only), or _Unsupported."""
    out = {}
    pos = 0
    for m in _MEMBER.finditer(text):
        if m.start() != pos:
            raise _Unsupported()
        pos = m.end()
        name, kind, typed, bare = m.groups()
        if kind is None:
            out[name] = bare
        elif kind == "string":
            out[name] = typed
        elif kind == "boolean":
            if typed not in ("0", "1"):
                raise _Unsupported()
            out[name] = typed == "1"
        elif kind == "double":
            out[name] = float(typed)
        elif kind == "dateTime.iso8601":
            out[name] = xmlrpc.client.DateTime(typed.strip())   # as DateTime.decode
        else:
            out[name] = int(typed)
    if pos != len(text) and not text[pos:].isspace():
        raise _Unsupported()
    return out


def _fast(body: bytes):
    if b"]]>" in body or b"\xef\xbf" in body or _NOT_VERBATIM.search(body):
        raise _Unsupported()             # U+FFFE/U+FFFF (and U+F000-) are left to expat too
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unsupported() from None
    if text.startswith("<?xml"):
        decl = text[:text.find("?>") + 2].lower()
        if "encoding" in decl and "utf-8" not in decl:
            raise _Unsupported()
    m = _ENVELOPE["response"].fullmatch(text)
    if m is not None:
        return (_members(m.group(1)),), None
    m = _ENVELOPE["call"].fullmatch(text)
    if m is not None:
        return (_members(m.group(2)),), m.group(1)
    raise _Unsupported()


def loads(body: bytes) -> tuple[tuple, str | None]:
    """(params, method name or None) of an XML-RPC document, as C{xmlrpc.client.loads}.

    @raise xmlrpc.client.Fault: a fault response.
    @raise Exception: what C{xmlrpc.client.loads} raises for a malformed document.
    """
    try:
        return _fast(body)
    except (_Unsupported, ValueError, TypeError):
        return xmlrpc.client.loads(body)
