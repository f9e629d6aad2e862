"""Localised texts of the recharge pages: page labels and one result text per result code.

Result texts are C{str.format} templates over
L{protocols.web.config.TEMPLATE_FIELDS}; a field the result does not carry
renders empty.  Amounts are shown in major units (ISO 4217 exponent), times
in the configured time zone.
"""

from __future__ import annotations

import datetime
import string
from zoneinfo import ZoneInfo

from core.results import ResultCode

#: ISO 4217 minor-unit exponents that are not 2.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

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
    "en": {
        "SUCCESS": "Your account was credited with {amount} {currency}. Valid until {expiry}.",
        "SYSTEM_ERROR": "Sorry, the recharge failed. Please try again later.",
        "SUBSCRIBER_UNKNOWN": "Your number is not known to the recharge service.",
        "SUBSCRIBER_BARRED": "Too many failed attempts. You can try again after {unbar_time}.",
        "VOUCHER_ALREADY_USED_BY_YOU": "You have already used this voucher.",
        "VOUCHER_USED_BY_OTHER": "This voucher has already been used.",
        "VOUCHER_NOT_AVAILABLE": "This voucher is not yet available.",
        "VOUCHER_EXPIRED": "This voucher has expired.",
        "VOUCHER_BLOCKED": "This voucher is blocked. Please contact customer care.",
        "VOUCHER_PENDING": "This voucher is being processed, please wait.",
        "BILLING_REJECTED": "The recharge was not accepted.",
        "INVALID_HRN": "Invalid voucher number. Please check it and try again.",
        "INVALID_MSISDN": "Invalid phone number.",
        "BILLING_UNAVAILABLE": "The recharge service is busy, please try again later.",
    },
    "sr": {
        "SUCCESS": "Vaš račun je dopunjen sa {amount} {currency}. Važi do {expiry}.",
        "SYSTEM_ERROR": "Dopuna nije uspela. Pokušajte kasnije.",
        "SUBSCRIBER_UNKNOWN": "Vaš broj nije poznat servisu za dopunu.",
        "SUBSCRIBER_BARRED": "Previše neuspelih pokušaja. Pokušajte ponovo posle {unbar_time}.",
        "VOUCHER_ALREADY_USED_BY_YOU": "Već ste iskoristili ovaj vaučer.",
        "VOUCHER_USED_BY_OTHER": "Ovaj vaučer je već iskorišćen.",
        "VOUCHER_NOT_AVAILABLE": "Ovaj vaučer još nije dostupan.",
        "VOUCHER_EXPIRED": "Ovaj vaučer je istekao.",
        "VOUCHER_BLOCKED": "Ovaj vaučer je blokiran. Obratite se korisničkoj podršci.",
        "VOUCHER_PENDING": "Vaučer se obrađuje, sačekajte.",
        "BILLING_REJECTED": "Dopuna nije prihvaćena.",
        "INVALID_HRN": "Neispravan broj vaučera. Proverite ga i pokušajte ponovo.",
        "INVALID_MSISDN": "Neispravan broj telefona.",
        "BILLING_UNAVAILABLE": "Servis za dopunu je zauzet, pokušajte kasnije.",
    },
}

#: Every key a configured text may override.
KEYS = frozenset(UI["en"]) | frozenset(c.name for c in ResultCode)


def format_amount(minor: int | None, currency: str | None) -> str:
    """C{minor} units in major units: C{1050, "EUR"} -> C{"10.50"}."""
    if minor is None:
        return ""
    exp = _EXPONENTS.get((currency or "").upper(), 2)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10 ** exp)
    return "%s%d.%0*d" % (sign, whole, exp, frac)


class _Blank(dict):
    def __missing__(self, key):
        return ""


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
        for table in (self.tables.get(lang), self.tables.get(self.default), self.tables["en"]):
            if table and key in table:
                return table[key]
        return key

    def _time(self, epoch_ms, fmt) -> str:
        if epoch_ms is None:
            return ""
        return datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=self.zone).strftime(fmt)

    def result(self, result, lang: str) -> str:
        """The localised text for an L{core.requests.ActivationResult}; never raises."""
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
            txn_id=(result.txn_id or "")[:12], code=str(int(result.code)),
            msisdn=result.msisdn or "")
        template = self.get(key, lang)
        try:
            text = string.Formatter().vformat(template, (), fields).strip()
        except (ValueError, IndexError, KeyError, AttributeError):
            return template
        # "Valid until ." when billing did not say the expiry: drop the empty clause
        return text.replace(" .", ".").replace("  ", " ")
