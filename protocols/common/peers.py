"""The configured peers of a network platform's HTTP channel (USSD gateway, IVR platform).

Only the operator's own platforms may call C{/ussd} and C{/ivr}: a request
that no configured peer claims is refused before anything else is read, so
no voucher is ever looked up for it.  A peer (C{[[ussd.peers]]},
C{[[ivr.peers]]}) is identified by any combination the operator picks of

  - its addresses (C{networks}): the client address must be in one of them;
  - HTTP Basic credentials (C{user}, C{password_hash}, an Argon2id hash
    checked on the node's password pool, failures throttled per user and
    per address);
  - a TLS client certificate (C{cert_fingerprints}, SHA-256 of the DER
    certificate), read from the connection of a TLS listener that asks for
    client certificates.

Every condition a peer sets must hold.  The peer's name becomes the source
of its requests (C{"ussd:<name>"}, C{"ivr:<name>"}): the per-source
throttle, the per-peer dialogue limit and the transaction rows use it.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

from twisted.logger import Logger

from core.metrics import NULL_METRICS
from core.passwords import PasswordPool, PasswordPoolBusy
from core.settings import setting
from core.throttle import FailureThrottle

from protocols.common.secrets import SecretChecker
from protocols.common.settings_checks import networks

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,48}")
_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_FIELD = 256

#: reason -> what it means (logged, counted in C{ivoms_peer_refusals}, sent in the answer).
REASONS = {
    "unknown_peer": "no configured peer has this client address (and certificate)",
    "credentials_required": "the peer must send HTTP Basic credentials",
    "bad_credentials": "unknown user, wrong password or malformed Basic header",
    "throttled": "too many credential failures from this user or address; retry later",
    "busy": "too many password checks under way; retry shortly",
}


def _peer_name(v):
    return None if _NAME.fullmatch(v) else "must be 1-48 letters, digits, '_', '.', '@' or '-'"


def fingerprint(value: str) -> str | None:
    """The lower-case hex of a SHA-256 fingerprint written as C{"AB:CD:..."},
    C{"sha256:abcd..."} or plain hex; None when it is not one."""
    v = value.strip().lower()
    if v.startswith("sha256:"):
        v = v[7:]
    v = v.replace(":", "")
    return v if _HEX.fullmatch(v) else None


def _fingerprints(values):
    for v in values:
        if fingerprint(v) is None:
            return "%r is not a SHA-256 fingerprint (64 hex digits, colons allowed)" % (v,)
    return None


@dataclass(frozen=True)
class PeerSettings:
    """One peer of a channel (C{[[ussd.peers]]}, C{[[ivr.peers]]}).

    @ivar name: the peer's name; its requests' source is C{"<channel>:<name>"}.
    @ivar networks: client addresses or networks it calls from (empty: any,
        when another condition identifies it).
    @ivar user: the HTTP Basic user it sends (empty: no credentials asked).
    @ivar password_hash: the Argon2id hash of its password
        (L{core.users.hash_password}).
    @ivar cert_fingerprints: SHA-256 fingerprints of the TLS client
        certificates it presents (empty: none asked).
    """

    name: str = setting(check=_peer_name)
    networks: list[str] = setting(factory=list, check=networks)
    user: str = ""
    password_hash: str = ""
    cert_fingerprints: list[str] = setting(factory=list, check=_fingerprints)

    def __post_init__(self):
        if not (self.networks or self.user or self.cert_fingerprints):
            raise ValueError("peer %r: set at least one of 'networks', 'user' and "
                             "'cert_fingerprints' (a peer that anyone matches is not a peer)"
                             % (self.name,))
        if bool(self.user) != bool(self.password_hash):
            raise ValueError("peer %r: 'user' and 'password_hash' go together" % (self.name,))
        if self.password_hash and not self.password_hash.startswith("$argon2"):
            raise ValueError("peer %r: password_hash must be an Argon2 hash ('$argon2id$...')"
                             % (self.name,))

    def __repr__(self) -> str:    # never show the hash
        return "PeerSettings(name=%r)" % (self.name,)


def check_peers(peers) -> str | None:
    """Problem with a channel's peer list (duplicate names or users), or None."""
    for attr in ("name", "user"):
        seen = [getattr(p, attr) for p in peers if getattr(p, attr)]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            return "two peers have the %s %r" % (attr, dup[0])
    return None


def basic_credentials(value: bytes | None):
    """C{(user, password)} from an C{Authorization: Basic} header value, or
    None when there is no Basic header.

    @raise ValueError: the header is a malformed Basic one.
    """
    if not value:
        return None
    scheme, _, rest = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed Basic credentials")
    name, sep, password = decoded.partition(":")
    if not sep or len(name) > _MAX_FIELD or len(password) > _MAX_FIELD:
        raise ValueError("malformed Basic credentials")
    return name, password


def peer_certificate_fingerprint(request) -> str | None:
    """SHA-256 hex of the TLS client certificate on C{request}'s connection, or None
    (plain TCP, or no certificate presented)."""
    get = getattr(getattr(request, "transport", None), "getPeerCertificate", None)
    if get is None:
        return None
    try:
        cert = get()
    except Exception:  # noqa: BLE001 - no TLS session (yet): no certificate
        return None
    if cert is None:
        return None
    if hasattr(cert, "digest"):                # pyOpenSSL's X509, as Twisted hands it over
        return fingerprint(cert.digest("sha256").decode("ascii"))
    from cryptography.hazmat.primitives import hashes
    return cert.fingerprint(hashes.SHA256()).hex()    # a cryptography certificate


