"""The iVOMS configuration: C{conf/ivoms.toml} and the admin-edited files beside it.

Loaded once, validated whole, and handed to every part as typed settings.
Relative paths resolve against the folder of the file they appear in, so a
copied C{conf/} folder is a self-contained instance.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field

from admin.config import AdminSettings
from protocols.ivr.config import IvrSettings
from protocols.soap.config import SoapSettings
from protocols.ussd.config import UssdSettings
from protocols.web.config import WebSettings
from protocols.smpp.config import SmppSettings
from gateway.config_billing import (BillingSimSettings, CaiSettingsTable, DiameterSettings,
                                    UcipSettingsTable)
from gateway.config_housekeeping import HousekeepingSettings
from gateway.config_metrics import MetricsSettings
from core.fraud import SELF_ASSERTED
from core.requests import Channel
from core.tls import TlsListener
from core.settings import (
    ConfigError, build, digits, endpoint, non_negative, one_of, positive, setting,
)

__all__ = ["ConfigError", "Config", "load_config", "VoucherType", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = os.environ.get("IVOMS_CONFIG", "conf/ivoms.toml")


@dataclass(frozen=True)
class NodeSettings:
    name: str = "node1"
    shutdown_timeout: float = setting(30.0, check=positive)   # seconds the stop may take


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/ivoms.db"
    pool_size: int = setting(8, check=positive)
    writer_threads: int = setting(0, check=non_negative)   # 0: 1 for SQLite, pool_size for others
    group_commit_max: int = setting(512, check=positive)
    #: where units of work run: "process" (a writer process of the node's
    #: own, SQLite only), "threads" (writer threads in the node), or "auto":
    #: the writer process on SQLite, threads on PostgreSQL
    writer: str = setting("auto", check=one_of("auto", "process", "threads"))

    def __post_init__(self):
        if self.writer == "process" and not self.url.startswith("sqlite"):
            raise ValueError("writer: \"process\" serves SQLite only; on %s the node's "
                             "writer threads share the work (writer_threads)"
                             % (self.url.split(":", 1)[0],))

    @property
    def writer_process(self) -> bool:
        """True when units of work run in a writer process of their own."""
        return self.writer == "process" or (self.writer == "auto" and self.url.startswith("sqlite"))


@dataclass(frozen=True)
class ClusterSettings:
    """C{[cluster]}: where state that consecutive requests share is kept (docs/cluster.md).

    C{shared_state}: C{"memory"} (this node's memory: one node), C{"database"}
    (the database every node shares), or C{"auto"}: the database on
    PostgreSQL, memory on SQLite.
    """

    shared_state: str = setting("auto", check=one_of("auto", "memory", "database"))

    def in_database(self, url: str) -> bool:
        """True when shared state goes to the database at C{url}."""
        if self.shared_state == "auto":
            return not url.startswith("sqlite")
        return self.shared_state == "database"


@dataclass(frozen=True)
class KeysSettings:
    file: str = setting("var/keys.json", path=True)


@dataclass(frozen=True)
class LoggingSettings:
    format: str = setting("text", check=one_of("text", "json"))
    level: str = setting("info", check=one_of("debug", "info", "warn", "error"))
    file: str = setting("-", path=True)


@dataclass(frozen=True)
class GenerationSettings:
    max_count: int = setting(10_000_000, check=positive)
    chunk_size: int = setting(20_000, check=positive)
    serial_start: int = setting(1_000_000_000, check=positive)
    workers: int = setting(1, check=non_negative)


@dataclass(frozen=True)
class MsisdnSettings:
    country_code: str = setting("381", check=digits)
    national_prefix: str = "0"
    international_prefixes: list[str] = setting(factory=lambda: ["00", "+"])
    lengths: list[int] = setting(factory=lambda: [11, 12])


@dataclass(frozen=True)
class FraudTier:
    failures: int = setting(check=positive)
    bar_seconds: int = setting(check=positive)


def _tiers_ascending(tiers):
    f = [t.failures for t in tiers]
    if f != sorted(set(f)):
        return "tiers must have strictly increasing 'failures'"
    return None


def _channel_names(values):
    known = [c.value for c in Channel]
    for v in values:
        if v not in known:
            return "%r is not a channel (channels: %s)" % (v, ", ".join(known))
    return None


@dataclass(frozen=True)
class SourceLimit:
    """C{[[fraud.sources]]}: the failed attempts per minute one peer may make."""

    source: str = setting(check=lambda v: None if v else "must not be empty")
    failures_per_minute: int = setting(check=positive)


@dataclass(frozen=True)
class FraudSettings:
    window_seconds: int = setting(86400, check=positive)
    reset_on_success: bool = True
    tiers: list[FraudTier] = setting(
        factory=lambda: [FraudTier(5, 900), FraudTier(10, 3600), FraudTier(15, 86400)],
        check=_tiers_ascending)
    #: failed attempts per minute from one source (an SMPP account, a SOAP
    #: client, a USSD/IVR peer, a Web/WAP address) before it gets 152
    source_failures_per_minute: int = setting(30, check=positive)
    sources: list[SourceLimit] = setting(factory=list)
    #: channels where the MSISDN is only what the client says: their failures
    #: bar the MSISDN for that source only, never everywhere
    self_asserted_channels: list[str] = setting(factory=lambda: list(SELF_ASSERTED),
                                                check=_channel_names)


@dataclass(frozen=True)
class ActivationSettings:
    billing_timeout: float = setting(10.0, check=positive)
    allow_beneficiary: bool = True
    reconcile_after_seconds: int = setting(120, check=positive)
    reconcile_interval_seconds: int = setting(60, check=positive)
    replay_window_seconds: int = setting(3600, check=positive)


@dataclass(frozen=True)
class HttpSettings(TlsListener):
    """C{[http]}: the listener shared by the HTTP channels (USSD, IVR, SOAP, Web/WAP);
    HTTPS with C{tls_key}/C{tls_cert} (L{core.tls.TlsListener})."""

    enabled: bool = True
    listen: str = setting("tcp:8080:interface=127.0.0.1", check=endpoint)
    max_body_bytes: int = setting(1 << 20, check=positive)


@dataclass(frozen=True)
class LedgerSettings:
    auto_create: bool = True
    in_transaction: bool = True
    currency: str = "EUR"


@dataclass(frozen=True)
class BillingSettings:
    connector: str = setting("ledger", check=one_of("ledger", "diameter", "cai", "ucip"))
    ledger: LedgerSettings = setting(factory=LedgerSettings)
    diameter: DiameterSettings = setting(factory=DiameterSettings)
    cai: CaiSettingsTable = setting(factory=CaiSettingsTable)
    ucip: UcipSettingsTable = setting(factory=UcipSettingsTable)


def _currency(v):
    return None if re.fullmatch(r"[A-Z]{3}", v) else "must be an ISO 4217 code such as 'EUR'"


def _hrn_length(v):
    return None if 8 <= v <= 20 else "must be between 8 and 20"


@dataclass(frozen=True)
class VoucherType:
    """A voucher type as the administrator defines it (DESIGN §3)."""

    code: str
    name: str
    face_value: int = setting(check=non_negative)               # minor units
    currency: str = setting(check=_currency)
    validity_days: int = setting(365, check=positive)           # unused voucher shelf life
    account_validity_days: int = setting(0, check=non_negative)  # granted to the account
    hrn_length: int = setting(14, check=_hrn_length)
    loyalty: dict[str, int] = setting(factory=dict)             # plan id -> weight


@dataclass(frozen=True)
class VoucherTypesFile:
    voucher_type: list[VoucherType] = setting(factory=list)


@dataclass(frozen=True)
class IvomsFile:
    """The tables of C{ivoms.toml}."""

    voucher_types: str = setting("voucher-types.toml", path=True)
    loyalty: str = setting("loyalty.toml", path=True)
    node: NodeSettings = setting(factory=NodeSettings)
    database: DatabaseSettings = setting(factory=DatabaseSettings)
    cluster: ClusterSettings = setting(factory=ClusterSettings)
    keys: KeysSettings = setting(factory=KeysSettings)
    logging: LoggingSettings = setting(factory=LoggingSettings)
    generation: GenerationSettings = setting(factory=GenerationSettings)
    msisdn: MsisdnSettings = setting(factory=MsisdnSettings)
    fraud: FraudSettings = setting(factory=FraudSettings)
    activation: ActivationSettings = setting(factory=ActivationSettings)
    billing: BillingSettings = setting(factory=BillingSettings)
    billing_sim: BillingSimSettings = setting(factory=BillingSimSettings)
    http: HttpSettings = setting(factory=HttpSettings)
    smpp: SmppSettings = setting(factory=SmppSettings)
    ivr: IvrSettings = setting(factory=IvrSettings)
    soap: SoapSettings = setting(factory=SoapSettings)
    ussd: UssdSettings = setting(factory=UssdSettings)
    web: WebSettings = setting(factory=WebSettings)
    admin: AdminSettings = setting(factory=AdminSettings)
    housekeeping: HousekeepingSettings = setting(factory=HousekeepingSettings)
    metrics: MetricsSettings = setting(factory=MetricsSettings)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    path: str
    base_dir: str
    main: IvomsFile
    voucher_types: dict = field(default_factory=dict)   # code -> VoucherType
    loyalty_plans: tuple = ()                           # core.loyalty.plans.Plan, file order

    def __getattr__(self, name):
        # config.database, config.msisdn ... read through to the main file
        return getattr(self.__dict__["main"], name)

    @property
    def database_url(self) -> str:
        return self.main.database.url

    def voucher_type(self, code: str) -> VoucherType:
        """The type C{code}.

        @raise ConfigError: no such type is configured.
        """
        try:
            return self.voucher_types[code]
        except KeyError:
            raise ConfigError("unknown voucher type %r (configured: %s)"
                              % (code, ", ".join(sorted(self.voucher_types)) or "none"))


def read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("%s: file not found" % path)
    except OSError as e:
        raise ConfigError("%s: cannot read: %s" % (path, e.strerror))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("%s: not valid TOML: %s" % (path, e))
    except UnicodeDecodeError as e:
        raise ConfigError("%s: not UTF-8 text (octet %d)" % (path, e.start))


def resolve_database_url(url: str, base_dir: str) -> str:
    """Make a relative SQLite file path absolute against C{base_dir}."""
    m = re.match(r"^(sqlite(?:\+\w+)?:///)(.*)$", url)
    if m and m.group(2) and m.group(2) != ":memory:" and not m.group(2).startswith("/"):
        path = os.path.normpath(os.path.join(base_dir, m.group(2)))
        return m.group(1) + path
    return url


def load_config(path: str | None = None) -> Config:
    """Load, resolve and validate the configuration at C{path}.

    @raise ConfigError: anything wrong, naming the file and the key.
    """
    path = os.path.abspath(path or DEFAULT_CONFIG)
    base = os.path.dirname(path)
    raw = read_toml(path)
    main = build(IvomsFile, raw, file=path, key="", base_dir=base)
    url = resolve_database_url(main.database.url, base)
    if url != main.database.url:
        from dataclasses import replace
        main = replace(main, database=replace(main.database, url=url))
    types_path = main.voucher_types
    types_file = build(VoucherTypesFile, read_toml(types_path), file=types_path, key="",
                       base_dir=os.path.dirname(types_path))
    types = {}
    for i, t in enumerate(types_file.voucher_type):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", t.code):
            raise ConfigError("%s: voucher_type[%d].code: must be 1-32 letters, digits, '-' or '_'"
                              % (types_path, i))
        if t.code in types:
            raise ConfigError("%s: voucher_type[%d].code: duplicate code %r" % (types_path, i, t.code))
        types[t.code] = t
    plans = _load_loyalty(main.loyalty, "loyalty" in raw, types, types_path)
    cfg = Config(path, base, main, types, plans)
    _check_cross(cfg)
    return cfg


def _load_loyalty(path: str, explicit: bool, types: dict, types_path: str) -> tuple:
    """The loyalty plans (C{loyalty.toml}); the default file may be absent (no plans),
    a file named in C{ivoms.toml} must exist.  Plan ids that voucher types name must exist."""
    from gateway.config_loyalty import load_plans
    if not explicit and not os.path.exists(path):
        plans = ()
    else:
        plans = load_plans(path, read_toml(path), types)
    ids = {p.id for p in plans}
    for i, t in enumerate(types.values()):
        for plan_id, weight in t.loyalty.items():
            if plan_id not in ids:
                raise ConfigError("%s: voucher_type[%d].loyalty.%s: no such loyalty plan in %s "
                                  "(configured: %s)" % (types_path, i, plan_id, path,
                                                        ", ".join(sorted(ids)) or "none"))
            if weight < 0:
                raise ConfigError("%s: voucher_type[%d].loyalty.%s: must not be negative"
                                  % (types_path, i, plan_id))
    return plans


def _check_cross(cfg: Config) -> None:
    b = cfg.main.billing
    timeout = {"diameter": b.diameter.request_timeout, "cai": b.cai.command_timeout,
               "ucip": b.ucip.request_timeout}.get(b.connector)
    if timeout is not None and timeout >= cfg.main.activation.billing_timeout:
        raise ConfigError("%s: billing.%s: its request timeout (%.1f s) must be below "
                          "activation.billing_timeout (%.1f s)"
                          % (cfg.path, b.connector, timeout, cfg.main.activation.billing_timeout))
    if b.connector == "diameter":
        from billing.diameter.config import from_mapping
        try:
            from_mapping(b.diameter)
        except ValueError as e:
            raise ConfigError("%s: billing.diameter: %s" % (cfg.path, e))
    if b.connector == "cai":
        from billing.cai.answers import CaiLookupAnswer
        c = b.cai
        try:
            CaiLookupAnswer(c.lookup_status_field, tuple(c.lookup_credited_values),
                            tuple(c.lookup_refused_values), c.lookup_code_field,
                            c.lookup_status_required, c.balance_field, c.expiry_field)
        except ValueError as e:
            raise ConfigError("%s: billing.cai.%s" % (cfg.path, e))
    if b.connector == "ucip":
        from billing.ucip.config import from_table
        try:
            from_table(b.ucip)
        except ValueError as e:
            raise ConfigError("%s: billing.ucip.%s" % (cfg.path, e))
    if cfg.main.ivr.fetch_timeout <= cfg.main.activation.billing_timeout:
        raise ConfigError("%s: ivr.fetch_timeout: must be longer than activation.billing_timeout "
                          "(%.1f s) so the platform waits for the result"
                          % (cfg.path, cfg.main.activation.billing_timeout))
    m = cfg.main.msisdn
    for n in m.lengths:
        if not len(m.country_code) < n <= 15:
            raise ConfigError("%s: msisdn.lengths: %d is not a valid E.164 length for country code %s"
                              % (cfg.path, n, m.country_code))
