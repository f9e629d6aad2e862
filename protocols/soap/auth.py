"""Who is calling: HTTP Basic and WS-Security UsernameToken checks against the client accounts.

UsernameToken follows the OASIS Web Services Security UsernameToken Profile
1.1 (§3.1): C{PasswordText} carries the secret; C{PasswordDigest} carries
C{Base64(SHA-1(nonce + created + password))} where C{nonce} is the decoded
C{Nonce} bytes and C{created} the C{wsu:Created} text as sent.  A token
with C{Created} must be within C{skew} seconds of our clock, and a nonce is
accepted once while it could still be fresh (§3.2 replay protection).  The
nonces are remembered in an L{INonceCache}: the node's memory, or the
database shared by every node of a cluster, where a nonce replayed to
another node is refused as well (docs/cluster.md).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import ipaddress

from twisted.internet import defer
from twisted.logger import Logger

from core.passwords import PasswordPool, PasswordPoolBusy
from core.shared_state import MemoryNonces
from core.shared_state import NonceCacheFull as NoRoomForNonces
from core.throttle import FailureThrottle
from protocols.common.peers import basic_credentials
from protocols.common.secrets import SecretChecker
from protocols.soap.errors import SoapFault

log = Logger()

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT = _PROFILE + "#PasswordText"
PASSWORD_DIGEST = _PROFILE + "#PasswordDigest"

_MAX_FIELD = 256


class AuthFailed(SoapFault):
    """Authentication failed; the client sees only "authentication failed"."""

    def __init__(self, reason: str, *, name: str | None = None, method: str = "-"):
        super().__init__("Client.Authentication", reason=reason)
        self.claimed = name
        self.method = method


class AuthThrottled(AuthFailed):
    """The account or the address failed too often: refused before any check, not audited."""

    def __init__(self, *, name: str | None = None, method: str = "-"):
        super().__init__("throttled", name=name, method=method)


class PasswordChecksBusy(SoapFault):
    def __init__(self):
        super().__init__("Server.Busy", "too many password checks under way; retry shortly",
                         reason="password pool full")


class NonceCacheFull(SoapFault):
    def __init__(self):
        super().__init__("Server.Busy", "too many recent UsernameTokens; retry shortly",
                         reason="nonce cache full")


class UsernameToken:
    """The fields of one C{wsse:UsernameToken}, as sent."""

    __slots__ = ("username", "password", "password_type", "nonce", "created")

    def __init__(self, username, password, password_type, nonce, created):
        self.username = username
        self.password = password
        self.password_type = password_type
        self.nonce = nonce          # decoded bytes or None
        self.created = created      # the text as sent, or None

    @property
    def method(self) -> str:
        return "wsse-digest" if self.password_type == PASSWORD_DIGEST else "wsse-text"


def parse_basic(value: bytes | None):
    """C{(name, password)} from an C{Authorization: Basic} header, or None if
    there is no Basic header.

    @raise AuthFailed: the header is malformed.
    """
    try:
        return basic_credentials(value)
    except ValueError:
        raise AuthFailed("malformed Basic credentials", method="basic")


def find_username_token(header_elements) -> UsernameToken | None:
    """The UsernameToken in the SOAP header children, or None if there is none.

    @param header_elements: the children of C{soap:Header} (lxml elements), or None.
    @raise AuthFailed: a C{wsse:Security} header is present but malformed.
    """
    for el in header_elements or ():
        if el.tag != "{%s}Security" % WSSE_NS:
            continue
        tok = el.find("{%s}UsernameToken" % WSSE_NS)
        if tok is None:
            raise AuthFailed("wsse:Security without a UsernameToken", method="wsse")
        return _token(tok)
    return None


def _text(el, default=None):
    if el is None:
        return default
    text = (el.text or "").strip()
    if len(text) > _MAX_FIELD:
        raise AuthFailed("oversized UsernameToken field", method="wsse")
    return text


def _token(tok) -> UsernameToken:
    name = _text(tok.find("{%s}Username" % WSSE_NS))
    pw_el = tok.find("{%s}Password" % WSSE_NS)
    if not name or pw_el is None:
        raise AuthFailed("UsernameToken without Username or Password", name=name, method="wsse")
    ptype = pw_el.get("Type") or PASSWORD_TEXT
    if ptype not in (PASSWORD_TEXT, PASSWORD_DIGEST):
        raise AuthFailed("unsupported password type", name=name, method="wsse")
    nonce_el = tok.find("{%s}Nonce" % WSSE_NS)
    nonce = None
    if nonce_el is not None:
        try:
            nonce = base64.b64decode(_text(nonce_el), validate=True)
        except binascii.Error:
            raise AuthFailed("nonce is not Base64", name=name, method="wsse")
        if not 8 <= len(nonce) <= 64:
            raise AuthFailed("nonce must be 8 to 64 bytes", name=name, method="wsse")
    created = _text(tok.find("{%s}Created" % WSU_NS)) or _text(tok.find("{%s}Created" % WSSE_NS))
    return UsernameToken(name, _text(pw_el, ""), ptype, nonce, created)


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """C{Base64(SHA-1(nonce + created + password))} (UsernameToken Profile §3.1)."""
    raw = hashlib.sha1(nonce + created.encode("utf-8") + password.encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def _parse_created(text: str) -> float | None:
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


class Authenticator:
    """Checks credentials against the configured L{SoapClient} accounts.

    Argon2 hashes are verified on the node's password pool (a bounded pool
    of its own: a verification costs tens of milliseconds and MiB of memory);
    a password once verified for an account is remembered
    (L{protocols.common.secrets.SecretChecker}), so later calls cost microseconds.  Failures are
    counted per account and per address (an L{IAuthThrottle}): past the
    limit, calls are refused with L{AuthThrottled} before any check.
    """

    def __init__(self, clients, *, clock, skew_seconds: int = 300,
                 nonce_cache_size: int = 200_000, verify_hash=None, passwords=None,
                 throttle=None, nonces=None):
        """
        @param clients: L{protocols.soap.config.SoapClient} accounts.
        @param clock: an C{IReactorTime}; C{Created} is checked against it.
        @param verify_hash: C{(hash, password) -> Deferred[bool]}; by default
            C{passwords.verify}.
        @param passwords: an L{IPasswordChecker} (the node's password pool);
            by default a pool of this authenticator's own.
        @param throttle: an L{IAuthThrottle}; by default 10 failures per
            account and 30 per address a minute.
        @param nonces: the L{INonceCache} of UsernameToken nonces; by default
            this node's memory, holding C{nonce_cache_size} of them.
        """
        self.clients = {c.name: c for c in clients}
        self._networks = {c.name: [ipaddress.ip_network(n, strict=False) for n in c.networks]
                          for c in clients}
        self.clock = clock
        self.skew = skew_seconds
        self.nonce_cache_size = nonce_cache_size
        self.nonces = nonces if nonces is not None else MemoryNonces(clock, nonce_cache_size)
        if verify_hash is None:
            self.passwords = passwords if passwords is not None else PasswordPool(clock)
            verify_hash = self.passwords.verify
        self.secrets = SecretChecker(verify_hash)
        self.throttle = throttle if throttle is not None else FailureThrottle(clock)

    # -- entry points -------------------------------------------------------
    def check_basic(self, name: str, password: str, address: str | None) -> defer.Deferred:
        """@return: a Deferred firing with the L{SoapClient}, or failing with
            L{AuthFailed} (L{AuthThrottled} when refused unchecked) or
            L{PasswordChecksBusy}."""
        return self._counted(name, address, "basic", lambda: self._check_secret(
            self._client(name, address, "basic"), password, "basic"))

    def check_token(self, token: UsernameToken, address: str | None) -> defer.Deferred:
        """@return: a Deferred firing with the L{SoapClient}, or failing with
            L{AuthFailed} (L{AuthThrottled} when refused unchecked),
            L{NonceCacheFull} or L{PasswordChecksBusy}."""
        return self._counted(token.username, address, token.method,
                             lambda: self._token(token, address))

    def _counted(self, name, address, method, check) -> defer.Deferred:
        """Run C{check} unless C{name} or C{address} is throttled; count its failure."""
        if not self.throttle.allowed(name, address):
            return defer.fail(AuthThrottled(name=name, method=method))
        d = defer.maybeDeferred(check)

        def ok(client):
            self.throttle.succeeded(name, address)
            return client

        def failed(f):
            if f.check(PasswordPoolBusy):
                raise PasswordChecksBusy()
            # a call from outside the account's networks counts against its address only
            outsider = f.check(AuthFailed) and f.value.reason.startswith("address ")
            if f.check(AuthFailed) and self.throttle.failed(None if outsider else name, address):
                log.warn("SOAP authentication throttled for account {name} or address "
                         "{address}: too many failures", name=(name or "-")[:48],
                         address=address)
            return f
        return d.addCallbacks(ok, failed)

    # -- helpers ------------------------------------------------------------
    def _token(self, token, address):
        method = token.method
        client = self._client(token.username, address, method)
        if token.created is not None or method == "wsse-digest":
            self._check_fresh(token, method)
        if method == "wsse-digest":
            if not client.password:
                raise AuthFailed("account has only a password hash; PasswordDigest needs "
                                 "the plain secret", name=client.name, method=method)
            expected = password_digest(token.nonce, token.created, client.password)
            if not hmac.compare_digest(expected.encode(), token.password.encode()):
                raise AuthFailed("wrong password digest", name=client.name, method=method)
            return self._remember_nonce(token).addCallback(lambda _: client)
        d = self._check_secret(client, token.password, method)
        if token.nonce is not None:
            d.addCallback(lambda c: self._remember_nonce(token).addCallback(lambda _: c))
        return d

    def _client(self, name, address, method):
        client = self.clients.get(name)
        if client is None:
            raise AuthFailed("unknown account", name=name, method=method)
        nets = self._networks[name]
        if nets:
            try:
                ip = ipaddress.ip_address(address or "")
            except ValueError:
                ip = None
            if ip is None or not any(ip in n for n in nets):
                raise AuthFailed("address %s not allowed for the account" % (address,),
                                 name=name, method=method)
        return client

    def _check_secret(self, client, password, method) -> defer.Deferred:
        if client.password:
            if hmac.compare_digest(client.password.encode("utf-8"), password.encode("utf-8")):
                return defer.succeed(client)
            return defer.fail(AuthFailed("wrong password", name=client.name, method=method))
        d = self.secrets.check(client.name, client.password_hash, password)

        def verified(ok):
            if not ok:
                raise AuthFailed("wrong password", name=client.name, method=method)
            return client
        return d.addCallback(verified)

    def _check_fresh(self, token, method):
        if token.created is None or token.nonce is None:
            raise AuthFailed("a digest needs Nonce and Created", name=token.username,
                             method=method)
        created = _parse_created(token.created)
        if created is None:
            raise AuthFailed("Created is not an ISO 8601 time", name=token.username,
                             method=method)
        if abs(self.clock.seconds() - created) > self.skew:
            raise AuthFailed("Created is outside the allowed clock skew", name=token.username,
                             method=method)

    def _remember_nonce(self, token) -> defer.Deferred:
        """Remember the token's nonce for twice the skew; fail when it was seen already."""
        key = hashlib.sha256(token.username.encode("utf-8") + b"\0" + token.nonce).digest()
        d = self.nonces.remember(key, self.clock.seconds() + 2 * self.skew)

        def seen(new):
            if not new:
                raise AuthFailed("nonce replayed", name=token.username, method=token.method)

        def full(f):
            f.trap(NoRoomForNonces)
            raise NonceCacheFull()
        return d.addCallbacks(seen, full)
