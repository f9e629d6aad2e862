"""Typed settings of the external billing connectors and the billing simulator (DESIGN §6)."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import endpoint, non_negative, one_of, positive, setting
from core.tls import TlsListener, client_problem, readable_or_empty


@dataclass(frozen=True)
class DiameterPeer:
    host: str = "127.0.0.1"
    port: int = setting(3868, check=positive)
    priority: int = setting(0, check=non_negative)
    name: str = ""
    #: TLS/TCP (RFC 6733 section 13, port 5658): the peer's certificate is verified
    #: against C{tls_ca} (default: the system's CAs) for C{tls_server_name} (default: host)
    tls: bool = False
    tls_ca: str = setting("", path=True, check=readable_or_empty)
    tls_server_name: str = ""
    tls_key: str = setting("", path=True, check=readable_or_empty)    # client certificate,
    tls_cert: str = setting("", path=True, check=readable_or_empty)   # when the peer asks one

    def __post_init__(self):
        problem = client_problem(self.tls, self.tls_ca, self.tls_key, self.tls_cert)
        if problem:
            raise ValueError(problem)


@dataclass(frozen=True)
class DiameterValidityAvp:
    vendor_id: int = setting(32473, check=non_negative)
    code: int = setting(1, check=positive)
    type: str = setting("Unsigned32", check=one_of("Unsigned32", "Integer32", "Time"))
    mandatory: bool = False


@dataclass(frozen=True)
class DiameterSettings:
    origin_host: str = "ivoms.localdomain"
    origin_realm: str = "localdomain"
    host_ip_addresses: list[str] = setting(factory=lambda: ["127.0.0.1"])
    session_host: str = ""
    destination_realm: str = "localdomain"
    destination_host: str = ""
    service_context_id: str = "32274@3gpp.org"
    requested_action: int = 1
    exponent: int | None = None
    validity_avps: list[DiameterValidityAvp] = setting(
        factory=lambda: [DiameterValidityAvp()])
    currencies: dict[str, list[int]] = setting(factory=dict)
    peers: list[DiameterPeer] = setting(factory=lambda: [DiameterPeer()])
    watchdog_interval: float = setting(30.0, check=positive)
    watchdog_jitter: float = setting(2.0, check=non_negative)
    request_timeout: float = setting(5.0, check=positive)
    window: int = setting(256, check=positive)
    queue_limit: int = setting(10000, check=non_negative)
    cea_timeout: float = setting(10.0, check=positive)
    dpa_timeout: float = setting(2.0, check=positive)
    drain_timeout: float = setting(5.0, check=non_negative)
    reconnect_initial: float = setting(1.0, check=positive)
    reconnect_max: float = setting(30.0, check=positive)
    reconnect_factor: float = setting(1.5, check=positive)
    failover: bool = True


@dataclass(frozen=True)
class CaiSettingsTable:
    host: str = "127.0.0.1"
    port: int = setting(3869, check=positive)
    user: str = "ivoms"
    password: str = "ivoms"
    pool_size: int = setting(4, check=positive)
    command_timeout: float = setting(5.0, check=positive)
    login_timeout: float = setting(5.0, check=positive)
    queue_limit: int = setting(1000, check=non_negative)
    reconnect_initial: float = setting(1.0, check=positive)
    reconnect_max: float = setting(30.0, check=positive)
    login_template: str = "LOGIN:{user}:{password};"
    logout_template: str = "LOGOUT;"
    credit_template: str = ("SET:SUBSCRIBER:{msisdn}:RECHARGE,AMOUNT,{amount},CURRENCY,{currency},"
                            "VALIDITY,{days},REF,{key};")
    lookup_template: str = "GET:RECHARGE:REF,{key};"
    success_codes: list[int] = setting(factory=lambda: [0])
    unknown_subscriber_codes: list[int] = setting(factory=lambda: [1002])
    refused_codes: list[int] = setting(factory=lambda: [1003])
    not_logged_in_codes: list[int] = setting(factory=lambda: [1008])
    not_found_codes: list[int] = setting(factory=lambda: [1010])
    not_found_is_final: bool = True
    lookup_status_field: str = "STATUS"
    lookup_credited_values: list[str] = setting(factory=lambda: ["CREDITED"])
    lookup_refused_values: list[str] = setting(factory=lambda: ["REFUSED"])
    lookup_code_field: str = "CODE"
    lookup_status_required: bool = False
    balance_field: str = "BALANCE"
    expiry_field: str = "EXPIRY"


@dataclass(frozen=True)
class UcipVoucherTypeTable:
    """C{[billing.ucip.voucher_types.<code>]}: the balances one voucher type credits
    (a key left out: as C{[billing.ucip]} says)."""

    dedicated_accounts: list[int] | None = None
    credit_main_account: bool | None = None


@dataclass(frozen=True)
class UcipSettingsTable:
    """C{[billing.ucip]}: Ericsson AIR over UCIP (see billing/ucip/config.py)."""

    hosts: list[str] = setting(factory=lambda: ["http://127.0.0.1:10010/Air"])
    user: str = "ivoms"
    password: str = "ivoms"
    user_agent: str = "IVOMS/1.0/1.0"
    origin_node_type: str = "EXT"
    origin_host_name: str = "ivoms"
    number_format: str = setting("international", check=one_of("international", "national"))
    country_code: str = ""
    national_prefix: str = "0"
    transaction_type: str = "VOUCHER"
    transaction_code: str = "RECHARGE"
    validity_fields: list[str] = setting(
        factory=lambda: ["supervisionExpiryDateRelative", "serviceFeeExpiryDateRelative"])
    dedicated_accounts: list[int] = setting(factory=list)
    credit_main_account: bool = True
    pool_size: int = setting(16, check=positive)
    connect_timeout: float = setting(3.0, check=positive)
    request_timeout: float = setting(5.0, check=positive)
    host_retry_seconds: float = setting(10.0, check=non_negative)
    lookup: str = setting("none", check=one_of("none", "replay"))
    success_codes: list[int] = setting(factory=lambda: [0, 1, 2])
    unknown_subscriber_codes: list[int] = setting(factory=lambda: [102])
    unknown_codes: list[int] = setting(factory=lambda: [100])
    duplicate_codes: list[int] = setting(factory=list)
    voucher_types: dict[str, UcipVoucherTypeTable] = setting(factory=dict)


def _rate(v):
    return None if 0.0 <= v <= 1.0 else "must be between 0 and 1"


@dataclass(frozen=True)
class BillingSimSettings(TlsListener):
    """C{[billing_sim]}: the standalone simulator C{ivoms billing-sim}; C{tls_key}/C{tls_cert}
    (and C{tls_client_ca}) make its Diameter listener TLS (L{core.tls.TlsListener})."""

    TLS_ENDPOINT_FIELD = "diameter"

    diameter: str = setting("tcp:3868:interface=127.0.0.1", check=endpoint)
    cai: str = ""
    ucip: str = ""
    origin_host: str = "ocs.sim.localdomain"
    origin_realm: str = "localdomain"
    accounts: str = setting("", path=True)
    auto_create: bool = True
    currency: str = "EUR"
    cai_user: str = "ivoms"
    cai_password: str = "ivoms"
    latency: float = setting(0.0, check=non_negative)
    reject_rate: float = setting(0.0, check=_rate)
    drop_rate: float = setting(0.0, check=_rate)
    slow_rate: float = setting(0.0, check=_rate)
    slow_seconds: float = setting(5.0, check=non_negative)
    malformed_rate: float = setting(0.0, check=_rate)
    busy_rate: float = setting(0.0, check=_rate)
    seed: int | None = None
    journal: str = setting("", path=True)
