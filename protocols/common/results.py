"""Rendering an ActivationResult into the template fields every text channel shows.

Amounts are in major units with the currency's ISO 4217 exponent
(L{core.money}); dates and times in the channel's configured time zone.
Each channel adds its own fields and keeps its own templates and limits.
"""
from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

from core.money import format_amount
from core.results import ResultCode

from protocols.common.templates import Blank

#: The placeholders L{result_fields} fills.
RESULT_FIELDS = frozenset({
    "amount", "currency", "expiry", "unbar_time", "validity_days", "balance",
    "txn_id", "code", "msisdn", "reward"})


def reward_text(result) -> str:
    """The loyalty rewards this activation granted, as one sentence each (C{""} for none)."""
    return " ".join(getattr(r, "text", str(r)) for r in (getattr(result, "rewards", None) or ()))


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
    return datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=zone).strftime(fmt)


def result_fields(result, zone: ZoneInfo, date_format: str, time_format: str, *,
                  msisdn: str = "") -> Blank:
    """The L{RESULT_FIELDS} of an L{core.requests.ActivationResult} as text.

    A value the result does not carry is C{""}; C{expiry} is shown with
    C{date_format}, C{unbar_time} with C{time_format}; C{txn_id} is cut to
    12 characters; C{code} is the result's code as given; C{msisdn} is
    C{msisdn} when given, else the result's.

    @return: a L{Blank}, so that any other field a template names renders empty.
    """
    return Blank(
        amount=format_amount(result.amount, result.currency),
        currency=result.currency or "",
        expiry=local_time(result.new_expiry, zone, date_format),
        unbar_time=local_time(result.unbar_at, zone, time_format),
        validity_days="" if result.validity_days is None else str(result.validity_days),
        balance=format_amount(result.balance, result.currency),
        txn_id=(result.txn_id or "")[:12],
        code=str(int(result.code)),
        msisdn=msisdn or result.msisdn or "",
        reward=reward_text(result),
    )
