"""Typed settings of the UCIP connector (validated on construction)."""
from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

#: UCIP fields that take the validity in days (UpdateBalanceAndDate).
VALIDITY_FIELDS = ("supervisionExpiryDateRelative", "serviceFeeExpiryDateRelative")


@dataclasses.dataclass(frozen=True)
class UcipCodes:
    """What each C{responseCode} means; any code in none of the sets is a refusal (115).

    @ivar success: the account was credited (UCIP 0, and 1/2: credited with
        a supervision / service-fee period warning).
    @ivar unknown_subscriber: 102 subscriber not found.
    @ivar unknown: the AIR could not say whether it applied the request
        (100 other error): left pending for reconciliation.
    @ivar duplicate: codes by which the AIR says "this originTransactionID
        was already applied": concluded as credited.
    """

    success: tuple[int, ...] = (0, 1, 2)
    unknown_subscriber: tuple[int, ...] = (102,)
    unknown: tuple[int, ...] = (100,)
    duplicate: tuple[int, ...] = ()


#: UCIP's dedicatedAccountID range (UCIP 4.0 and later).
DA_ID_RANGE = (1, 2147483647)


@dataclasses.dataclass(frozen=True)
class UcipAccounts:
    """Which balances one voucher type's credit adjusts.

    @ivar dedicated_accounts: dedicatedAccountIDs credited with the amount
        (C{dedicatedAccountUpdateInformation}); None: those of
        C{[billing.ucip]}.
    @ivar credit_main_account: whether C{adjustmentAmountRelative} credits
        the main account too; None: as C{[billing.ucip]} says.
    """

    dedicated_accounts: tuple[int, ...] | None = None
    credit_main_account: bool | None = None


def _check_accounts(where: str, das, main: bool) -> None:
    for da in das:
        if isinstance(da, bool) or not isinstance(da, int) \
                or not DA_ID_RANGE[0] <= da <= DA_ID_RANGE[1]:
            raise ValueError("%sdedicated_accounts: %r is not a dedicatedAccountID (%d-%d)"
                             % ((where,) + (da,) + DA_ID_RANGE))
    if len(set(das)) != len(das):
        raise ValueError("%sdedicated_accounts: an id is listed twice" % where)
    if not main and not das:
        raise ValueError("%scredit_main_account = false needs dedicated_accounts" % where)


@dataclasses.dataclass(frozen=True)
class UcipSettings:
    """One AIR service: its URLs (tried in order), account and UCIP conventions.

    @ivar hosts: AIR URLs, e.g. C{http://air1:10010/Air}; the first that
        answers is used, the next ones on connection failure.
    @ivar dedicated_accounts: dedicatedAccountIDs every credit adjusts
        (unless its voucher type has its own in C{voucher_types}).
    @ivar credit_main_account: whether credits adjust the main account
        (C{adjustmentAmountRelative}); likewise overridable per type.
    @ivar voucher_types: voucher type code -> L{UcipAccounts}: the balances
        a voucher of that type credits.  A credit of another type, or of no
        type (a loyalty reward), uses the two settings above.
    @ivar lookup: C{"none"} (an unknown outcome stays pending for an
        operator) or C{"replay"} (re-send the same request; only for an AIR
        that detects a duplicate originTransactionID, see docs/billing.md).
    """

    hosts: tuple[str, ...] = ("http://127.0.0.1:10010/Air",)
    user: str = "ivoms"
    password: str = "ivoms"
    user_agent: str = "IVOMS/1.0/1.0"
    origin_node_type: str = "EXT"
    origin_host_name: str = "ivoms"
    number_format: str = "international"
    country_code: str = ""
    national_prefix: str = "0"
    transaction_type: str = "VOUCHER"
    transaction_code: str = "RECHARGE"
    validity_fields: tuple[str, ...] = VALIDITY_FIELDS
    dedicated_accounts: tuple[int, ...] = ()
    credit_main_account: bool = True
    pool_size: int = 16
    connect_timeout: float = 3.0
    request_timeout: float = 5.0
    host_retry_seconds: float = 10.0
    lookup: str = "none"
    codes: UcipCodes = dataclasses.field(default_factory=UcipCodes)
    voucher_types: dict = dataclasses.field(default_factory=dict)

    def accounts_for(self, voucher_type: str | None) -> tuple[bool, tuple[int, ...]]:
        """(credit the main account?, dedicatedAccountIDs) for one credit.

        @param voucher_type: the voucher type code, or None (not a voucher).
        """
        t = self.voucher_types.get(voucher_type) if voucher_type is not None else None
        if t is None:
            return self.credit_main_account, self.dedicated_accounts
        main = self.credit_main_account if t.credit_main_account is None else t.credit_main_account
        das = self.dedicated_accounts if t.dedicated_accounts is None else t.dedicated_accounts
        return main, das

    def __post_init__(self):
        if not self.hosts:
            raise ValueError("hosts: at least one AIR URL is needed")
        for url in self.hosts:
            u = urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError("hosts: %r is not an http(s) URL" % url)
        if self.number_format not in ("international", "national"):
            raise ValueError("number_format must be 'international' or 'national'")
        if self.number_format == "national" and not self.country_code.isdigit():
            raise ValueError("country_code (digits) is needed with number_format = 'national'")
        for f in self.validity_fields:
            if f not in VALIDITY_FIELDS:
                raise ValueError("validity_fields: %r is not one of %s" % (f, ", ".join(VALIDITY_FIELDS)))
        _check_accounts("", self.dedicated_accounts, self.credit_main_account)
        for code, t in self.voucher_types.items():
            if not isinstance(code, str) or not code or len(code) > 32:
                raise ValueError("voucher_types: %r is not a voucher type code" % (code,))
            if not isinstance(t, UcipAccounts):
                raise ValueError("voucher_types.%s: must be a table" % code)
            main, das = self.accounts_for(code)
            _check_accounts("voucher_types.%s." % code, das, main)
        if self.lookup not in ("none", "replay"):
            raise ValueError("lookup must be 'none' or 'replay'")
        if self.pool_size < 1 or self.connect_timeout <= 0 or self.request_timeout <= 0:
            raise ValueError("pool_size and timeouts must be > 0")


def from_table(t) -> UcipSettings:
    """L{UcipSettings} from the C{[billing.ucip]} table (L{gateway.config_billing.UcipSettingsTable}).

    @raise ValueError: an inconsistent setting (the message names the key).
    """
    return UcipSettings(
        tuple(t.hosts), t.user, t.password, t.user_agent, t.origin_node_type, t.origin_host_name,
        t.number_format, t.country_code, t.national_prefix, t.transaction_type,
        t.transaction_code, tuple(t.validity_fields), tuple(t.dedicated_accounts),
        t.credit_main_account, t.pool_size, t.connect_timeout, t.request_timeout,
        t.host_retry_seconds, t.lookup,
        UcipCodes(tuple(t.success_codes), tuple(t.unknown_subscriber_codes),
                  tuple(t.unknown_codes), tuple(t.duplicate_codes)),
        {code: UcipAccounts(None if v.dedicated_accounts is None else tuple(v.dedicated_accounts),
                            v.credit_main_account)
         for code, v in t.voucher_types.items()})
