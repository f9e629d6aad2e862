"""Rendering an ActivationResult into the template fields every text channel shows.

Amounts are in major units with the currency's ISO 4217 exponent
(L{core.money}); dates and times in the channel's configured time zone.
Each channel adds its own fields and keeps its own templates and limits.
"""
from __future__ import annotations

import datetime
import functools
from typing import Iterable
from zoneinfo import ZoneInfo

from core.money import format_amount
from core.results import ResultCode

from protocols.common.templates import Blank, fill, template_fields

#: The placeholders L{result_fields} fills.
RESULT_FIELDS = frozenset({
    "amount", "currency", "expiry", "unbar_time", "validity_days", "balance",
    "txn_id", "code", "msisdn", "reward"})


def reward_text(result) -> str:
    """The loyalty rewards this activation granted, as one sentence each (C{""} for none)."""
    rewards = getattr(result, "rewards", None)
    if not rewards:
        return ""
    return " ".join(getattr(r, "text", str(r)) for r in rewards)


def with_reward(text: str, template: str, result, sep: str = " ") -> str:
    """C{text} followed by the reward sentence when the activation granted a loyalty
    reward and its C{template} did not already place C{{reward}}."""
    extra = reward_text(result)
    if not extra or "{reward}" in template:
        return text
    return text + sep + extra


def result_code(code) -> ResultCode:
    """C{code} as a L{ResultCode}; C{SYSTEM_ERROR} when it is not one.  Never raises."""
    try:
        return ResultCode(code)
    except ValueError:
        return ResultCode.SYSTEM_ERROR


def local_time(epoch_ms: int | None, zone: ZoneInfo, fmt: str) -> str:
    """C{epoch_ms} (milliseconds since the epoch) as local time in C{zone},
    formatted with C{strftime} format C{fmt}; C{""} for C{None}."""
    if epoch_ms is None:
        return ""
    if _shows_seconds(fmt):
        return datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=zone).strftime(fmt)
    return _minute_text(epoch_ms // 60_000, zone, fmt)


#: strftime directives that can change within a minute.
_SUB_MINUTE = ("%S", "%f", "%c", "%X", "%T", "%r", "%s", "%:z", "%+")


@functools.lru_cache(maxsize=64)
def _shows_seconds(fmt: str) -> bool:
    return any(d in fmt for d in _SUB_MINUTE)


@functools.lru_cache(maxsize=4096)
def _minute_text(minute: int, zone: ZoneInfo, fmt: str) -> str:
    """The text of a format without seconds, the same for the whole minute
    (expiry dates of activations made together fall in few minutes)."""
    return datetime.datetime.fromtimestamp(minute * 60, tz=zone).strftime(fmt)


#: How each of L{RESULT_FIELDS} but C{msisdn} is shown:
#: C{maker(result, zone, date_format, time_format) -> str}.
_MAKERS = {
    "amount": lambda r, zone, df, tf: format_amount(r.amount, r.currency),
    "currency": lambda r, zone, df, tf: r.currency or "",
    "expiry": lambda r, zone, df, tf: local_time(r.new_expiry, zone, df),
    "unbar_time": lambda r, zone, df, tf: local_time(r.unbar_at, zone, tf),
    "validity_days": lambda r, zone, df, tf: (
        "" if r.validity_days is None else str(r.validity_days)),
    "balance": lambda r, zone, df, tf: format_amount(r.balance, r.currency),
    "txn_id": lambda r, zone, df, tf: (r.txn_id or "")[:12],
    "code": lambda r, zone, df, tf: str(int(r.code)),
    "reward": lambda r, zone, df, tf: reward_text(r),
}


def result_fields(result, zone: ZoneInfo, date_format: str, time_format: str, *,
                  msisdn: str = "", names: Iterable[str] = RESULT_FIELDS) -> Blank:
    """The L{RESULT_FIELDS} of an L{core.requests.ActivationResult} as text.

    A value the result does not carry is C{""}; C{expiry} is shown with
    C{date_format}, C{unbar_time} with C{time_format}; C{txn_id} is cut to
    12 characters; C{code} is the result's code as given; C{msisdn} is
    C{msisdn} when given, else the result's.

    @param names: only these fields are worked out (e.g. those a template
        names, L{protocols.common.templates.template_fields}); others are
        ignored.
    @return: a L{Blank}, so that any other field a template names renders empty.
    """
    fields = Blank()
    for name in names:
        if name == "msisdn":
            fields[name] = msisdn or result.msisdn or ""
        else:
            maker = _MAKERS.get(name)
            if maker is not None:
                fields[name] = maker(result, zone, date_format, time_format)
    return fields


def fill_result(template: str, result, zone: ZoneInfo, date_format: str, time_format: str, *,
                tidy=None, msisdn: str = "") -> str:
    """C{template} filled (L{protocols.common.templates.fill}, then C{tidy})
    with the L{result_fields} it names, followed by the reward sentence when
    the template does not place C{{reward}} (L{with_reward}).  Never raises."""
    fields = result_fields(result, zone, date_format, time_format, msisdn=msisdn,
                           names=template_fields(template))
    return with_reward(fill(template, fields, tidy), template, result)
