"""Parts every document shares: the root with its properties and error handler, and the error document."""
from __future__ import annotations

from protocols.ivr.config import LanguageSettings
from protocols.ivr.context import Context
from protocols.ivr.vxml import document, el


def seconds(value: float) -> str:
    """A VoiceXML time designation (CSS2 time): C{7.0} -> C{"7s"}, C{0.5} -> C{"500ms"}."""
    if float(value).is_integer():
        return "%ds" % value
    return "%dms" % round(value * 1000)


def properties(ctx: Context) -> list:
    """Input timing and fetch properties (VoiceXML 2.0 §6.3): C{#} ends the HRN."""
    s = ctx.settings
    return [el("property", name="timeout", value=seconds(s.noinput_timeout)),
            el("property", name="interdigittimeout", value=seconds(s.interdigit_timeout)),
            el("property", name="termchar", value="#"),
            el("property", name="fetchtimeout", value=seconds(s.fetch_timeout))]


def on_error(ctx: Context, lang: LanguageSettings):
    """Document-level C{<catch event="error">}: apologise and end the call (a failed
    fetch, a missing session variable, any platform error)."""
    return el("catch", ctx.prompts.prompt(lang, "error"), el("exit"), event="error")


def root(ctx: Context, lang: LanguageSettings, *children, meta: dict | None = None):
    """A C{<vxml>} root in C{lang} with the shared properties, handler and C{children}."""
    metas = [el("meta", name=k, content=v) for k, v in (meta or {}).items()]
    return document(lang.tag, metas, properties(ctx), on_error(ctx, lang), *children)


def error_document(ctx: Context, lang: LanguageSettings, reason: str):
    """The answer to a bad request: a spoken apology, then the call ends.

    @param reason: the L{protocols.ivr.errors.BadRequest} reason, in a C{<meta>}.
    """
    form = el("form", el("block", ctx.prompts.prompt(lang, "error"), el("exit")), id="error")
    return root(ctx, lang, form, meta={"ivoms-error": reason})
