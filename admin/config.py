"""Typed settings of the administrator GUI: the C{[admin]} table of C{ivoms.toml}."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import endpoint, non_negative, one_of, positive, setting
from core.tls import TlsListener


@dataclass(frozen=True)
class AdminSettings(TlsListener):
    """C{[admin]}: the GUI's own listener, sessions, login lockout, TLS and export.

    @ivar listen: endpoint string of the GUI listener (plain TCP; TLS is
        added when C{tls_key} and C{tls_cert} are set, L{core.tls}).
    @ivar session_lifetime_seconds: a session ends this long after login.
    @ivar idle_timeout_seconds: ...or after this long without a request.
    @ivar lockout_threshold: consecutive failed logins that lock a user.
    @ivar lockout_seconds: how long a locked user stays locked.
    @ivar export_state: state exported vouchers move to (C{available}, or
        C{generated} to keep them unusable until enabled in housekeeping).
    @ivar export_dir: folder keeping each encrypted export file for re-download.
    @ivar max_export_count: most vouchers one export file may hold.
    @ivar near_expiry_days: the stock report's "near expiry" horizon.
    @ivar max_generation_jobs: generation jobs one node runs at once.
    @ivar dashboard_cache_seconds: the home page reads today's activations and
        the housekeeping runs at most once per this many seconds (0: on every view).
    """

    enabled: bool = True
    listen: str = setting("tcp:8081:interface=127.0.0.1", check=endpoint)
    session_lifetime_seconds: int = setting(8 * 3600, check=positive)
    idle_timeout_seconds: int = setting(1800, check=positive)
    lockout_threshold: int = setting(5, check=positive)
    lockout_seconds: int = setting(900, check=positive)
    export_state: str = setting("available", check=one_of("available", "generated"))
    export_dir: str = setting("var/exports", path=True)
    max_export_count: int = setting(100_000, check=positive)
    near_expiry_days: int = setting(30, check=non_negative)
    max_generation_jobs: int = setting(2, check=positive)
    dashboard_cache_seconds: int = setting(10, check=non_negative)
