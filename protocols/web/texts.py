"""Localised texts of the recharge pages: page labels and one result text per result code.

Result texts are C{str.format} templates over
L{protocols.web.config.TEMPLATE_FIELDS}; a field the result does not carry
renders empty.  The result's fields come from
L{protocols.common.results.result_fields} (amounts in major units, times in
the configured time zone).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from core.results import ResultCode

from protocols.common.results import fill_result, result_code
from protocols.common.templates import lookup
from protocols.common.texts import RESULT_TEXTS

UI = {
    "en": {
        "title": "Recharge", "heading": "Recharge your account",
        "msisdn": "Phone number", "hrn": "Voucher number (under the scratch area)",
        "submit": "Recharge", "again": "Recharge another voucher", "result": "Result",
        "missing": "Please enter your phone number and the voucher number.",
        "csrf": "This form has expired. Please open the recharge page again.",
        "rate_limited": "Too many attempts. Please try again in {minutes} minutes.",
        "too_large": "The form is too large.",
        "method": "Use the recharge form.",
        "reference": "Reference",
    },
    "sr": {
        "title": "Dopuna", "heading": "Dopunite račun",
        "msisdn": "Broj telefona", "hrn": "Broj vaučera (ispod zaštitnog sloja)",
        "submit": "Dopuni", "again": "Dopunite drugim vaučerom", "result": "Rezultat",
        "missing": "Unesite broj telefona i broj vaučera.",
        "csrf": "Obrazac je istekao. Otvorite ponovo stranicu za dopunu.",
        "rate_limited": "Previše pokušaja. Pokušajte ponovo za {minutes} minuta.",
        "too_large": "Obrazac je prevelik.",
        "method": "Koristite obrazac za dopunu.",
        "reference": "Referenca",
    },
}

RESULTS = {
    "en": {"SUCCESS": "Your account was credited with {amount} {currency}. Valid until {expiry}.",
           **RESULT_TEXTS["en"]},
    "sr": {"SUCCESS": "Vaš račun je dopunjen sa {amount} {currency}. Važi do {expiry}.",
           **RESULT_TEXTS["sr"]},
}

#: Every key a configured text may override.
KEYS = frozenset(UI["en"]) | frozenset(c.name for c in ResultCode)


def _tidy(text: str) -> str:
    # "Valid until ." when billing did not say the expiry: drop the empty clause
    return text.replace(" .", ".").replace("  ", " ")


class Texts:
    """Looks up page labels and renders result texts in a language."""

    def __init__(self, languages, overrides=None, *, timezone="UTC",
                 date_format="%Y-%m-%d", time_format="%Y-%m-%d %H:%M"):
        """
        @param languages: offered languages; the first is the default.
        @param overrides: language -> key -> text, over the built-in texts.
        """
        self.languages = list(languages)
        self.default = self.languages[0]
        self.tables: dict[str, dict[str, str]] = {}
        for lang in set(self.languages) | set(overrides or {}) | {"en"}:
            table = dict(UI.get(lang, {}))
            table.update(RESULTS.get(lang, {}))
            table.update((overrides or {}).get(lang, {}))
            self.tables[lang] = table
        self.zone = ZoneInfo(timezone)
        self.date_format = date_format
        self.time_format = time_format

    @classmethod
    def from_settings(cls, s) -> "Texts":
        return cls(s.languages, s.texts, timezone=s.timezone, date_format=s.date_format,
                   time_format=s.time_format)

    def pick(self, asked: str | None, accept_language: str | None) -> str:
        """The language to use: C{asked} if offered, else the best offered
        one in C{Accept-Language}, else the default."""
        if asked in self.languages:
            return asked
        best = None
        for part in (accept_language or "").split(",")[:20]:
            tag, _, q = part.strip().partition(";")
            base = tag.strip().lower().split("-")[0]
            try:
                weight = float(q.strip()[2:]) if q.strip().startswith("q=") else 1.0
            except ValueError:
                weight = 0.0
            if base in self.languages and weight > 0 and (best is None or weight > best[0]):
                best = (weight, base)
        return best[1] if best else self.default

    def get(self, key: str, lang: str) -> str:
        """The text C{key} in C{lang}, else in the default language, else in
        English, else C{key} itself."""
        return lookup(self.tables, key, (lang, self.default, "en"), missing=key)

    def result(self, result, lang: str) -> str:
        """The localised text for an L{core.requests.ActivationResult}; never raises."""
        template = self.get(result_code(result.code).name, lang)
        return fill_result(template, result, self.zone, self.date_format, self.time_format,
                           tidy=_tidy)
