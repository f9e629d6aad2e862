"""Localised USSD texts: menus, prompts and one text per result code (DESIGN §4), kept
within the USSD string limit (160 octets: 182 GSM 7-bit characters or 80 UCS-2 ones).

Templates are C{str.format} strings over L{protocols.ussd.config.TEMPLATE_FIELDS};
a field the result does not carry renders empty. A result's fields come from
L{protocols.common.results.result_fields} (amounts in major units, dates and times
in the configured time zone). The
built-in Serbian texts are written without diacritics on purpose: č, ć, š, ž and đ are
not in the GSM 7-bit alphabet and would halve the room to 80 UCS-2 characters.
"""

from __future__ import annotations

import string

from core.results import ResultCode

from protocols.common.localised import LocalisedTemplates
from protocols.common.results import result_code, result_fields, with_reward
from protocols.common.templates import Blank, fill, template_fields
from protocols.common.texts import RESULT_TEXTS
from protocols.ussd.errors import UssdEncodeError
from protocols.ussd.gsm7 import MAX_USSD_OCTETS, encode_ussd

#: Field values as long as they get, used to check configured templates fit.
_WIDEST = {
    "amount": "9999999.99", "currency": "EUR", "expiry": "2099-12-31",
    "unbar_time": "2099-12-31 23:59", "validity_days": "3650", "balance": "9999999.99",
    "txn_id": "0123456789ab", "code": "151", "msisdn": "381641234567890",
    "beneficiary": "381641234567890", "service_code": "12345", "hrn_digits": "14/16/20",
}

ELLIPSIS = "..."


_DIACRITICS = str.maketrans({
    "č": "c", "ć": "c", "š": "s", "ž": "z", "đ": "dj",
    "Č": "C", "Ć": "C", "Š": "S", "Ž": "Z", "Đ": "Dj"})

#: Result texts of the USSD channel that differ from the shared ones.
_OWN_RESULT_TEXTS = {
    "en": {"SUBSCRIBER_UNKNOWN": "This number is not known to the recharge service."},
    "sr": {"SUBSCRIBER_UNKNOWN": "Broj nije poznat servisu za dopunu."},
}


def plain(text: str) -> str:
    """
    Write Serbian Latin letters without diacritics, so that a text stays in
    the GSM 7-bit alphabet.

    @param text: any text.
    @return: C{text} with č, ć, š, ž and đ as c, c, s, z and dj.
    """
    return text.translate(_DIACRITICS)


def default_templates() -> dict[str, dict[str, str]]:
    """The built-in texts (English and Serbian); configured entries override them.

    The result texts are the shared ones of L{protocols.common.texts}, written
    without diacritics (see L{plain}); only C{SUBSCRIBER_UNKNOWN} differs, since
    a USSD recharge may be for another number.

    @return: language -> template key -> template.
    """
    tables = {
        "en": {
            "MENU": "Recharge\n1 Recharge my number\n2 Recharge another number\n3 Help",
            "MENU_SELF_ONLY": "Recharge\n1 Recharge my number\n3 Help",
            "PROMPT_HRN": "Enter the {hrn_digits}-digit voucher number:",
            "PROMPT_BENEFICIARY": "Enter the phone number to recharge:",
            "PROMPT_HRN_OTHER": "Recharge {beneficiary}. "
                                "Enter the {hrn_digits}-digit voucher number:",
            "HELP": "Scratch the card and dial *{service_code}*voucher number# "
                    "or *{service_code}# for the menu. "
                    "Another number: *{service_code}*voucher*number#",
            "INVALID_CHOICE": "Invalid choice.",
            "INVALID_HRN_INPUT": "The voucher number must have {hrn_digits} digits.",
            "INVALID_NUMBER_INPUT": "That is not a valid phone number.",
            "TOO_MANY_ATTEMPTS": "Too many invalid entries. "
                                 "Please dial *{service_code}# to start again.",
            "SESSION_EXPIRED": "Your session has expired. "
                               "Please dial *{service_code}# to start again.",
            "UNKNOWN_SERVICE": "Unknown service code.",
            "BAD_REQUEST": "Request not understood. Dial *{service_code}# for the menu.",
            "OTHER_NUMBER_DISABLED": "Recharging another number is not available.",
            "SUCCESS": "Your account was credited with {amount} {currency}. "
                       "Valid until {expiry}. Ref {txn_id}",
            "SUCCESS_NO_EXPIRY": "Your account was credited with {amount} {currency}. "
                                 "Ref {txn_id}",
            "SUCCESS_OTHER": "{beneficiary} was credited with {amount} {currency}. "
                             "Ref {txn_id}",
        },
        "sr": {
            "MENU": "Dopuna\n1 Dopuna mog broja\n2 Dopuna drugog broja\n3 Pomoc",
            "MENU_SELF_ONLY": "Dopuna\n1 Dopuna mog broja\n3 Pomoc",
            "PROMPT_HRN": "Unesite broj vaucera ({hrn_digits} cifara):",
            "PROMPT_BENEFICIARY": "Unesite broj telefona za dopunu:",
            "PROMPT_HRN_OTHER": "Dopuna broja {beneficiary}. "
                                "Unesite broj vaucera ({hrn_digits} cifara):",
            "HELP": "Ogrebite karticu i pozovite *{service_code}*broj vaucera# "
                    "ili *{service_code}# za meni. "
                    "Drugi broj: *{service_code}*vaucer*broj#",
            "INVALID_CHOICE": "Pogresan izbor.",
            "INVALID_HRN_INPUT": "Broj vaucera mora imati {hrn_digits} cifara.",
            "INVALID_NUMBER_INPUT": "Neispravan broj telefona.",
            "TOO_MANY_ATTEMPTS": "Previse pogresnih unosa. "
                                 "Pozovite *{service_code}# ponovo.",
            "SESSION_EXPIRED": "Sesija je istekla. Pozovite *{service_code}# ponovo.",
            "UNKNOWN_SERVICE": "Nepoznat servisni kod.",
            "BAD_REQUEST": "Zahtev nije razumljiv. Pozovite *{service_code}# za meni.",
            "OTHER_NUMBER_DISABLED": "Dopuna drugog broja nije dostupna.",
            "SUCCESS": "Vas racun je dopunjen sa {amount} {currency}. "
                       "Vazi do {expiry}. Ref {txn_id}",
            "SUCCESS_NO_EXPIRY": "Vas racun je dopunjen sa {amount} {currency}. "
                                 "Ref {txn_id}",
            "SUCCESS_OTHER": "Broj {beneficiary} je dopunjen sa {amount} {currency}. "
                             "Ref {txn_id}",
        },
    }
    for language, table in tables.items():
        shared = {key: plain(text)
                  for key, text in RESULT_TEXTS[language].items()}
        shared.update(_OWN_RESULT_TEXTS[language])
        table.update(shared)
    return tables


