"""ISO 4217 currencies as the billing connectors use them: the shared table plus overrides.

The table itself is L{core.money.ISO_4217}; Diameter (RFC 4006 §8.23
Currency-Code) wants the numeric code and CC-Money a decimal amount.
Connectors accept overrides from their configuration for currencies the
table does not hold.
"""
from __future__ import annotations

import decimal

from core.money import ISO_4217

__all__ = ["ISO_4217", "Currencies"]


class Currencies:
    """The ISO 4217 table plus configured overrides.

    @param overrides: {"ABC": [numeric, minor digits]} added or replacing.

    @raise ValueError: an override is malformed.
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

        @raise KeyError: unknown numeric code.
        @raise ValueError: the amount has more decimals than the currency.
        """
        alpha, digits = self.by_numeric[numeric]
        scaled = amount.scaleb(digits)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} {alpha} has sub-minor-unit digits")
        return int(scaled), alpha
