"""Typed settings of the Prometheus endpoint: C{[metrics]} (see C{docs/operations.md})."""
from __future__ import annotations

from dataclasses import dataclass

from core.settings import endpoint, positive, setting
from core.tls import TlsListener


def endpoint_or_empty(v):
    """An endpoint string, or '' for no listener of its own."""
    return None if v == "" else endpoint(v)


@dataclass(frozen=True)
class MetricsSettings(TlsListener):
    """C{[metrics]}: where C{/metrics} is served and how often the store is read for it.

    By default the metrics have a listener of their own on loopback
    (C{listen}), apart from the channels' HTTP listener that partners reach;
    C{on_http = true} also mounts C{/metrics} on the HTTP listener, and
    C{listen = ""} drops the listener of its own.  C{tls_key}/C{tls_cert}
    (and C{tls_client_ca}) make the listener of its own HTTPS
    (L{core.tls.TlsListener}); on the HTTP listener C{[http]}'s apply.
    """

    enabled: bool = True
    listen: str = setting("tcp:9464:interface=127.0.0.1", check=endpoint_or_empty)   # "": no listener of its own
    on_http: bool = False
    cache_seconds: int = setting(30, check=positive)   # stock and fraud figures are read this often at most
