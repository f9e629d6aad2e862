"""The result document: the localised outcome of an activation, then what follows it."""
from __future__ import annotations

from protocols.common.results import result_code, reward_text
from protocols.ivr import spoken
from protocols.ivr.care import care_form
from protocols.ivr.config import LanguageSettings
from protocols.ivr.context import Context, Urls
from protocols.ivr.replies import Next, next_step
from protocols.ivr.page import root
from protocols.ivr.vxml import el


def result_fields(ctx: Context, lang: LanguageSettings, result, now_ms: int) -> dict:
    """The prompt fields of an L{core.requests.ActivationResult} in C{lang}."""
    return {
        "amount": spoken.amount(result.amount, result.currency),
        "currency": spoken.currency(result.currency, lang.currency_names),
        "expiry": spoken.date(result.new_expiry, ctx.zone, lang.date_format, lang.date_say_as),
        "unbar_time": spoken.time(result.unbar_at, ctx.zone, lang.time_format),
        "unbar_minutes": spoken.minutes_until(result.unbar_at, now_ms),
        "validity_days": "" if result.validity_days is None else str(result.validity_days),
    }


def result_document(ctx: Context, lang: LanguageSettings, urls: Urls, result, *,
                    attempt: int, now_ms: int):
    """The document answering the activation submit.

    @param result: an L{core.requests.ActivationResult}.
    @param attempt: which voucher of this call it was (1-based).
    """
    p = ctx.prompts
    name = result_code(result.code).name
    fields = result_fields(ctx, lang, result, now_ms)
    said = [p.prompt(lang, name, **fields)]
    if name == "SUCCESS" and result.new_expiry is not None:
        said.append(p.prompt(lang, "SUCCESS_EXPIRY", **fields))
    if name == "SUCCESS" and reward_text(result):
        said.append(el("prompt", reward_text(result)))
    step = next_step(result.code, attempt, ctx.settings.max_attempts)
    if step is Next.RETRY:
        then = [p.prompt(lang, "try_again"), el("goto", next=urls.collect(lang.code, attempt + 1))]
    elif step is Next.CARE:
        then = [el("goto", next="#care")]
    else:
        then = [p.prompt(lang, "goodbye"), el("exit")]
    form = el("form", el("block", said, then), id="result")
    care = care_form(ctx, lang) if step is Next.CARE else None
    return root(ctx, lang, form, care,
                meta={"ivoms-result": str(int(result.code)), "ivoms-next": step.value})
