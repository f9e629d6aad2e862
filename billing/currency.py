"""ISO 4217 currencies: alphabetic code -> (numeric code, minor-unit exponent).

The core keeps amounts in minor units with the alphabetic code; Diameter
(RFC 4006 §8.23 Currency-Code) wants the numeric code and CC-Money a
decimal amount.  The table covers common currencies; connectors accept
overrides from their configuration for anything else.
"""
from __future__ import annotations

import decimal

#: alpha -> (numeric, minor-unit digits)
ISO_4217: dict[str, tuple[int, int]] = {
    "AED": (784, 2), "ARS": (32, 2), "AUD": (36, 2), "BAM": (977, 2),
    "BGN": (975, 2), "BHD": (48, 3), "BRL": (986, 2), "CAD": (124, 2),
    "CHF": (756, 2), "CLP": (152, 0), "CNY": (156, 2), "CZK": (203, 2),
    "DKK": (208, 2), "DZD": (12, 2), "EGP": (818, 2), "EUR": (978, 2),
    "GBP": (826, 2), "GHS": (936, 2), "HKD": (344, 2), "HUF": (348, 2),
    "IDR": (360, 2), "ILS": (376, 2), "INR": (356, 2), "IQD": (368, 3),
    "ISK": (352, 0), "JOD": (400, 3), "JPY": (392, 0), "KES": (404, 2),
    "KRW": (410, 0), "KWD": (414, 3), "MAD": (504, 2), "MKD": (807, 2),
    "MXN": (484, 2), "MYR": (458, 2), "NGN": (566, 2), "NOK": (578, 2),
    "NZD": (554, 2), "OMR": (512, 3), "PHP": (608, 2), "PKR": (586, 2),
    "PLN": (985, 2), "QAR": (634, 2), "RON": (946, 2), "RSD": (941, 2),
    "RUB": (643, 2), "SAR": (682, 2), "SEK": (752, 2), "SGD": (702, 2),
    "THB": (764, 2), "TND": (788, 3), "TRY": (949, 2), "TZS": (834, 2),
    "UAH": (980, 2), "UGX": (800, 0), "USD": (840, 2), "VND": (704, 0),
    "XAF": (950, 0), "XOF": (952, 0), "ZAR": (710, 2),
}


class Currencies:
    """The ISO 4217 table plus configured overrides.

    Args:
        overrides: {"ABC": [numeric, minor digits]} added or replacing.

    Raises:
        ValueError: an override is malformed.
    """

    def __init__(self, overrides: dict | None = None):
        self.table = dict(ISO_4217)
        for alpha, value in (overrides or {}).items():
            numeric, minor = value
            if not (len(alpha) == 3 and alpha.isalpha() and alpha.isupper()
                    and 0 <= int(numeric) <= 999 and 0 <= int(minor) <= 4):
                raise ValueError(f"currency {alpha!r}: expected "
                                 "[numeric 0..999, minor digits 0..4]")
            self.table[alpha] = (int(numeric), int(minor))
        self.by_numeric = {n: (a, m) for a, (n, m) in self.table.items()}

    def numeric(self, alpha: str) -> tuple[int, int]:
        """(numeric code, minor digits). Raises KeyError for an unknown code."""
        return self.table[alpha]

    def to_decimal(self, minor_amount: int, alpha: str) -> decimal.Decimal:
        """Minor units -> exact Decimal in currency units (1050 EUR -> 10.50)."""
        _, digits = self.table[alpha]
        return decimal.Decimal(minor_amount).scaleb(-digits)

    def to_minor(self, amount: decimal.Decimal, numeric: int) -> tuple[int, str]:
        """Decimal amount of the numeric currency -> (minor units, alpha).

        Raises:
            KeyError: unknown numeric code.
            ValueError: the amount has more decimals than the currency.
        """
        alpha, digits = self.by_numeric[numeric]
        scaled = amount.scaleb(digits)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} {alpha} has sub-minor-unit digits")
        return int(scaled), alpha
