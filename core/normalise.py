"""Normalisation of subscriber numbers (to E.164 digits) and HRNs (to digits), DESIGN §4 step 1."""
from __future__ import annotations

from zope.interface import implementer

from core.interfaces import INumberingPlan

_HRN_SEPARATORS = str.maketrans("", "", " -\t")


@implementer(INumberingPlan)
class MsisdnRules:
    """The configured numbering plan: country code, prefixes, allowed lengths."""

    def __init__(self, country_code: str, national_prefix: str,
                 international_prefixes, lengths):
        self.cc = country_code
        self.national = national_prefix
        self.intl = sorted(international_prefixes, key=len, reverse=True)
        self.lengths = frozenset(lengths)

    @classmethod
    def from_settings(cls, s) -> "MsisdnRules":
        return cls(s.country_code, s.national_prefix, s.international_prefixes, s.lengths)

    def normalise(self, raw: str | None) -> str | None:
        """E.164 digits (no '+') for C{raw}, or None when it is malformed.

        C{+381641234567}, C{00381641234567}, C{0641234567} and
        C{381641234567} all give C{381641234567} with country code 381 and
        national prefix 0.  Spaces, dashes, dots and parentheses are ignored.
        """
        if not raw or len(raw) > 32:
            return None
        s = raw.strip()
        for ch in " -.()/":
            s = s.replace(ch, "")
        number = None
        for p in self.intl:
            if p and s.startswith(p):
                number = s[len(p):]
                break
        if number is None:
            if self.national and s.startswith(self.national):
                number = self.cc + s[len(self.national):]
            else:
                number = s
        if not number.isdigit() or not number.isascii():
            return None
        if len(number) not in self.lengths:
            return None
        return number


def normalise_hrn(raw: str | None, lengths) -> str | None:
    """The digits of C{raw} with spaces and dashes removed, or None when
    malformed (other characters, or a length no voucher type uses)."""
    if not raw or len(raw) > 64:
        return None
    s = raw.strip().translate(_HRN_SEPARATORS)
    if not s.isdigit() or not s.isascii() or len(s) not in lengths:
        return None
    return s
