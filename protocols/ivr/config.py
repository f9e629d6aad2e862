"""Typed settings of the IVR channel: the C{[ivr]} table of C{conf/ivoms.toml}.

Frozen dataclasses built by L{core.settings.build}; every field has the
default the shipped example config shows.  L{IvrSettings} is the root.
HRN lengths are not set here: they come from the configured voucher types.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass

from core.settings import non_negative, one_of, positive, setting

from protocols.common.peers import PeerSettings, check_peers
from protocols.common.settings_checks import time_zone
from protocols.ivr.texts import ENGLISH, FIELDS, KEYS

TRANSFER_TYPES = ("blind", "bridge", "consultation")

#: Names the documents already use for their own variables.
RESERVED_NAMES = frozenset({"hrn", "confirm", "lang", "attempt", "callref", "care_call"})

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
_EXPR = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*\Z")
_LANG_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*\Z")
_XML_LANG = re.compile(r"([A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*)?\Z")


def _lang_code(v):
    return None if _LANG_CODE.match(v) else "must be a language code such as 'en' or 'sr-Latn'"


def _xml_lang(v):
    return None if _XML_LANG.match(v) else "must be a BCP 47 tag such as 'en-US' (or empty)"


def _menu_key(v):
    return None if v == "" or re.fullmatch(r"[0-9]", v) else "must be one digit, or empty"


def _identifier(v):
    if not _IDENT.match(v):
        return "must be an ECMAScript identifier (letters, digits, '_'; not starting with a digit)"
    if v in RESERVED_NAMES:
        return "%r is used by the documents themselves; choose another name" % (v,)
    return None


def _session_expr(v, *, optional=False):
    if optional and v == "":
        return None
    if not _EXPR.match(v):
        return "must be a dotted variable name such as 'session.connection.remote.uri'"
    return None


def _dest(v):
    if v == "" or re.fullmatch(r"(tel|sip|sips):[^\s<>\"]+", v):
        return None
    return "must be empty or a tel:/sip: URI such as 'tel:+381111234567'"


def _url(v):
    if v == "" or re.fullmatch(r"(https?://|/)[^\s<>\"]*", v):
        return None
    return "must be empty, an absolute http(s) URL or a path starting with '/'"


def _base_url(v):
    problem = _url(v)
    if problem is None and v and not v.endswith("/"):
        return "must end with '/'"
    return problem


def _status(v):
    return None if v == 200 or 400 <= v <= 599 else "must be 200, or an HTTP error status 400-599"


def _template_problem(text):
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as e:
        return "bad template %r: %s" % (text, e)
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if name not in FIELDS or spec or conv:
            return "unknown field {%s} in %r (allowed: %s)" % (name, text, ", ".join(sorted(FIELDS)))
    return None


@dataclass(frozen=True)
class LanguageSettings:
    """One language the IVR speaks (C{[[ivr.languages]]}).

    @ivar code: the language's code in URLs and in the C{lang} parameter.
    @ivar xml_lang: the documents' C{xml:lang} (TTS voice); empty: C{code}.
    @ivar dtmf: the menu key choosing it; empty: its position (1, 2, ...).
    @ivar prompts: prompt key -> text; English keys default to the built-in
        texts, any other language must give every key.
    @ivar audio: prompt key -> URL of a recording played instead of the text
        (the text stays as the fallback spoken if the fetch fails).
    @ivar currency_names: ISO 4217 code -> spoken name ("EUR" -> "euros").
    @ivar digits_say_as: SSML say-as C{interpret-as} for reading the HRN back.
    @ivar date_format, time_format: C{strftime} formats of dates and times.
    @ivar date_say_as: wrap dates in C{<say-as interpret-as="date" format="ymd">}
        (needs a year-month-day C{date_format}).
    """

    code: str = setting(check=_lang_code)
    name: str = ""
    xml_lang: str = setting("", check=_xml_lang)
    dtmf: str = setting("", check=_menu_key)
    prompts: dict[str, str] = setting(factory=dict)
    audio: dict[str, str] = setting(factory=dict)
    currency_names: dict[str, str] = setting(factory=dict)
    digits_say_as: str = setting("digits", check=lambda v: None if re.fullmatch(r"[A-Za-z][\w.-]*", v)
                                 else "must be a say-as interpret-as value such as 'digits'")
    date_format: str = "%Y-%m-%d"
    time_format: str = "%H:%M"
    date_say_as: bool = True

    def __post_init__(self):
        unknown = sorted((set(self.prompts) | set(self.audio)) - KEYS)
        if unknown:
            raise ValueError("language %r: unknown prompt key %r (keys: %s)"
                             % (self.code, unknown[0], ", ".join(sorted(KEYS))))
        if not self.code.startswith("en"):
            missing = sorted(KEYS - set(self.prompts))
            if missing:
                raise ValueError("language %r: prompts must give every key; missing: %s"
                                 % (self.code, ", ".join(missing)))
        for key, text in self.prompts.items():
            problem = _template_problem(text)
            if problem:
                raise ValueError("language %r: prompts.%s: %s" % (self.code, key, problem))
        for key, url in self.audio.items():
            problem = _url(url)
            if problem or not url:
                raise ValueError("language %r: audio.%s: %s" % (self.code, key, problem or "empty URL"))

    @property
    def tag(self) -> str:
        """The C{xml:lang} value of this language's documents."""
        return self.xml_lang or self.code

    def text(self, key: str) -> str:
        """The template of prompt C{key} in this language."""
        return self.prompts.get(key, ENGLISH[key])


