"""Localised SMS reply texts: one template per result code (DESIGN §4) and language.

Templates are C{str.format} strings over the fields in
L{protocols.smpp.config.TEMPLATE_FIELDS}; a field the result does not carry
renders empty.  The result's fields come from
L{protocols.common.results.result_fields} (amounts in major units, times
in the configured time zone).
"""

from __future__ import annotations

import re

from protocols.common.localised import LocalisedTemplates
from protocols.common.results import fill_result, result_code
from protocols.common.templates import Blank, fill
from protocols.smpp.config import HELP, default_templates

_SPACES = re.compile(r" {2,}")


def _tidy(text: str) -> str:
    if "  " in text:
        text = _SPACES.sub(" ", text)
    return text.strip()


class Replies(LocalisedTemplates):
    """Renders an L{core.requests.ActivationResult} (or help) as reply text.

    Built like L{LocalisedTemplates} (or from
    L{protocols.smpp.config.RepliesSettings}) over L{default_templates}.
    """

    builtin = staticmethod(default_templates)

    def render(self, result, language: str, msisdn: str = "") -> str:
        """The reply for an activation result.

        @param result: an L{core.requests.ActivationResult}.
        @return: the text; never raises (an unknown code renders as
            C{SYSTEM_ERROR}).
        """
        template = self.template(result_code(result.code).name, language)
        return fill_result(template, result, self.zone, self.date_format, self.time_format,
                           tidy=_tidy, msisdn=msisdn)

    def help(self, language: str, keywords: list[str]) -> str:
        """The help text in C{language}, listing C{keywords}."""
        return fill(self.template(HELP, language),
                    Blank(keywords="/".join(keywords) if keywords else ""), _tidy)
