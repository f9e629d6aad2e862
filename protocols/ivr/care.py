"""The customer-care form (C{#care}): transfer to the configured number, or say goodbye.

Reached after repeated no-input/no-match, repeated failed activations, or
an outcome only an agent can help with.  C{<transfer type=...>} is
VoiceXML 2.1 §2.6; the field's value after a bridge transfer says why it
ended (VoiceXML 2.0 §2.3.7.2.2).
"""
from __future__ import annotations

from protocols.ivr.config import LanguageSettings
from protocols.ivr.context import Context
from protocols.ivr.page import seconds
from protocols.ivr.vxml import el

#: Transfer outcomes meaning the agent was not reached.
NOT_REACHED = ("busy", "noanswer", "network_busy", "unknown")


def care_form(ctx: Context, lang: LanguageSettings):
    """The C{<form id="care">} of a document in C{lang}."""
    s, p = ctx.settings, ctx.prompts
    if not s.care_number:
        return el("form", el("block", p.prompt(lang, "goodbye"), el("exit")), id="care")
    unreached = " || ".join("care_call == '%s'" % v for v in NOT_REACHED)
    transfer = el(
        "transfer",
        p.prompt(lang, "transfer"),
        el("filled",
           el("if", p.prompt(lang, "care_unavailable"), cond=unreached),
           p.prompt(lang, "goodbye"), el("exit")),
        el("catch", p.prompt(lang, "care_unavailable"), p.prompt(lang, "goodbye"), el("exit"),
           event="error.connection error.unsupported"),
        name="care_call", dest=s.care_number, type=s.care_transfer,
        connecttimeout=seconds(s.care_connect_timeout),
        maxtime=seconds(s.care_max_time) if s.care_max_time and s.care_transfer != "blind" else None)
    return el("form", transfer, id="care")
