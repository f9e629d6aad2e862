"""Typed settings of the administrator GUI: the C{[admin]} table of C{ivoms.toml}."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import endpoint, non_negative, one_of, positive, setting


@dataclass(frozen=True)
class AdminSettings:
    """C{[admin]}: the GUI's own listener, sessions, login lockout, TLS and export.

    @ivar listen: endpoint string of the GUI listener (plain TCP; TLS is
        added when C{tls_key} and C{tls_cert} are set).
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
    tls_key: str = setting("", path=True)
    tls_cert: str = setting("", path=True)
    export_state: str = setting("available", check=one_of("available", "generated"))
    export_dir: str = setting("var/exports", path=True)
    max_export_count: int = setting(100_000, check=positive)
    near_expiry_days: int = setting(30, check=non_negative)
    max_generation_jobs: int = setting(2, check=positive)
    dashboard_cache_seconds: int = setting(10, check=non_negative)

    def __post_init__(self):
        if bool(self.tls_key) != bool(self.tls_cert):
            raise ValueError("tls_key and tls_cert must be given together")

    @property
    def tls(self) -> bool:
        """True when the GUI listens with TLS (cookies are then Secure)."""
        return bool(self.tls_key and self.tls_cert)

    def endpoint_string(self) -> str:
        """The listener as a Twisted endpoint string, C{ssl:} when TLS is set."""
        if not self.tls:
            return self.listen
        kind, _, rest = self.listen.partition(":")
        if kind != "tcp":
            return self.listen
        return "ssl:%s:privateKey=%s:certKey=%s" % (rest, _esc(self.tls_key), _esc(self.tls_cert))


def _esc(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")
