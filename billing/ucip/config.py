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


@dataclasses.dataclass(frozen=True)
class UcipSettings:
    """One AIR service: its URLs (tried in order), account and UCIP conventions.

    @ivar hosts: AIR URLs, e.g. C{http://air1:10010/Air}; the first that
        answers is used, the next ones on connection failure.
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
        if not self.credit_main_account and not self.dedicated_accounts:
            raise ValueError("credit_main_account = false needs dedicated_accounts")
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
                  tuple(t.unknown_codes), tuple(t.duplicate_codes)))