@dataclass(frozen=True)
class IvrSettings:
    """The C{[ivr]} table: the VoiceXML channel served under C{/ivr} on the HTTP listener.

    @ivar peers: the IVR platforms allowed to fetch the documents and post
        activations (L{protocols.common.peers.PeerSettings}); a request no
        peer claims is refused with 403.  None: every request is refused.
    """

    enabled: bool = True
    languages: list[LanguageSettings] = setting(
        factory=lambda: [LanguageSettings(code="en", name="English", xml_lang="en-US")])
    default_language: str = ""
    ani_parameter: str = setting("msisdn", check=_identifier)
    ani_expr: str = setting("session.connection.remote.uri", check=_session_expr)
    call_ref_expr: str = setting("", check=lambda v: _session_expr(v, optional=True))
    max_noinput: int = setting(3, check=positive)
    max_nomatch: int = setting(3, check=positive)
    max_attempts: int = setting(3, check=positive)
    noinput_timeout: float = setting(7.0, check=positive)
    interdigit_timeout: float = setting(3.0, check=positive)
    fetch_timeout: float = setting(20.0, check=positive)
    wait_audio: str = setting("", check=_url)
    digit_group: int = setting(4, check=lambda v: None if 1 <= v <= 10 else "must be 1-10")
    care_number: str = setting("", check=_dest)
    care_transfer: str = setting("blind", check=one_of(*TRANSFER_TYPES))
    care_connect_timeout: float = setting(30.0, check=positive)
    care_max_time: float = setting(0.0, check=non_negative)
    timezone: str = setting("UTC", check=time_zone)
    base_url: str = setting("", check=_base_url)
    max_body_bytes: int = setting(4096, check=lambda v: None if v >= 256 else "must be >= 256")
    max_param_chars: int = setting(256, check=lambda v: None if v >= 32 else "must be >= 32")
    bad_request_status: int = setting(200, check=_status)
    peers: list[PeerSettings] = setting(factory=list, check=check_peers)

    def __post_init__(self):
        if not self.languages:
            raise ValueError("languages: at least one language is needed")
        codes = [lang.code for lang in self.languages]
        if len(codes) != len(set(codes)):
            raise ValueError("languages: duplicate code")
        keys = self.menu_keys()
        if len(set(keys.values())) != len(keys):
            raise ValueError("languages: two languages share a menu key (dtmf)")
        if len(self.languages) > 10:
            raise ValueError("languages: at most 10 (one menu key each)")
        if self.default_language and self.default_language not in codes:
            raise ValueError("default_language %r is not one of the languages (%s)"
                             % (self.default_language, ", ".join(codes)))

    def menu_keys(self) -> dict[str, str]:
        """Language code -> the DTMF key choosing it in the language menu."""
        return {lang.code: lang.dtmf or str((i + 1) % 10) for i, lang in enumerate(self.languages)}

    def language(self, code: str | None) -> LanguageSettings:
        """The language C{code}, or the default one when C{code} is not configured."""
        for lang in self.languages:
            if lang.code == code:
                return lang
        return self.default

    @property
    def default(self) -> LanguageSettings:
        """The default language (C{default_language}, or the first)."""
        for lang in self.languages:
            if lang.code == self.default_language:
                return lang
        return self.languages[0]
