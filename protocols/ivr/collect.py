"""The HRN collection document: DTMF digits with retries, read back in groups, 1 to confirm.

The HRN stays in the browser's C{hrn} variable until the caller confirms;
it then leaves only in the body of C{<submit method="post">} to the
activation URL, with the caller's number read from the platform's session
variable (C{ani_expr}) under the configured parameter name.
"""
from __future__ import annotations

from protocols.ivr import grammars, spoken
from protocols.ivr.care import care_form
from protocols.ivr.config import LanguageSettings
from protocols.ivr.context import Context, Urls
from protocols.ivr.page import root
from protocols.ivr.vxml import el


def _js_string(value: str) -> str:
    """An ECMAScript string literal of a configured, validated token (no quotes inside)."""
    return "'%s'" % value


def _retry_handlers(ctx: Context, lang: LanguageSettings, reprompt_key: str, noinput_key: str) -> list:
    """noinput/nomatch: say why and reprompt; at the configured limit go to C{#care}."""
    s, p = ctx.settings, ctx.prompts
    out = []
    for event, key, limit in (("noinput", noinput_key, s.max_noinput),
                              ("nomatch", reprompt_key, s.max_nomatch)):
        if limit > 1:
            out.append(el(event, p.prompt(lang, key), el("reprompt"), count=1))
        out.append(el(event, el("goto", next="#care"), count=limit))
    return out


def _length_check(lengths) -> str | None:
    """A condition true when C{hrn} has none of C{lengths}; None when the
    built-in grammar's min/max already says it (no gaps)."""
    if list(lengths) == list(range(lengths[0], lengths[-1] + 1)):
        return None
    return "!(%s)" % " || ".join("hrn.length == %d" % n for n in lengths)


def _unset(*names) -> list:
    """Make form items visit again B{without} C{<clear>}: C{<clear>} would also
    reset their prompt and event counters (VoiceXML 2.0 §5.3.3), so refusals
    would never reach the C{max_nomatch}/C{max_noinput} limits."""
    return [el("assign", name=n, expr="undefined") for n in names]


def hrn_field(ctx: Context, lang: LanguageSettings):
    """The C{hrn} field: digits of the configured lengths, C{*} to start again.

    A length the grammar accepts but no voucher type has (15 when the
    lengths are 14 and 16) is refused with a C{nomatch} that counts like the
    grammar's own, since the field is unset with C{<assign>}, not cleared."""
    p = ctx.prompts
    lengths_text = spoken.lengths(ctx.lengths, lang.text("or"))
    restart = _unset("hrn") + [p.prompt(lang, "restart")]
    gaps = _length_check(ctx.lengths)
    wrong_length = [el("elseif", cond=gaps)] + _unset("hrn") + [
        el("throw", event="nomatch")] if gaps else []
    return el("field",
              grammars.hrn_digits(ctx.lengths),
              grammars.restart(),
              p.prompt(lang, "enter_hrn", lengths=lengths_text),
              _retry_handlers(ctx, lang, "nomatch", "noinput"),
              el("filled", el("if", restart, wrong_length, cond="String(hrn).indexOf('*') >= 0")),
              name="hrn")


def readback(ctx: Context, lang: LanguageSettings) -> list:
    """Prompts reading C{hrn} back in groups of C{digit_group} digits; groups
    past the shortest length play only when the number is that long."""
    g = ctx.settings.digit_group
    out = [ctx.prompts.prompt(lang, "you_entered")]
    for start in range(0, ctx.lengths[-1], g):
        group = el("say-as", el("value", expr="hrn.substring(%d, %d)" % (start, start + g)),
                   interpret_as=lang.digits_say_as)
        cond = "hrn.length > %d" % start if start >= ctx.lengths[0] else None
        out.append(el("prompt", group, el("break", time="300ms"), cond=cond))
    return out


def confirm_field(ctx: Context, lang: LanguageSettings, urls: Urls):
    """The C{confirm} field: 1 submits the activation, 2 clears and asks again."""
    s, p = ctx.settings, ctx.prompts
    names = [s.ani_parameter, "hrn", "lang", "attempt"] + (["callref"] if s.call_ref_expr else [])
    submit = el("submit", next=urls.activate(), method="post", namelist=" ".join(names),
                fetchaudio=s.wait_audio or None)
    return el("field",
              grammars.confirm(),
              readback(ctx, lang),
              p.prompt(lang, "confirm"),
              _retry_handlers(ctx, lang, "confirm_nomatch", "confirm_nomatch"),
              el("filled",
                 el("if",
                    p.prompt(lang, "please_wait"), submit,
                    el("else"),
                    p.prompt(lang, "reenter"), *_unset("hrn", "confirm"),
                    cond="confirm == '1'")),
              name="confirm")


def collect_document(ctx: Context, lang: LanguageSettings, urls: Urls, attempt: int = 1):
    """The collection document in C{lang} for the caller's C{attempt}-th voucher of this call."""
    s = ctx.settings
    variables = [el("var", name="lang", expr=_js_string(lang.code)),
                 el("var", name="attempt", expr=str(attempt)),
                 el("var", name=s.ani_parameter, expr=s.ani_expr)]
    if s.call_ref_expr:
        variables.append(el("var", name="callref", expr=s.call_ref_expr))
    intro = el("block", ctx.prompts.prompt(lang, "welcome"), name="intro") if attempt == 1 else None
    form = el("form", variables, intro, hrn_field(ctx, lang), confirm_field(ctx, lang, urls),
              id="recharge")
    return root(ctx, lang, form, care_form(ctx, lang))
