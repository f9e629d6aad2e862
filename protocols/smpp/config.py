"""Typed settings of the SMS channel: the C{[smpp]} table of C{conf/ivoms.toml}.

Frozen dataclasses built by L{core.settings.build}; every field has the
default the shipped example config shows.  L{SmppSettings} is the root.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.results import ResultCode
from core.settings import endpoint, non_negative, one_of, positive, setting
from core.tls import TlsListener

from protocols.common.results import RESULT_FIELDS
from protocols.common.settings_checks import networks, template_tables, time_zone
from protocols.common.texts import RESULT_TEXTS

BIND_TYPES = ("transmitter", "receiver", "transceiver")
CLIENT_BIND_MODES = ("transceiver", "receiver+transmitter")

#: Placeholders a reply template may use (see L{protocols.smpp.replies}).
TEMPLATE_FIELDS = RESULT_FIELDS | {"keywords"}

#: Template keys besides the result-code names (L{core.results.ResultCode}).
HELP = "HELP"


def _bind_types(values):
    bad = [v for v in values if v not in BIND_TYPES]
    if bad or not values:
        return "must be a non-empty list of %s" % (", ".join(BIND_TYPES),)
    return None


def _c_string(max_len):
    def check(v):
        if len(v.encode("latin-1", "replace")) > max_len:
            return "at most %d characters" % (max_len,)
        return None
    return check


def _client_endpoint(v):
    if not isinstance(v, str) or ":" not in v:
        return "must be a client endpoint string such as 'tcp:host=10.0.0.5:port=2775'"
    return None


@dataclass(frozen=True)
class SessionSettings:
    """Timers and limits of every SMPP session, server or client mode.

    @ivar window: outgoing requests (MT messages, enquire_link) awaiting
        their response at once; more wait in a local queue.
    @ivar enquire_link_interval: seconds without any PDU received after
        which an enquire_link is sent.
    @ivar response_timeout: seconds to wait for a response; an enquire_link
        left unanswered this long closes the connection.
    @ivar bind_timeout: seconds a connection may stay unbound.
    @ivar unbind_timeout: seconds to wait for unbind_resp before closing.
    @ivar max_pdu_length: largest command_length accepted.
    @ivar max_queued: MT requests waiting for a window slot; more are dropped.
    """

    window: int = setting(10, check=positive)
    enquire_link_interval: float = setting(30.0, check=positive)
    response_timeout: float = setting(10.0, check=positive)
    bind_timeout: float = setting(10.0, check=positive)
    unbind_timeout: float = setting(5.0, check=positive)
    max_pdu_length: int = setting(16384, check=lambda v: None if v >= 64 else "must be >= 64")
    max_queued: int = setting(10000, check=positive)


@dataclass(frozen=True)
class AccountSettings:
    """An SMSC (or gateway) allowed to bind to the server-mode listener.

    @ivar throughput: messages per second accepted from all binds of this
        account together (0: unlimited); above it, ESME_RTHROTTLED.
    @ivar allowed_addresses: peer IP addresses or networks; empty: any.
    """

    system_id: str = setting(check=_c_string(15))
    password: str = setting(check=_c_string(8))
    bind_types: list[str] = setting(factory=lambda: list(BIND_TYPES), check=_bind_types)
    allowed_addresses: list[str] = setting(factory=list, check=networks)
    max_binds: int = setting(4, check=positive)
    throughput: float = setting(0.0, check=non_negative)


@dataclass(frozen=True)
class ServerSettings(TlsListener):
    """Server mode: the listener SMSCs bind to; SMPP over TLS with C{tls_key}/C{tls_cert}
    (and client certificates with C{tls_client_ca}, L{core.tls.TlsListener}).

    @ivar system_id: our system_id in bind responses.
    """

    TLS_ENDPOINT_FIELD = "endpoint"

    enabled: bool = False
    endpoint: str = setting("tcp:2775:interface=127.0.0.1", check=endpoint)
    system_id: str = setting("ivoms", check=_c_string(15))
    accounts: list[AccountSettings] = setting(factory=list)


@dataclass(frozen=True)
class SmscSettings:
    """ESME client mode: one SMSC iVOMS binds to.

    @ivar bind: C{"transceiver"}, or C{"receiver+transmitter"} (two binds).
    @ivar throughput: MT messages per second sent to this SMSC (0: unlimited).
    @ivar retry_initial, retry_max, retry_factor: reconnect back-off (seconds).
    """

    name: str = setting(check=lambda v: None if v else "must not be empty")
    system_id: str = setting(check=_c_string(15))
    endpoint: str = setting("tcp:host=127.0.0.1:port=2775", check=_client_endpoint)
    password: str = setting("", check=_c_string(8))
    system_type: str = setting("", check=_c_string(12))
    bind: str = setting("transceiver", check=one_of(*CLIENT_BIND_MODES))
    address_range: str = setting("", check=_c_string(40))
    throughput: float = setting(0.0, check=non_negative)
    retry_initial: float = setting(1.0, check=positive)
    retry_max: float = setting(60.0, check=positive)
    retry_factor: float = setting(2.0, check=lambda v: None if v >= 1 else "must be >= 1")


def _keywords(table):
    for word, language in table.items():
        if not word.strip() or any(ch.isdigit() for ch in word):
            return "keyword %r must be non-empty words without digits" % (word,)
        if not language:
            return "keyword %r needs a language" % (word,)
    return None


@dataclass(frozen=True)
class GrammarSettings:
    """What an MO text may say.

    @ivar keywords: keyword (case-insensitive, may hold spaces) -> language
        of the reply.
    @ivar bare_hrn: accept a message that is only the HRN.
    @ivar allow_beneficiary: accept C{<keyword> <hrn> <msisdn>} to recharge
        another number (the core's own switch must allow it too).
    @ivar hrn_lengths: digits an HRN may have, used to tell HRN from
        beneficiary; empty: the lengths of the configured voucher types.
    """

    keywords: dict[str, str] = setting(
        factory=lambda: {"RECHARGE": "en", "TOPUP": "en", "DOPUNA": "sr"}, check=_keywords)
    bare_hrn: bool = True
    allow_beneficiary: bool = False
    hrn_lengths: list[int] = setting(factory=list)


def _templates(languages):
    allowed = {c.name for c in ResultCode} | {HELP}
    return template_tables(languages, allowed, TEMPLATE_FIELDS, noun="template")


def default_templates() -> dict[str, dict[str, str]]:
    """The built-in reply texts (English and Serbian); config entries override them."""
    return {
        "en": {
            "SUCCESS": "Your account was credited with {amount} {currency}. "
                       "Valid until {expiry}. Ref {txn_id}.",
            **RESULT_TEXTS["en"],
            "HELP": "To recharge, send {keywords} followed by the voucher number, "
                    "e.g. RECHARGE 1234 5678 9012 34",
        },
        "sr": {
            "SUCCESS": "Vaš račun je dopunjen sa {amount} {currency}. "
                       "Važi do {expiry}. Ref {txn_id}.",
            **RESULT_TEXTS["sr"],
            "HELP": "Za dopunu pošaljite {keywords} i broj vaučera, npr. DOPUNA 1234 5678 9012 34",
        },
    }


@dataclass(frozen=True)
class RepliesSettings:
    """Reply texts per language and result code.

    @ivar templates: language -> template key (a result-code name or
        C{HELP}) -> text; merged over L{default_templates}.
    @ivar default_language: for a bare HRN and for keys missing in a language.
    @ivar timezone: IANA name the expiry and unbar times are shown in.
    """

    templates: dict[str, dict[str, str]] = setting(factory=dict, check=_templates)
    default_language: str = "en"
    timezone: str = setting("UTC", check=time_zone)
    date_format: str = "%Y-%m-%d"
    time_format: str = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class ChannelSettings:
    """MO handling shared by both modes.

    @ivar reassembly_timeout: seconds to wait for the missing parts of a
        concatenated MO before dropping the parts received.
    @ivar max_pending_parts: concatenated MOs being reassembled at once.
    @ivar max_in_flight: activations running at once; above it new MOs are
        refused with a temporary error (ESME_RTHROTTLED / ESME_RX_T_APPN).
    @ivar default_alphabet: what data_coding 0 means: gsm, latin-1 or ascii.
    @ivar reply_source_addr: source address of replies; empty: the MO's
        destination (the short code it was sent to).
    @ivar durable: acknowledge a recharge MO only once it is committed, and
        keep its reply due in the database until the SMSC confirmed it.
    @ivar reply_retry_seconds: how often replies still due are swept and sent
        (also the age a due reply must reach before the sweep takes it).
    @ivar reply_max_attempts: tries of a due reply before it is dropped.
    @ivar reply_expiry_seconds: a reply due for longer is dropped (logged and
        counted) instead of sent.
    """

    reassembly_timeout: float = setting(60.0, check=positive)
    max_pending_parts: int = setting(10000, check=positive)
    max_in_flight: int = setting(2000, check=positive)
    default_alphabet: str = setting("gsm", check=one_of("gsm", "latin-1", "ascii"))
    reply_source_addr: str = setting("", check=_c_string(20))
    reply_source_ton: int = setting(-1, check=lambda v: None if -1 <= v <= 6 else "must be -1..6")
    reply_source_npi: int = setting(-1, check=lambda v: None if -1 <= v <= 18 else "must be -1..18")
    durable: bool = True
    reply_retry_seconds: float = setting(5.0, check=positive)
    reply_max_attempts: int = setting(10, check=positive)
    reply_expiry_seconds: float = setting(3600.0, check=positive)


def _unique_names(smscs):
    names = [s.name for s in smscs]
    dup = {n for n in names if names.count(n) > 1}
    return "duplicate SMSC name %r" % (sorted(dup)[0],) if dup else None


@dataclass(frozen=True)
class SmppSettings:
    """The C{[smpp]} table: the SMS channel as a whole."""

    server: ServerSettings = setting(factory=ServerSettings)
    smsc: list[SmscSettings] = setting(factory=list, check=_unique_names)
    session: SessionSettings = setting(factory=SessionSettings)
    grammar: GrammarSettings = setting(factory=GrammarSettings)
    replies: RepliesSettings = setting(factory=RepliesSettings)
    channel: ChannelSettings = setting(factory=ChannelSettings)

    def __post_init__(self):
        if self.server.enabled and not self.server.accounts:
            raise ValueError("server.enabled needs at least one [[smpp.server.accounts]]")
        ids = [a.system_id for a in self.server.accounts]
        if len(ids) != len(set(ids)):
            raise ValueError("server.accounts: duplicate system_id")

    @property
    def enabled(self) -> bool:
        """True when the listener or at least one SMSC bind is configured."""
        return self.server.enabled or bool(self.smsc)
