"""The entry document: the language menu when several languages are configured,
otherwise straight to HRN collection in the only one."""
from __future__ import annotations

from protocols.ivr.collect import collect_document
from protocols.ivr.context import Context, Urls
from protocols.ivr.page import root
from protocols.ivr.vxml import el


def language_menu(ctx: Context, urls: Urls):
    """C{<menu>}: each language offers itself in its own voice; after the
    retry limit the call continues in the default language."""
    s, p = ctx.settings, ctx.prompts
    keys = s.menu_keys()
    prompts = [el("prompt", p.speech(lang, "language_choice", key=keys[lang.code],
                                     language=lang.name or lang.code), xml_lang=lang.tag)
               for lang in s.languages]
    choices = [el("choice", lang.name or lang.code, dtmf=keys[lang.code],
                  next=urls.collect(lang.code)) for lang in s.languages]
    handlers = []
    for event, limit in (("noinput", s.max_noinput), ("nomatch", s.max_nomatch)):
        if limit > 1:
            handlers.append(el(event, el("reprompt"), count=1))
        handlers.append(el(event, el("goto", next=urls.collect(s.default.code)), count=limit))
    return el("menu", prompts, choices, handlers, id="language", dtmf=False)


def entry_document(ctx: Context, urls: Urls):
    """The document an IVR platform fetches first."""
    s = ctx.settings
    if len(s.languages) == 1:
        return collect_document(ctx, s.default, urls, attempt=1)
    return root(ctx, s.default, language_menu(ctx, urls))
