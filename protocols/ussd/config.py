"""Typed settings of the USSD channel: the C{[ussd]} table of C{conf/ivoms.toml}.

Frozen dataclasses built by L{core.settings.build}; every field has the
default the shipped example config shows. L{UssdSettings} is the root.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.results import ResultCode
from core.settings import non_negative, positive, setting

from protocols.common.peers import PeerSettings, check_peers, legacy_peer
from protocols.common.results import RESULT_FIELDS
from protocols.common.settings_checks import networks, template_tables, time_zone

#: Placeholders a text template may use (see L{protocols.ussd.replies}).
TEMPLATE_FIELDS = RESULT_FIELDS | {"beneficiary", "service_code", "hrn_digits"}

#: Text keys besides the result-code names of L{core.results.ResultCode}.
PROMPT_KEYS = frozenset({
    "MENU", "MENU_SELF_ONLY", "PROMPT_HRN", "PROMPT_BENEFICIARY", "PROMPT_HRN_OTHER",
    "HELP", "INVALID_CHOICE", "INVALID_HRN_INPUT", "INVALID_NUMBER_INPUT",
    "TOO_MANY_ATTEMPTS", "SESSION_EXPIRED", "UNKNOWN_SERVICE", "BAD_REQUEST",
    "OTHER_NUMBER_DISABLED", "SUCCESS_NO_EXPIRY", "SUCCESS_OTHER"})


def _service_codes(table):
    if not table:
        return "must name at least one service code, e.g. {\"123\" = \"\"}"
    for code, language in table.items():
        if not code or not all(ch.isdigit() for ch in code) or len(code) > 8:
            return "service code %r must be 1..8 digits (the 123 of *123#)" % (code,)
        if language and not language.isalpha():
            return "service code %r: language %r must be a code such as 'en'" % (
                code, language)
    return None


def _language(v):
    return None if v and v.isalpha() else "must be a language code such as 'en'"


def _at_least(low):
    def check(v):
        return None if v >= low else "must be at least %d" % (low,)
    return check


def _templates(languages):
    allowed = {c.name for c in ResultCode} | PROMPT_KEYS
    problem = template_tables(languages, allowed, TEMPLATE_FIELDS, non_empty=True)
    if problem:
        return problem
    from protocols.ussd.replies import oversize_templates
    return oversize_templates(languages)


@dataclass(frozen=True)
class DialogueSettings:
    """How a subscriber's dialogue behaves.

    @ivar timeout: seconds a dialogue may wait for the subscriber's next answer
        before it is forgotten (a later continue is answered "session expired").
    @ivar max_sessions: open dialogues held at once; a begin beyond it is answered
        with MAP error ussd-Busy (72).
    @ivar max_sessions_per_peer: open dialogues one peer may hold at once (a
        begin beyond it is answered ussd-Busy too); 0: see L{per_peer_limit}.
    @ivar max_attempts: tries at one prompt (menu choice, number, voucher) before
        the dialogue ends with TOO_MANY_ATTEMPTS.
    @ivar allow_other_number: offer "recharge another number" (menu option 2 and
        C{*123*HRN*MSISDN#}); the core's C{activation.allow_beneficiary} must
        allow it too.
    """

    timeout: float = setting(120.0, check=positive)
    max_sessions: int = setting(10000, check=positive)
    max_sessions_per_peer: int = setting(0, check=non_negative)
    max_attempts: int = setting(3, check=positive)
    allow_other_number: bool = True

    def per_peer_limit(self, peers: int) -> int:
        """Open dialogues one peer may hold: C{max_sessions_per_peer}, or by
        default the whole table for a single peer and half of it when there
        are several (so that no peer can starve the others)."""
        if self.max_sessions_per_peer:
            return min(self.max_sessions_per_peer, self.max_sessions)
        return self.max_sessions if peers <= 1 else max(1, self.max_sessions // 2)


@dataclass(frozen=True)
class TextSettings:
    """What the subscriber reads.

    @ivar default_language: language used when neither the gateway, the service
        code nor the USSD string's data coding names one that has texts.
    @ivar templates: language -> text key -> template, merged over the built-in
        English and Serbian texts (see L{protocols.ussd.replies.default_templates}).
    """

    default_language: str = setting("en", check=_language)
    timezone: str = setting("UTC", check=time_zone)
    date_format: str = "%Y-%m-%d"
    time_format: str = "%Y-%m-%d %H:%M"
    templates: dict[str, dict[str, str]] = setting(factory=dict, check=_templates)


@dataclass(frozen=True)
class UssdSettings:
    """C{[ussd]}: the USSD gateway bridge mounted at C{POST /ussd}.

    @ivar service_codes: the C{123} of C{*123#} -> language of its texts (C{""}:
        chosen as usual).
    @ivar max_body_bytes: largest request body accepted (413 above it).
    @ivar peers: the USSD gateways allowed to call (L{PeerSettings}); a
        request no peer claims is refused with 403.  None: every request is
        refused.
    @ivar allowed_addresses: the older form of one peer: gateway IP addresses
        or networks, standing for a peer named C{gateway}; only without C{peers}.
    """

    enabled: bool = True
    service_codes: dict[str, str] = setting(factory=lambda: {"123": ""},
                                            check=_service_codes)
    max_body_bytes: int = setting(8192, check=_at_least(256))
    peers: list[PeerSettings] = setting(factory=list, check=check_peers)
    allowed_addresses: list[str] = setting(factory=list, check=networks)
    dialogue: DialogueSettings = setting(factory=DialogueSettings)
    texts: TextSettings = setting(factory=TextSettings)
    max_dialogue_id_length: int = setting(64, check=positive)

    def __post_init__(self):
        if self.peers and self.allowed_addresses:
            raise ValueError("allowed_addresses: set either [[ussd.peers]] or "
                             "allowed_addresses (the older form of one peer), not both")

    def peer_list(self) -> list[PeerSettings]:
        """The configured peers (C{allowed_addresses} as one peer named C{gateway})."""
        return list(self.peers) or legacy_peer(self.allowed_addresses)