class PeerRefused(Exception):
    """A request no configured peer claims; C{reason} is a key of L{REASONS}."""

    def __init__(self, reason: str):
        assert reason in REASONS, reason
        super().__init__(reason)
        self.reason = reason

    @property
    def challenge(self) -> bool:
        """Whether the answer should carry C{WWW-Authenticate} (credentials would help)."""
        return self.reason in ("credentials_required", "bad_credentials")


class PeerGate:
    """Resolves each request of a channel to one of its configured peers, or refuses it.

    @ivar refused: reason -> requests refused for it (this node's, since start).
    """

    log = Logger()

    def __init__(self, channel: str, peers, *, clock, passwords=None, throttle=None,
                 metrics=None, log_every: float = 60.0):
        """
        @param channel: C{"ussd"} or C{"ivr"}: the prefix of the sources.
        @param peers: L{PeerSettings}; none: every request is refused.
        @param clock: an C{IReactorTime}.
        @param passwords: an L{core.interfaces.IPasswordChecker} (the node's
            pool); by default a pool of this gate's own.
        @param throttle: an L{core.interfaces.IAuthThrottle}; by default 10
            failures per user and 30 per address a minute.
        @param metrics: an L{core.metrics.IMetrics} told of every refusal.
        @param log_every: seconds between two log lines for the same address
            and reason (a flood is logged, not written out request by request).
        """
        self.channel = channel
        self.peers = tuple(peers)
        self._networks = {p.name: [ipaddress.ip_network(n, strict=False) for n in p.networks]
                          for p in self.peers}
        self._prints = {p.name: frozenset(fingerprint(f) for f in p.cert_fingerprints)
                        for p in self.peers}
        self.clock = clock
        self.passwords = passwords
        self.secrets = None
        if any(p.user for p in self.peers):
            if passwords is None:
                self.passwords = PasswordPool(clock)
            self.secrets = SecretChecker(self.passwords.verify)
        self.throttle = throttle if throttle is not None else FailureThrottle(clock)
        self.metrics = metrics if metrics is not None else NULL_METRICS
        self.log_every = log_every
        self.refused: dict[str, int] = {}
        self._logged: dict = {}
        if not self.peers:
            self.log.warn("{channel}: no peers configured; every request is refused",
                          channel=channel)

    def source(self, peer: PeerSettings) -> str:
        """The source of C{peer}'s requests (C{"ussd:<name>"})."""
        return "%s:%s" % (self.channel, peer.name)

    def identify(self, request):
        """The peer that sent C{request}.

        @return: its L{PeerSettings} at once, or a Deferred firing with it
            when a password must be checked.
        @raise PeerRefused: (or the Deferred fails with it) no peer claims
            the request.
        """
        host = getattr(request.getClientAddress(), "host", None)
        try:
            return self._identify(request, host)
        except PeerRefused as e:
            self._refused(e, host)
            raise

    def _identify(self, request, host):
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            address = None
        cert = peer_certificate_fingerprint(request) if any(self._prints.values()) else None
        candidates = [p for p in self.peers if self._matches(p, address, cert)]
        if not candidates:
            raise PeerRefused("unknown_peer")
        try:
            creds = basic_credentials(request.getHeader(b"authorization"))
        except ValueError:
            creds = None
            if any(p.user for p in candidates):
                raise PeerRefused("bad_credentials")
        if creds is None:
            for p in candidates:
                if not p.user:
                    return p
            raise PeerRefused("credentials_required")
        user, password = creds
        if not self.throttle.allowed(user, host):
            raise PeerRefused("throttled")
        peer = next((p for p in candidates if p.user == user), None)
        if peer is None:
            anonymous = next((p for p in candidates if not p.user), None)
            if anonymous is not None:      # its address (certificate) is enough
                return anonymous
            self.throttle.failed(None, host)
            raise PeerRefused("bad_credentials")
        d = self.secrets.check(peer.user, peer.password_hash, password)
        d.addCallbacks(self._checked, self._check_failed, callbackArgs=(peer, host),
                       errbackArgs=(host,))
        return d

    def _checked(self, ok, peer, host):
        if ok:
            self.throttle.succeeded(peer.user, host)
            return peer
        if self.throttle.failed(peer.user, host):
            self.log.warn("{channel} peer credentials throttled for user {user} or address "
                          "{address}: too many failures", channel=self.channel,
                          user=peer.user, address=host)
        e = PeerRefused("bad_credentials")
        self._refused(e, host)
        raise e

    def _check_failed(self, failure, host):
        failure.trap(PasswordPoolBusy)
        e = PeerRefused("busy")
        self._refused(e, host)
        raise e

    def _matches(self, peer, address, cert) -> bool:
        nets = self._networks[peer.name]
        if nets and (address is None or not any(address in n for n in nets)):
            return False
        prints = self._prints[peer.name]
        return not prints or cert in prints

    def _refused(self, e: PeerRefused, host) -> None:
        self.refused[e.reason] = self.refused.get(e.reason, 0) + 1
        self.metrics.peer_refused(self.channel, e.reason)
        now = self.clock.seconds()
        key = (host, e.reason)
        if self._logged.get(key, -self.log_every) + self.log_every > now:
            return
        if len(self._logged) >= 10_000:
            self._logged.clear()
        self._logged[key] = now
        self.log.warn("{channel} request from {address} refused: {reason} ({what}); "
                      "{count} refused for this reason so far", channel=self.channel,
                      address=host or "-", reason=e.reason, what=REASONS[e.reason],
                      count=self.refused[e.reason])


def legacy_peer(allowed_addresses) -> list[PeerSettings]:
    """The peer an old C{allowed_addresses} list stands for (named C{"gateway"}), or none."""
    if not allowed_addresses:
        return []
    return [PeerSettings(name="gateway", networks=list(allowed_addresses))]
