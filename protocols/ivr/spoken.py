"""How values are spoken in prompts: amounts, currencies, dates, times, minutes, HRN lengths.

Each helper returns a string or a VoiceXML element (SSML C{say-as}) ready
to be placed inside a C{<prompt>}.
"""
from __future__ import annotations

import math
from zoneinfo import ZoneInfo

from core.money import format_amount

from protocols.common.results import local_time
from protocols.ivr.vxml import el


def amount(minor: int | None, currency: str | None) -> str:
    """C{minor} units in major units as TTS reads them: C{1050, "EUR"} -> C{"10.50"},
    C{1000, "EUR"} -> C{"10"} (no spoken ".00")."""
    return format_amount(minor, currency, bare_whole=True)


def currency(code: str | None, names: dict[str, str]) -> str:
    """The spoken name of ISO 4217 C{code} in a language (its C{currency_names}), or the code."""
    if not code:
        return ""
    return names.get(code, code)


def date(epoch_ms: int | None, zone: ZoneInfo, fmt: str, say_as: bool):
    """The local date of C{epoch_ms}: C{<say-as interpret-as="date" format="ymd">} or text."""
    if epoch_ms is None:
        return ""
    text = local_time(epoch_ms, zone, fmt)
    return el("say-as", text, interpret_as="date", format="ymd") if say_as else text


def time(epoch_ms: int | None, zone: ZoneInfo, fmt: str) -> str:
    """The local time of C{epoch_ms} as text (C{"14:30"})."""
    return local_time(epoch_ms, zone, fmt)


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
