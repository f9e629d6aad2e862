"""ISO 4217 currencies (numeric code, minor-unit digits) and amounts shown in major units.

The core keeps amounts as integers of minor units beside the alphabetic
code; billing connectors need the numeric code and the exponent, channels
show the amount in major units ("10.50").  The table covers common
currencies; the billing connectors accept configured overrides
(L{billing.currency.Currencies}) for anything else.  L{format_money} is
the one place an amount becomes text with its code ("10.50 EUR",
"500 JPY", "1.000 KWD"): channels, the GUI, the CLI, exports and
reports all use it.
"""
from __future__ import annotations

#: alpha -> (numeric code, minor-unit digits)
ISO_4217: dict[str, tuple[int, int]] = {
    "AED": (784, 2), "ARS": (32, 2), "AUD": (36, 2), "BAM": (977, 2),
    "BGN": (975, 2), "BHD": (48, 3), "BIF": (108, 0), "BRL": (986, 2),
    "CAD": (124, 2), "CHF": (756, 2), "CLP": (152, 0), "CNY": (156, 2),
    "CZK": (203, 2), "DJF": (262, 0), "DKK": (208, 2), "DZD": (12, 2),
    "EGP": (818, 2), "EUR": (978, 2), "GBP": (826, 2), "GHS": (936, 2),
    "GNF": (324, 0), "HKD": (344, 2), "HUF": (348, 2), "IDR": (360, 2),
    "ILS": (376, 2), "INR": (356, 2), "IQD": (368, 3), "ISK": (352, 0),
    "JOD": (400, 3), "JPY": (392, 0), "KES": (404, 2), "KMF": (174, 0),
    "KRW": (410, 0), "KWD": (414, 3), "LYD": (434, 3), "MAD": (504, 2),
    "MKD": (807, 2), "MXN": (484, 2), "MYR": (458, 2), "NGN": (566, 2),
    "NOK": (578, 2), "NZD": (554, 2), "OMR": (512, 3), "PHP": (608, 2),
    "PKR": (586, 2), "PLN": (985, 2), "PYG": (600, 0), "QAR": (634, 2),
    "RON": (946, 2), "RSD": (941, 2), "RUB": (643, 2), "RWF": (646, 0),
    "SAR": (682, 2), "SEK": (752, 2), "SGD": (702, 2), "THB": (764, 2),
    "TND": (788, 3), "TRY": (949, 2), "TZS": (834, 2), "UAH": (980, 2),
    "UGX": (800, 0), "USD": (840, 2), "UYI": (940, 0), "VND": (704, 0),
    "VUV": (548, 0), "XAF": (950, 0), "XOF": (952, 0), "XPF": (953, 0),
    "ZAR": (710, 2),
}

#: Minor-unit digits assumed for a code the table does not hold.
DEFAULT_MINOR_DIGITS = 2


def minor_digits(currency: str | None) -> int:
    """The minor-unit exponent of alphabetic code C{currency} (any case):
    C{"EUR"} -> 2, C{"JPY"} -> 0; L{DEFAULT_MINOR_DIGITS} for an unknown or
    missing code.  Never raises."""
    entry = ISO_4217.get((currency or "").upper())
    return DEFAULT_MINOR_DIGITS if entry is None else entry[1]


def numeric_code(currency: str) -> int:
    """The ISO 4217 numeric code of alphabetic code C{currency} (C{"EUR"} -> 978).

    @raise KeyError: the code is not in L{ISO_4217}.
    """
    return ISO_4217[currency.upper()][0]


def format_amount(minor: int | None, currency: str | None, *,
                  bare_whole: bool = False) -> str:
    """C{minor} units of C{currency} in major units: C{1050, "EUR"} -> C{"10.50"},
    C{500, "JPY"} -> C{"500"}, C{1234, "KWD"} -> C{"1.234"}; C{""} for C{None}.

    @param bare_whole: leave out an all-zero fraction (C{1000, "EUR"} ->
        C{"10"}), as a text-to-speech engine should read it.
    """
    if minor is None:
        return ""
    exp = minor_digits(currency)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10 ** exp)
    if bare_whole and frac == 0:
        return "%s%d" % (sign, whole)
    return "%s%d.%0*d" % (sign, whole, exp, frac)


def format_money(minor: int, currency: str | None) -> str:
    """C{minor} units of C{currency} followed by the code, in the currency's
    ISO 4217 minor units: C{1050, "EUR"} -> C{"10.50 EUR"}, C{500, "JPY"} ->
    C{"500 JPY"}, C{1000, "KWD"} -> C{"1.000 KWD"}, C{-1050, "EUR"} ->
    C{"-10.50 EUR"}.

    @param minor: the amount in minor units (may be negative).
    @param currency: the alphabetic code; an unknown code is shown with
        L{DEFAULT_MINOR_DIGITS} digits, an empty or missing one leaves the
        code out (C{1050, ""} -> C{"10.50"}).
    @return: the amount and code, separated by one space.
    """
    text = format_amount(minor, currency)
    return "%s %s" % (text, currency) if currency else text
