"""The ECMAScript subset the test VoiceXML browser evaluates (L{tests.vxml_walker}).

Identifiers, number and string literals, C{. ()} member calls C{length},
C{substring}, C{indexOf}, C{charAt}, C{String()}, and the operators
C{! + - * == != === !== < > <= >= && ||}, with ECMAScript's loose equality
and string conversion.
"""
from __future__ import annotations

import re


class WalkerError(AssertionError):
    """The walk cannot go on: unsupported VoiceXML, no input left, or a loop."""


class _Undefined:
    def __repr__(self):
        return "undefined"


UNDEFINED = _Undefined()


class Throw(Exception):
    """A VoiceXML event thrown while walking (C{error.semantic} from an expression)."""

    def __init__(self, event):
        self.event = event


_TOKEN = re.compile(r"""\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|
                        ([A-Za-z_$][\w$]*)|(===|!==|==|!=|<=|>=|&&|\|\||[-+*!<>().,]))""", re.X)


def _tokens(src):
    pos, out = 0, []
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise WalkerError("cannot parse expression %r at %d" % (src, pos))
        num, string, ident, op = m.groups()
        if num is not None:
            out.append(("num", float(num) if "." in num else int(num)))
        elif string is not None:
            out.append(("str", re.sub(r"\\(.)", r"\1", string[1:-1])))
        elif ident is not None:
            out.append(("id", ident))
        else:
            out.append(("op", op))
        pos = m.end()
    return out


def js_str(v) -> str:
    if v is UNDEFINED:
        return "undefined"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def truthy(v) -> bool:
    return not (v is UNDEFINED or v is None or v is False or v == "" or
                (isinstance(v, (int, float)) and not isinstance(v, bool) and v == 0))


def _num(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    try:
        return float(v) if "." in str(v) else int(v)
    except (TypeError, ValueError):
        return float("nan")


def _loose_eq(a, b) -> bool:
    if a in (None, UNDEFINED) or b in (None, UNDEFINED):
        return a in (None, UNDEFINED) and b in (None, UNDEFINED)
    if type(a) is type(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return _num(a) == _num(b)


def _substring(s, a, b=None):
    n = len(s)
    a = min(max(int(_num(a)), 0), n)
    b = n if b is None else min(max(int(_num(b)), 0), n)
    return s[min(a, b):max(a, b)]


_METHODS = {
    "substring": _substring,
    "indexOf": lambda s, sub: s.find(js_str(sub)),
    "charAt": lambda s, i: s[int(_num(i))] if 0 <= int(_num(i)) < len(s) else "",
}


class _Parser:
    def __init__(self, src, lookup):
        self.toks = _tokens(src)
        self.i = 0
        self.lookup = lookup
        self.src = src

    def peek(self, *ops):
        t = self.toks[self.i] if self.i < len(self.toks) else None
        return t is not None and t[0] == "op" and t[1] in ops

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, op):
        if not self.peek(op):
            raise WalkerError("expected %r in %r" % (op, self.src))
        self.i += 1

    def parse(self):
        v = self.or_()
        if self.i != len(self.toks):
            raise WalkerError("trailing tokens in %r" % (self.src,))
        return v

    def or_(self):
        v = self.and_()
        while self.peek("||"):
            self.take()
            r = self.and_()
            v = v if truthy(v) else r
        return v

    def and_(self):
        v = self.eq()
        while self.peek("&&"):
            self.take()
            r = self.eq()
            v = r if truthy(v) else v
        return v

    def eq(self):
        v = self.rel()
        while self.peek("==", "!=", "===", "!=="):
            op = self.take()[1]
            r = self.rel()
            same = (type(v) is type(r) and v == r) if op in ("===", "!==") else _loose_eq(v, r)
            v = same if op in ("==", "===") else not same
        return v

    def rel(self):
        v = self.add()
        while self.peek("<", ">", "<=", ">="):
            op = self.take()[1]
            r = self.add()
            a, b = (v, r) if isinstance(v, str) and isinstance(r, str) else (_num(v), _num(r))
            v = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return v

    def add(self):
        v = self.mul()
        while self.peek("+", "-"):
            op = self.take()[1]
            r = self.mul()
            if op == "+" and (isinstance(v, str) or isinstance(r, str)):
                v = js_str(v) + js_str(r)
            else:
                v = _num(v) + _num(r) if op == "+" else _num(v) - _num(r)
        return v

    def mul(self):
        v = self.unary()
        while self.peek("*"):
            self.take()
            v = _num(v) * _num(self.unary())
        return v

    def unary(self):
        if self.peek("!"):
            self.take()
            return not truthy(self.unary())
        if self.peek("-"):
            self.take()
            return -_num(self.unary())
        return self.postfix()

    def args(self):
        out = []
        self.expect("(")
        while not self.peek(")"):
            out.append(self.or_())
            if not self.peek(")"):
                self.expect(",")
        self.expect(")")
        return out

    def postfix(self):
        v = self.primary()
        while self.peek(".", "("):
            if self.peek("("):
                fn = v
                a = self.args()
                if not callable(fn):
                    raise Throw("error.semantic")
                v = fn(*a)
                continue
            self.take()
            kind, name = self.take()
            if isinstance(v, str):
                if name == "length":
                    v = len(v)
                elif name in _METHODS:
                    method = _METHODS[name]
                    v = method(v, *self.args())
                else:
                    raise WalkerError("unsupported string member %r" % name)
            elif isinstance(v, dict):
                v = v.get(name, UNDEFINED)
            else:
                raise Throw("error.semantic")  # member of undefined/number
        return v

    def primary(self):
        if self.i >= len(self.toks):
            raise WalkerError("unexpected end of %r" % (self.src,))
        kind, val = self.take()
        if kind in ("num", "str"):
            return val
        if kind == "id":
            consts = {"true": True, "false": False, "null": None, "undefined": UNDEFINED,
                      "String": js_str}
            return consts[val] if val in consts else self.lookup(val)
        if val == "(":
            v = self.or_()
            self.expect(")")
            return v
        raise WalkerError("unexpected %r in %r" % (val, self.src))


def evaluate(src: str, lookup):
    """The value of expression C{src}; C{lookup(name)} gives a variable's value.

    @raise WalkerError: for syntax outside the subset.
    @raise Throw: C{error.semantic} for a member of undefined.
    """
    return _Parser(src, lookup).parse()
