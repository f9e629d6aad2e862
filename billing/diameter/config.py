"""Typed settings of the Diameter transport and connector (validated on construction).

C{PeerAddress} names one OCS peer; C{TransportSettings} holds the timers,
window and back-off of the peer pool.  Both raise C{ValueError} with a clear
message on a bad value; the gateway's config layer maps its TOML table
C{[billing.diameter]} onto them (see C{from_mapping}).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from billing.diameter.message.credit import CreditSettings, ValidityAvp
from billing.diameter.message.messages import LocalIdentity

#: IANA Private Enterprise Number reserved for documentation (RFC 5612);
#: the billing simulator's own AVPs use it.
DOC_VENDOR_ID = 32473


@dataclasses.dataclass(frozen=True)
class PeerAddress:
    """One Diameter peer: TCP C{host}/C{port}; lower C{priority} is preferred.

    With C{tls}, the connection is TLS/TCP (RFC 6733 section 13): the peer's
    certificate must chain to C{tls_ca} ("" = the system's CAs) and be issued
    to C{tls_server_name} ("" = C{host}); C{tls_key}/C{tls_cert} are the
    client certificate presented when the peer asks for one.

    Peers of equal priority share the load (least outstanding first);
    a higher priority number is only used while no better peer is open.
    """

    host: str
    port: int = 3868
    priority: int = 0
    name: str = ""
    tls: bool = False
    tls_ca: str = ""
    tls_server_name: str = ""
    tls_key: str = ""
    tls_cert: str = ""

    def __post_init__(self):
        if not self.host:
            raise ValueError("peer host is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"peer port {self.port} is not a TCP port")

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class TransportSettings:
    """Timers and limits of the peer pool (seconds unless stated).

    watchdog_interval: Tw of RFC 3539 (>= 6); a DWR is sent after Tw of
        silence, jittered by +/- watchdog_jitter.
    request_timeout: per request, from submission to answer.
    window: most outstanding requests per peer connection.
    queue_limit: most requests waiting for a window slot.
    cea_timeout: wait for the CEA after connecting before giving up.
    dpa_timeout: wait for the DPA on shutdown.
    drain_timeout: on shutdown, wait this long for outstanding requests.
    reconnect_*: ClientService exponential back-off.
    failover: retransmit outstanding requests (T flag) to another peer
        when their connection fails.
    """

    peers: tuple[PeerAddress, ...]
    watchdog_interval: float = 30.0
    watchdog_jitter: float = 2.0
    request_timeout: float = 5.0
    window: int = 256
    queue_limit: int = 10_000
    cea_timeout: float = 10.0
    dpa_timeout: float = 2.0
    drain_timeout: float = 5.0
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    reconnect_factor: float = 1.5
    failover: bool = True
    max_message_length: int = 64 * 1024

    def __post_init__(self):
        if not self.peers:
            raise ValueError("at least one Diameter peer is needed")
        if self.watchdog_interval < 6:
            raise ValueError("watchdog_interval (Tw) must be >= 6 s (RFC 3539)")
        if not 0 <= self.watchdog_jitter <= self.watchdog_interval - 4:
            raise ValueError("watchdog_jitter must be >= 0 and keep Tw at 4 s or more")
        for name in ("request_timeout", "cea_timeout", "dpa_timeout",
                     "reconnect_initial", "reconnect_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.drain_timeout < 0:
            raise ValueError("drain_timeout must be >= 0")
        if self.window < 1 or self.queue_limit < 0:
            raise ValueError("window must be >= 1 and queue_limit >= 0")
        if self.reconnect_factor < 1:
            raise ValueError("reconnect_factor must be >= 1")


#: The TLS keys of a peer (L{PeerAddress}), copied as given.
_PEER_TLS = ("tls", "tls_ca", "tls_server_name", "tls_key", "tls_cert")


def from_mapping(m: Mapping[str, Any] | Any) -> tuple[
        LocalIdentity, CreditSettings, TransportSettings, dict]:
    """Build the connector's settings from a mapping or attribute object.

    Keys (all of C{[billing.diameter]}): origin_host, origin_realm,
    host_ip_addresses, destination_realm, destination_host (""=none),
    service_context_id, requested_action, exponent (absent = currency's own),
    session_host (""=origin_host), validity_avps (list of {vendor_id, code,
    type, mandatory}), currencies ({"EUR": [978, 2]} overrides), peers
    (list of {host, port, priority, name, tls, tls_ca, tls_server_name,
    tls_key, tls_cert}) and the C{TransportSettings} names.

    @return: (local identity, credit settings, transport settings, extras) where extras holds C{session_host} and C{currencies}.

    @raise ValueError: a bad value.
    """
    get = (m.get if isinstance(m, Mapping)
           else lambda k, d=None: getattr(m, k, d))

    def item(obj, key, default=None):
        if isinstance(obj, Mapping):
            return obj.get(key, default)
        return getattr(obj, key, default)

    local = LocalIdentity(
        origin_host=get("origin_host", "ivoms.localdomain"),
        origin_realm=get("origin_realm", "localdomain"),
        host_ip_addresses=tuple(get("host_ip_addresses", None) or ("127.0.0.1",)),
        product_name=get("product_name", "iVOMS"),
        origin_state_id=get("origin_state_id", None) or None)
    validity = tuple(
        ValidityAvp(int(item(v, "vendor_id", 0)), int(item(v, "code")),
                    item(v, "type", "Unsigned32"),
                    bool(item(v, "mandatory", False)))
        for v in (get("validity_avps", None) or ()))
    exponent = get("exponent", None)
    credit = CreditSettings(
        destination_realm=get("destination_realm", "localdomain"),
        service_context_id=get("service_context_id", "32274@3gpp.org"),
        destination_host=get("destination_host", None) or None,
        requested_action=int(get("requested_action", 1)),
        validity_avps=validity,
        exponent=None if exponent in (None, "") else int(exponent))
    peers = tuple(PeerAddress(item(p, "host"), int(item(p, "port", 3868)),
                              int(item(p, "priority", 0)),
                              item(p, "name", "") or "",
                              **{k: item(p, k) for k in _PEER_TLS if item(p, k) is not None})
                  for p in (get("peers", None) or ()))
    names = {f.name for f in dataclasses.fields(TransportSettings)} - {"peers"}
    kw = {n: get(n) for n in names if get(n, None) is not None}
    transport = TransportSettings(peers=peers, **kw)
    extras = {"session_host": get("session_host", None) or None,
              "currencies": dict(get("currencies", None) or {})}
    return local, credit, transport, extras
