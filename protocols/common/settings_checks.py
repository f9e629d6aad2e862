"""Checks the channels' typed settings share: each returns an error text, or None when fine.

Used as C{check=} of L{core.settings.setting}; the builder adds the
file and key to the message.
"""
from __future__ import annotations

import ipaddress
import string
from typing import Iterable
from zoneinfo import ZoneInfo


def networks(values: Iterable[str]) -> str | None:
    """Problem with a list of IP addresses or networks (C{"10.0.0.0/8"};
    host bits may be set), or None."""
    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            return "%r is not an IP address or network (e.g. '10.0.0.0/8')" % (v,)
    return None


def time_zone(name: str) -> str | None:
    """Problem with an IANA time zone name (C{"Europe/Belgrade"}), or None."""
    try:
        ZoneInfo(name)
    except Exception:  # noqa: BLE001 - any failure means an unusable name
        return "unknown time zone %r (use an IANA name such as 'Europe/Belgrade')" % (name,)
    return None


def template_tables(languages: dict[str, dict[str, str]], keys: Iterable[str],
                    fields: Iterable[str], *, noun: str = "text",
                    non_empty: bool = False) -> str | None:
    """Problem with language -> key -> C{str.format} template tables, or None.

    Each key must be one of C{keys} and each template well-formed, naming
    only C{fields} (and, with C{non_empty}, not blank).  The message names
    the first offender as C{"<language>.<key>: ..."}; C{noun} is what an
    unknown key is called in it (C{"unknown text"}, C{"unknown template"}).
    """
    keys, fields = frozenset(keys), frozenset(fields)
    for lang, table in languages.items():
        for key, text in table.items():
            if key not in keys:
                return "%s.%s: unknown %s (allowed: %s)" % (
                    lang, key, noun, ", ".join(sorted(keys)))
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
            except ValueError as e:
                return "%s.%s: bad template: %s" % (lang, key, e)
            unknown = names - fields
            if unknown:
                return "%s.%s: unknown field {%s} (allowed: %s)" % (
                    lang, key, sorted(unknown)[0], ", ".join(sorted(fields)))
            if non_empty and not text.strip():
                return "%s.%s: must not be empty" % (lang, key)
    return None
