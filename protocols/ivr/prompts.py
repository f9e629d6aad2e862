"""Localised prompts: a prompt key and its fields rendered as VoiceXML prompt content.

TTS text by default; when the language maps the key to a recording in
C{audio}, an C{<audio src>} element whose content (the text) is what the
platform speaks if the recording cannot be fetched (VoiceXML 2.0 §4.1.3).
"""
from __future__ import annotations

import copy
import string

from protocols.ivr.config import IvrSettings, LanguageSettings
from protocols.ivr.vxml import el

_FORMATTER = string.Formatter()


class Prompts:
    """Renders prompt keys of L{protocols.ivr.texts} in the configured languages."""

    def __init__(self, settings: IvrSettings) -> None:
        self.settings = settings

    def content(self, lang: LanguageSettings, key: str, /, **fields) -> list:
        """The text of C{key} with C{fields} filled in, as prompt content.

        @param fields: field name -> a string or an element (e.g. C{say-as});
            a field the template uses but C{fields} lacks renders empty.
        @return: a list of strings and elements.
        """
        parts: list = []
        for literal, name, _, _ in _FORMATTER.parse(lang.text(key)):
            if literal:
                parts.append(literal)
            if name is not None:
                value = fields.get(name, "")
                if isinstance(value, str):
                    if value:
                        parts.append(value)
                elif value is not None:
                    parts.append(copy.deepcopy(value))   # an element may be used twice
        return parts

    def speech(self, lang: LanguageSettings, key: str, /, **fields) -> list:
        """Prompt content for C{key}: the recording (with the text as fallback) or the text."""
        text = self.content(lang, key, **fields)
        url = lang.audio.get(key)
        if url:
            return [el("audio", text, src=url)]
        return text

    def prompt(self, lang: LanguageSettings, key: str, /, *, cond: str | None = None,
               bargein: bool | None = None, **fields):
        """A C{<prompt>} element speaking C{key}."""
        return el("prompt", self.speech(lang, key, **fields), cond=cond, bargein=bargein)
