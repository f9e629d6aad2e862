"""CAI line grammar: command templates and response parsing (pure, no I/O).

Default dialect (each command and answer is one line ending in C{;},
sent with CRLF; answers use the same line ending):

| command | default template |
| ------- | ---------------- |
| login   | C{LOGIN:{user}:{password};} |
| logout  | C{LOGOUT;} |
| credit  | C{SET:SUBSCRIBER:{msisdn}:RECHARGE,AMOUNT,{amount},CURRENCY,{currency},VALIDITY,{days},REF,{key};} |
| lookup  | C{GET:RECHARGE:REF,{key};} |

C{{amount}} is in minor units (integer), C{{currency}} ISO 4217
alphabetic, C{{days}} the validity to grant, C{{key}} the idempotency key.

Answers: C{RESP:<code>[:<NAME>,<VALUE>[,<NAME>,<VALUE>...]];} — code 0
is success.  A credit answers C{RESP:0:BALANCE,<minor>,EXPIRY,<YYYYMMDDhhmmss>;}
(UTC); a lookup C{RESP:0:STATUS,CREDITED,BALANCE,..,EXPIRY,..;} or
C{RESP:0:STATUS,REFUSED,CODE,<code>;}.  Codes of the default dialect:
1001 login refused, 1002 unknown subscriber, 1003 recharge refused,
1004 busy (nothing done, retry), 1008 not logged in, 1009 syntax error,
1010 no such recharge (the reference is now closed: a later SET with it
is refused).  The mapping of codes is configurable (C{CaiCodes}).
"""
from __future__ import annotations

import dataclasses
import datetime
import re
import string

_SAFE = re.compile(r"^[A-Za-z0-9_.@+\-]*$")
_RESP = re.compile(r"^RESP:(\d{1,6})(?::(.*))?;$")


class CaiSyntaxError(ValueError):
    """A CAI line does not follow the grammar."""


@dataclasses.dataclass(frozen=True)
class CaiTemplates:
    """Command templates; placeholders in braces (see the module doc)."""

    login: str = "LOGIN:{user}:{password};"
    logout: str = "LOGOUT;"
    credit: str = ("SET:SUBSCRIBER:{msisdn}:RECHARGE,AMOUNT,{amount},"
                   "CURRENCY,{currency},VALIDITY,{days},REF,{key};")
    lookup: str = "GET:RECHARGE:REF,{key};"

    _ALLOWED = {"login": {"user", "password"}, "logout": set(),
                "credit": {"msisdn", "amount", "currency", "days", "key"},
                "lookup": {"key", "msisdn"}}

    def __post_init__(self):
        for name, allowed in self._ALLOWED.items():
            text = getattr(self, name)
            names = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            if names - allowed:
                raise ValueError(f"CAI template {name!r} uses unknown "
                                 f"placeholders {sorted(names - allowed)}; "
                                 f"allowed: {sorted(allowed)}")
            if "\n" in text or "\r" in text:
                raise ValueError(f"CAI template {name!r} contains a line break")
        if "{key}" not in self.credit or "{key}" not in self.lookup:
            raise ValueError("CAI credit and lookup templates need {key}")

    def render(self, name: str, **values) -> str:
        """The command line (without line ending).

        @raise CaiSyntaxError: a value holds a character that would break
            the grammar (only letters, digits and _ . @ + - pass).
        """
        for k, v in values.items():
            if not _SAFE.match(str(v)):
                raise CaiSyntaxError(f"CAI value for {k} has forbidden "
                                     "characters")
        return getattr(self, name).format(**values)


@dataclasses.dataclass(frozen=True)
class CaiResponse:
    """A parsed answer: numeric C{code} and NAME -> VALUE C{fields}."""

    code: int
    fields: dict

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def parse_response(line: str) -> CaiResponse:
    """Parse C{RESP:<code>[:<NAME>,<VALUE>...];}.

    @raise CaiSyntaxError: anything else.
    """
    m = _RESP.match(line.strip())
    if not m:
        raise CaiSyntaxError(f"not a CAI response: {line[:60]!r}")
    fields = {}
    if m.group(2):
        parts = m.group(2).split(",")
        if len(parts) % 2:
            raise CaiSyntaxError("CAI response fields are not NAME,VALUE pairs")
        fields = dict(zip(parts[0::2], parts[1::2]))
    return CaiResponse(int(m.group(1)), fields)


def format_response(code: int, **fields) -> str:
    """C{RESP:<code>[:NAME,VALUE...];} (the server side)."""
    if not fields:
        return "RESP:%d;" % code
    return "RESP:%d:%s;" % (code, ",".join("%s,%s" % kv for kv in fields.items()))


def format_time(epoch_ms: int) -> str:
    """Epoch ms -> YYYYMMDDhhmmss (UTC)."""
    return datetime.datetime.fromtimestamp(
        epoch_ms // 1000, datetime.timezone.utc).strftime("%Y%m%d%H%M%S")


def parse_time(text: str) -> int:
    """YYYYMMDDhhmmss (UTC) -> epoch ms. Raises CaiSyntaxError."""
    try:
        t = datetime.datetime.strptime(text, "%Y%m%d%H%M%S").replace(
            tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        raise CaiSyntaxError(f"bad CAI time {text!r}") from None
    return int(t.timestamp() * 1000)


def parse_command(line: str) -> tuple[list[str], dict]:
    """Split a default-dialect command (the simulator's side).

    C{SET:SUBSCRIBER:46700:RECHARGE,AMOUNT,1,...;} ->
    (["SET", "SUBSCRIBER", "46700", "RECHARGE"], {"AMOUNT": "1", ...}).
    The last ':'-token, when it holds commas, is a verb followed by
    NAME,VALUE pairs (or, for GET, only pairs).

    @raise CaiSyntaxError: no final ';' or odd pairs.
    """
    line = line.strip()
    if not line.endswith(";"):
        raise CaiSyntaxError("command does not end with ';'")
    tokens = line[:-1].split(":")
    params: dict = {}
    last = tokens[-1]
    if "," in last:
        parts = last.split(",")
        if len(parts) % 2:
            head, parts = parts[0], parts[1:]
            tokens[-1] = head
        else:
            tokens.pop()
        if len(parts) % 2:
            raise CaiSyntaxError("parameters are not NAME,VALUE pairs")
        params = dict(zip(parts[0::2], parts[1::2]))
    return tokens, params
