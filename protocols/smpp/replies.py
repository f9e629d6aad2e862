"""Localised SMS reply texts: one template per result code (DESIGN §4) and language.

Templates are C{str.format} strings over the fields in
L{protocols.smpp.config.TEMPLATE_FIELDS}; a field the result does not carry
renders empty.  Amounts are shown in major units with the currency's ISO
4217 exponent; times in the configured time zone.
"""

from __future__ import annotations

import datetime
import re
import string
from zoneinfo import ZoneInfo

from core.results import ResultCode

from protocols.smpp.config import HELP, default_templates

#: ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def format_amount(minor: int | None, currency: str | None) -> str:
    """Render C{minor} units of C{currency} in major units: C{1050, "EUR"} -> C{"10.50"}."""
    if minor is None:
        return ""
    exp = _EXPONENTS.get((currency or "").upper(), 2)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10 ** exp)
    return "%s%d.%0*d" % (sign, whole, exp, frac)


_SPACES = re.compile(r" {2,}")


class _Blank(dict):
    def __missing__(self, key):
        return ""


class Replies:
    """Renders an L{core.requests.ActivationResult} (or help) as reply text."""

    def __init__(self, templates: dict[str, dict[str, str]] | None = None, *,
                 default_language: str = "en", timezone: str = "UTC",
                 date_format: str = "%Y-%m-%d", time_format: str = "%Y-%m-%d %H:%M") -> None:
        """
        @param templates: language -> key -> text, merged over
            L{default_templates} (a key missing in a language falls back to
            C{default_language}, then to English).
        """
        merged = default_templates()
        for lang, table in (templates or {}).items():
            merged.setdefault(lang, {}).update(table)
        self.templates = merged
        self.default_language = default_language
        self.zone = ZoneInfo(timezone)
        self.date_format = date_format
        self.time_format = time_format
        self._formatter = string.Formatter()

    @classmethod
    def from_settings(cls, replies) -> "Replies":
        """Build from L{protocols.smpp.config.RepliesSettings}."""
        return cls(replies.templates, default_language=replies.default_language,
                   timezone=replies.timezone, date_format=replies.date_format,
                   time_format=replies.time_format)

    def template(self, key: str, language: str) -> str:
        """The template C{key} in C{language}, falling back as documented."""
        for lang in (language, self.default_language, "en"):
            text = self.templates.get(lang, {}).get(key)
            if text is not None:
                return text
        return ""

    def _time(self, epoch_ms: int | None, fmt: str) -> str:
        if epoch_ms is None:
            return ""
        when = datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=self.zone)
        return when.strftime(fmt)

    def render(self, result, language: str, msisdn: str = "") -> str:
        """The reply for an activation result.

        @param result: an L{core.requests.ActivationResult}.
        @return: the text; never raises (an unknown code renders as
            C{SYSTEM_ERROR}).
        """
        try:
            key = ResultCode(result.code).name
        except ValueError:
            key = ResultCode.SYSTEM_ERROR.name
        fields = _Blank(
            amount=format_amount(result.amount, result.currency),
            currency=result.currency or "",
            expiry=self._time(result.new_expiry, self.date_format),
            unbar_time=self._time(result.unbar_at, self.time_format),
            validity_days="" if result.validity_days is None else str(result.validity_days),
            balance=format_amount(result.balance, result.currency),
            txn_id=(result.txn_id or "")[:12],
            code=str(int(result.code)),
            msisdn=msisdn or result.msisdn or "",
        )
        return self._fill(self.template(key, language), fields)

    def help(self, language: str, keywords: list[str]) -> str:
        """The help text in C{language}, listing C{keywords}."""
        return self._fill(self.template(HELP, language),
                          _Blank(keywords="/".join(keywords) if keywords else ""))

    def _fill(self, template: str, fields: dict) -> str:
        try:
            return _SPACES.sub(" ", self._formatter.vformat(template, (), fields)).strip()
        except (ValueError, IndexError, KeyError, AttributeError):
            return template
