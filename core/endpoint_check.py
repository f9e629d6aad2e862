"""What is wrong with a Twisted server endpoint string, said before anything listens.

A listener is configured as a Twisted endpoint description
(C{tcp:8080:interface=127.0.0.1}).  Twisted only parses it when the node
starts, and some mistakes (a port of C{99999}) surface only as a failed
C{bind}.  L{server_endpoint_problem} checks the grammar of the types an
operator uses for a listener (C{tcp}, C{tcp6}, C{ssl}, C{unix}) so that the
configuration check names the key and the reason instead.
"""
from __future__ import annotations

import ipaddress
import os

#: Keyword arguments each endpoint type accepts (Twisted's server parsers).
_KEYWORDS = {
    "tcp": {"port", "interface", "backlog"},
    "tcp6": {"port", "interface", "backlog"},
    "ssl": {"port", "interface", "backlog", "privateKey", "certKey", "sslmethod",
            "extraCertChain", "dhParameters"},
    "unix": {"address", "mode", "backlog", "lockfile", "wantPID"},
}

EXAMPLE = "'tcp:8080:interface=127.0.0.1'"


def split_description(text: str) -> list[str]:
    """Split an endpoint description on unescaped colons (C{\\:} is a literal colon).

    @return: the fields, escapes removed.
    """
    fields, cur, escaped = [], [], False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur))
    return fields


def server_endpoint_problem(text) -> str | None:
    """Why C{text} is not a usable server endpoint, or None when it is.

    @param text: the configured value.
    @return: a reason such as C{"port '80x' is not a number from 0 to 65535"}.
    """
    if not isinstance(text, str) or ":" not in text:
        return "must be an endpoint string such as %s" % EXAMPLE
    kind, *rest = split_description(text)
    if kind not in _KEYWORDS:
        return "unknown endpoint type %r (use one of %s), e.g. %s" % (
            kind, ", ".join(sorted(_KEYWORDS)), EXAMPLE)
    positional, keywords = [], {}
    for f in rest:
        name, eq, value = f.partition("=")
        if eq:
            if name not in _KEYWORDS[kind]:
                return "unknown %s option %r (known: %s)" % (kind, name,
                                                             ", ".join(sorted(_KEYWORDS[kind])))
            if name in keywords:
                return "option %r given twice" % name
            keywords[name] = value
        elif keywords:
            return ("value %r after a keyword option (write a ':' inside a value as '\\:', "
                    "e.g. interface=\\:\\:1)" % f)
        else:
            positional.append(f)
    if kind == "unix":
        return _unix_problem(positional, keywords)
    return _inet_problem(kind, positional, keywords)


def _inet_problem(kind, positional, keywords) -> str | None:
    if len(positional) > 1:
        return "too many values before the options: %s" % ":".join(positional)
    if positional and "port" in keywords:
        return "the port is given twice"
    port = positional[0] if positional else keywords.get("port")
    if port is None:
        return "no port (e.g. %s)" % EXAMPLE
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        return "port %r is not a number from 0 to 65535" % port
    interface = keywords.get("interface", "")
    if interface:
        try:
            address = ipaddress.ip_address(interface)
        except ValueError:
            return "interface %r is not an IP address" % interface
        if kind == "tcp6" and address.version != 6:
            return "interface %r of a tcp6 endpoint must be an IPv6 address" % interface
    backlog = keywords.get("backlog")
    if backlog is not None and not (backlog.isdigit() and int(backlog) > 0):
        return "backlog %r is not a positive number" % backlog
    if kind == "ssl":
        return _ssl_files_problem(keywords)
    return None


def _ssl_files_problem(keywords) -> str | None:
    if not keywords.get("privateKey"):
        return "an ssl endpoint needs privateKey= (or use tls_key and tls_cert with a tcp endpoint)"
    for name in ("privateKey", "certKey", "extraCertChain", "dhParameters"):
        if keywords.get(name):
            problem = file_problem(keywords[name])
            if problem:
                return "%s: %s" % (name, problem)
    return None


def file_problem(path: str) -> str | None:
    """Why C{path} cannot be read as a file, or None."""
    if os.path.isdir(path):
        return "%r is a directory, not a file" % path
    try:
        with open(path, "rb"):
            return None
    except OSError as e:
        return "cannot read %r: %s" % (path, e.strerror or e)


def _unix_problem(positional, keywords) -> str | None:
    if len(positional) > 1:
        return "too many values before the options: %s" % ":".join(positional)
    if positional and "address" in keywords:
        return "the socket path is given twice"
    if not (positional[0] if positional else keywords.get("address")):
        return "no socket path (e.g. 'unix:/run/ivoms/http.sock')"
    mode = keywords.get("mode")
    if mode is not None:
        try:
            int(mode, 8)
        except ValueError:
            return "mode %r is not an octal number" % mode
    return None


def listen_port(text: str) -> int | None:
    """The TCP port of a valid C{tcp}/C{tcp6}/C{ssl} description, or None."""
    kind, *rest = split_description(text)
    if kind not in ("tcp", "tcp6", "ssl"):
        return None
    for f in rest:
        name, eq, value = f.partition("=")
        if not eq or name == "port":
            return int(value if eq else name) if (value if eq else name).isdigit() else None
    return None
