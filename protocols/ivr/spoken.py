"""How values are spoken in prompts: amounts, currencies, dates, times, minutes, HRN lengths.

Each helper returns a string or a VoiceXML element (SSML C{say-as}) ready
to be placed inside a C{<prompt>}.
"""
from __future__ import annotations

import datetime
import math
from zoneinfo import ZoneInfo

from protocols.ivr.vxml import el

#: ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def amount(minor: int | None, currency: str | None) -> str:
    """C{minor} units in major units as TTS reads them: C{1050, "EUR"} -> C{"10.50"},
    C{1000, "EUR"} -> C{"10"} (no spoken ".00")."""
    if minor is None:
        return ""
    exp = _EXPONENTS.get((currency or "").upper(), 2)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10 ** exp)
    if exp == 0 or frac == 0:
        return "%s%d" % (sign, whole)
    return "%s%d.%0*d" % (sign, whole, exp, frac)


def currency(code: str | None, names: dict[str, str]) -> str:
    """The spoken name of ISO 4217 C{code} in a language (its C{currency_names}), or the code."""
    if not code:
        return ""
    return names.get(code, code)


def _local(epoch_ms: int, zone: ZoneInfo) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=zone)


def date(epoch_ms: int | None, zone: ZoneInfo, fmt: str, say_as: bool):
    """The local date of C{epoch_ms}: C{<say-as interpret-as="date" format="ymd">} or text."""
    if epoch_ms is None:
        return ""
    text = _local(epoch_ms, zone).strftime(fmt)
    return el("say-as", text, interpret_as="date", format="ymd") if say_as else text


def time(epoch_ms: int | None, zone: ZoneInfo, fmt: str) -> str:
    """The local time of C{epoch_ms} as text (C{"14:30"})."""
    if epoch_ms is None:
        return ""
    return _local(epoch_ms, zone).strftime(fmt)


def minutes_until(epoch_ms: int | None, now_ms: int) -> str:
    """Whole minutes from C{now_ms} to C{epoch_ms}, rounded up, at least 1."""
    if epoch_ms is None:
        return ""
    return str(max(1, math.ceil((epoch_ms - now_ms) / 60000.0)))


def lengths(values, or_word: str) -> str:
    """HRN lengths as spoken: C{"14"}, C{"14 or 16"}, C{"12, 14 or 16"}."""
    items = [str(v) for v in sorted(values)]
    if len(items) <= 1:
        return "".join(items)
    return "%s %s %s" % (", ".join(items[:-1]), or_word, items[-1])
