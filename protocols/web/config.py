"""Typed settings of the subscriber Web/WAP pages: the C{[web]} table of C{conf/ivoms.toml}.

Frozen dataclasses built by L{core.settings.build}; every field has the
default the shipped example config shows.  L{WebSettings} is the root.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import positive, setting

from protocols.common.results import RESULT_FIELDS
from protocols.common.settings_checks import networks, template_tables, time_zone

#: Placeholders a result text may use (see L{protocols.web.texts}).
TEMPLATE_FIELDS = RESULT_FIELDS


def _texts(languages):
    from protocols.web.texts import KEYS
    return template_tables(languages, KEYS, TEMPLATE_FIELDS)


def _secret(v):
    return None if v == "" or len(v) >= 32 else "must be empty or at least 32 characters"


@dataclass(frozen=True)
class RateLimitSettings:
    """Recharge attempts allowed per client address and per MSISDN.

    Token buckets: C{per_address} attempts, refilled evenly over
    C{window_seconds}; likewise C{per_msisdn}.

    @ivar max_tracked: addresses/MSISDNs remembered at once; the least
        recently seen is forgotten beyond that.
    """

    per_address: int = setting(30, check=positive)
    per_msisdn: int = setting(5, check=positive)
    window_seconds: int = setting(600, check=positive)
    max_tracked: int = setting(100_000, check=positive)


@dataclass(frozen=True)
class WebSettings:
    """The C{[web]} table.

    @ivar enabled: mount C{/web} (and C{/web/wap}) on the HTTP listener.
    @ivar languages: offered languages, the first is the default.
    @ivar texts: language -> key -> text, merged over the built-in ones.
    @ivar timezone: for expiry and unbar times on the pages.
    @ivar csrf_secret: HMAC key binding the form token to its cookie; empty
        for a random key per process (set one shared value on every node
        behind a load balancer; 32+ characters).
    @ivar cookie_secure: mark the CSRF cookie C{Secure} (when served over
        HTTPS, directly or behind a TLS proxy).
    @ivar trusted_proxies: peers whose C{X-Forwarded-For} names the client
        address used for rate limiting and recorded as the source.
    @ivar max_form_bytes: largest recharge form body accepted (413 above).
    """

    enabled: bool = True
    languages: list[str] = setting(factory=lambda: ["en", "sr"],
                                   check=lambda v: None if v else "must not be empty")
    texts: dict[str, dict[str, str]] = setting(factory=dict, check=_texts)
    timezone: str = setting("UTC", check=time_zone)
    date_format: str = "%Y-%m-%d"
    time_format: str = "%Y-%m-%d %H:%M"
    csrf_secret: str = setting("", check=_secret)
    cookie_secure: bool = False
    trusted_proxies: list[str] = setting(factory=list, check=networks)
    max_form_bytes: int = setting(2048, check=positive)
    rate_limit: RateLimitSettings = setting(factory=RateLimitSettings)

    def __repr__(self) -> str:   # never show the secret
        return "WebSettings(enabled=%r, languages=%r)" % (self.enabled, self.languages)