def fits(text: str) -> bool:
    """True when C{text} is a non-empty USSD string of at most 160 octets once encoded."""
    if 0 < len(text) <= MAX_USSD_OCTETS // 2 and max(text) < "\U00010000":
        return True             # fits even as UCS-2 (2 octets a character): no encoding
    try:
        encode_ussd(text, MAX_USSD_OCTETS)
    except UssdEncodeError:
        return False
    return True


def fit(text: str) -> str:
    """C{text} cut (with C{...}) so that it encodes to at most 160 octets.

    Whitespace at the ends is removed; an empty text becomes C{"."} (a USSD string
    cannot be empty).
    """
    text = text.strip() or "."
    if fits(text):
        return text
    low, high = 0, len(text)
    while low < high:           # longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if fits(text[:mid].rstrip() + ELLIPSIS):
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS


def oversize_templates(languages) -> str | None:
    """A message naming the first template that cannot fit a USSD string even before
    its fields are filled in at their widest, or C{None} when all fit."""
    for lang, table in languages.items():
        for key, template in table.items():
            try:
                text = string.Formatter().vformat(template, (), Blank(_WIDEST)).strip()
            except (ValueError, IndexError, KeyError, AttributeError):
                continue            # reported by the template checks
            if not fits(text):
                return ("%s.%s: too long for a USSD string (160 octets: 182 GSM 7-bit "
                        "characters, or 80 when a character needs UCS-2)" % (lang, key))
    return None


class Texts(LocalisedTemplates):
    """Renders menus, prompts and activation results in a subscriber's language.

    Built like L{protocols.common.localised.LocalisedTemplates} (or from
    L{protocols.ussd.config.TextSettings}) over L{default_templates}.
    """

    builtin = staticmethod(default_templates)

    def has_language(self, language: str | None) -> bool:
        """True when texts exist in C{language}."""
        return bool(language) and language in self.templates

    def choose_language(self, *candidates) -> str:
        """The first of C{candidates} that has texts, else the default language."""
        for language in candidates:
            if language and language.lower() in self.templates:
                return language.lower()
        return self.default_language

    def text(self, key: str, language: str, **fields) -> str:
        """The text C{key} with C{fields} filled in, cut to fit a USSD string."""
        return fit(fill(self.template(key, language), Blank(fields)))

    def joined(self, first: str, second: str, language: str, **fields) -> str:
        """Texts C{first} and C{second} on two lines, or C{second} alone when the two
        do not fit one USSD string (e.g. an error note above a repeated menu)."""
        a = fill(self.template(first, language), Blank(fields))
        b = fill(self.template(second, language), Blank(fields))
        both = "%s\n%s" % (a, b)
        return both if fits(both) else fit(b)

    def result(self, result, language: str, **fields) -> str:
        """The text for an L{core.requests.ActivationResult}.

        A success for another account uses C{SUCCESS_OTHER}; a success without an
        account expiry uses C{SUCCESS_NO_EXPIRY}. Never raises: an unknown code
        renders as C{SYSTEM_ERROR}.
        """
        code = result_code(result.code)
        key = code.name
        if code == ResultCode.SUCCESS:
            if fields.get("beneficiary"):
                key = "SUCCESS_OTHER"
            elif result.new_expiry is None:
                key = "SUCCESS_NO_EXPIRY"
        template = self.template(key, language)
        # only the fields the template names are worked out (the others render empty)
        values = result_fields(result, self.zone, self.date_format, self.time_format,
                               names=template_fields(template))
        values["code"] = str(int(code))     # the code of the text shown
        values.update(fields)
        text = fit(fill(template, values))
        longer = with_reward(text, template, result, "\n")
        return longer if longer != text and fits(longer) else text
