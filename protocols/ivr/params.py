"""Parsing and validation of the parameters an IVR platform sends (pure; no I/O).

C{args} is twisted.web's C{request.args}: bytes name -> list of bytes
values, from the query string and an C{application/x-www-form-urlencoded}
or C{multipart/form-data} body.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.ivr.errors import BadRequest

MAX_ATTEMPT = 99
_LANG = re.compile(r"[A-Za-z0-9-]{1,35}\Z")
_SCHEME = re.compile(r"(tel|sips?):", re.IGNORECASE)


@dataclass(frozen=True)
class PageParams:
    """C{lang} (None: default) and C{attempt} of a document request."""

    lang: str | None
    attempt: int


@dataclass(frozen=True)
class ActivateParams:
    """What the activation POST carries.  Its repr never shows the HRN."""

    msisdn: str
    hrn: str
    lang: str | None
    attempt: int
    call_ref: str | None

    def __repr__(self) -> str:
        return ("ActivateParams(msisdn=%r, hrn=<%d digits>, lang=%r, attempt=%d)"
                % (self.msisdn, len(self.hrn), self.lang, self.attempt))


def single(args: dict, name: str, max_chars: int) -> str | None:
    """The one value of parameter C{name}, stripped, or None when absent.

    @raise BadRequest: repeated, not UTF-8, or longer than C{max_chars}.
    """
    values = args.get(name.encode("ascii"))
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("bad_parameter")
    raw = values[0]
    if len(raw) > max_chars * 4:
        raise BadRequest("oversize")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("bad_parameter")
    if len(text) > max_chars:
        raise BadRequest("oversize")
    return text.strip()


def check_sizes(args: dict, max_chars: int, max_params: int = 32) -> None:
    """@raise BadRequest: too many parameters, or one too long (name or value)."""
    if len(args) > max_params:
        raise BadRequest("oversize")
    for name, values in args.items():
        if len(name) > 64 or len(values) > 4 or any(len(v) > max_chars * 4 for v in values):
            raise BadRequest("oversize")


def parse_page(args: dict, max_chars: int) -> PageParams:
    """C{lang} and C{attempt} of a document request.

    @raise BadRequest: malformed C{lang} or C{attempt}.
    """
    lang = single(args, "lang", max_chars) or None
    if lang is not None and not _LANG.match(lang):
        raise BadRequest("bad_parameter")
    attempt = single(args, "attempt", max_chars)
    if not attempt:
        return PageParams(lang, 1)
    if not attempt.isascii() or not attempt.isdigit() or not 1 <= int(attempt) <= MAX_ATTEMPT:
        raise BadRequest("bad_parameter", lang)
    return PageParams(lang, int(attempt))


def caller_number(raw: str) -> str:
    """The number in a platform's ANI value: C{tel:+381641234567},
    C{sip:0641234567@gw.example;user=phone}, C{"Ann" <sip:+38164...@gw>} or a
    bare number give the user part (the core normalises it to E.164)."""
    s = raw.strip()
    if "<" in s and ">" in s:
        s = s[s.index("<") + 1:s.rindex(">")]
    m = _SCHEME.match(s)
    if m:
        s = s[m.end():]
    for sep in ("@", ";"):
        s = s.split(sep, 1)[0]
    return s.strip()


def parse_activate(args: dict, *, ani_parameter: str, lengths, max_chars: int) -> ActivateParams:
    """The activation POST's parameters.

    @param lengths: the configured HRN lengths.
    @raise BadRequest: missing number or HRN, an HRN that is not digits of
        a configured length, or any malformed or oversize parameter.
    """
    check_sizes(args, max_chars)
    page = parse_page(args, max_chars)
    ani = single(args, ani_parameter, max_chars)
    number = caller_number(ani) if ani else ""
    if not number:
        raise BadRequest("missing_msisdn", page.lang)
    hrn = single(args, "hrn", max_chars)
    if not hrn:
        raise BadRequest("missing_hrn", page.lang)
    hrn = hrn.replace(" ", "")
    if not hrn.isascii() or not hrn.isdigit() or len(hrn) not in set(lengths):
        raise BadRequest("bad_hrn", page.lang)
    ref = single(args, "callref", max_chars) or None
    if ref is not None:
        ref = "".join(ch for ch in ref if ch.isprintable())[:64] or None
    return ActivateParams(number, hrn, page.lang, page.attempt, ref)
