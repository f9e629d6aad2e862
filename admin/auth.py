"""Sessions, CSRF tokens, login with lockout, and the role checks of the GUI (DESIGN §10).

Sessions are kept in an L{core.interfaces.ISessionStore}: the node's
memory, or the database every node of a cluster shares, so that a user
logged in on one node keeps the session on any other (docs/cluster.md).
The session cookie is HttpOnly, SameSite=Strict, and Secure (with the
C{__Host-} prefix) under TLS.  Before login the cookie holds only a random
nonce and the login form a signed, expiring token bound to it
(L{LoginForms}): anonymous visitors take no session slot.  Every other
form carries the session's CSRF token;
every POST without it is refused.  A user's role and enabled flag are read
from the store on every request, so a change takes effect at once.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from twisted.internet import defer

from core.shared_state import MemorySessions, SessionRecord
from core.users import UserRow, hash_password  # noqa: F401 (UserRow: the pages' type)
from core.users import user_by_id, user_by_name  # noqa: F401 (the login page and role checks)

#: What each role may do.  The administrator is also the supervisor: only it
#: may lift a subscriber's fraud bar or reveal an HRN.
PERMISSIONS = {
    "generation": frozenset({"administrator", "voucher_manager"}),
    "batches": frozenset({"administrator", "voucher_manager", "distributor", "housekeeping"}),
    "distribution": frozenset({"administrator", "distributor"}),
    "housekeeping": frozenset({"administrator", "housekeeping"}),
    "reveal": frozenset({"administrator"}),
    "care": frozenset({"administrator", "customer_care"}),
    "unbar": frozenset({"administrator"}),
    "reports": frozenset({"administrator", "report_viewer"}),
    "users": frozenset({"administrator"}),
    "audit": frozenset({"administrator"}),
}

#: The navigation bar: (permission, path, label), shown only to roles holding it.
NAV = (
    ("generation", "/generation", "Generation"),
    ("batches", "/batches", "Batches"),
    ("distribution", "/distribution", "Distribution"),
    ("housekeeping", "/vouchers", "Housekeeping"),
    ("care", "/care", "Customer care"),
    ("care", "/fraud", "Fraud"),
    ("reports", "/reports", "Reports"),
    ("users", "/users", "Users"),
    ("audit", "/audit", "Audit"),
)

# A real Argon2id hash, verified against when the user name is unknown, so a
# failed login takes the same time whether or not the user exists.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def allowed(role: str | None, permission: str) -> bool:
    """True when C{role} holds C{permission}."""
    return role in PERMISSIONS[permission]


@dataclass
class Session(SessionRecord):
    """One browser's session: anonymous (login form) or logged in."""

    def flash(self, text: str, kind: str = "ok") -> None:
        """Queue a message for the next page this session sees."""
        self.flashes.append((kind, text))

    def take_flashes(self) -> list:
        out, self.flashes = self.flashes, []
        return out

    def can(self, permission: str) -> bool:
        return allowed(self.role, permission)

    def mark(self) -> tuple:
        """What L{SessionStore.save_if_changed} compares: the role and the messages."""
        return self.role, tuple(self.flashes)


class SessionStore:
    """The GUI's sessions (kept in an L{ISessionStore}) and their cookies (clock injected).

    @ivar backend: the L{core.interfaces.ISessionStore} holding logged-in sessions.
    """

    MAX_ANONYMOUS = MemorySessions.MAX_SESSIONS

    def __init__(self, clock, *, lifetime: int, idle: int, tls: bool, backend=None):
        """
        @param backend: where sessions are kept; by default this node's memory.
        """
        self.clock = clock
        self.lifetime = lifetime
        self.idle = idle
        self.tls = tls
        self.cookie_name = b"__Host-ivoms_session" if tls else b"ivoms_session"
        self.backend = backend if backend is not None else MemorySessions(
            clock, lifetime=lifetime, idle=idle)

    def new(self, user=None) -> Session:
        """A fresh session with new random id and CSRF token (not stored yet: L{save}).

        @param user: the L{UserRow} logged in, or None.
        """
        now = self.clock.seconds()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        if user is not None:
            s.user_id, s.name, s.role = user.id, user.name, user.role
        return s

    def save(self, session: Session):
        """Store C{session} (new or changed). @return: a Deferred."""
        return self.backend.put(session)

    def save_if_changed(self, session: Session, mark: tuple):
        """Store C{session}'s role and messages when they differ from C{mark} (L{Session.mark}),
        unless the session was ended meanwhile.

        @return: a Deferred.
        """
        if session.mark() == mark:
            return defer.succeed(None)
        return self.backend.update(session)

    def get(self, sid: str | None):
        """@return: a Deferred firing with the live session C{sid} (touched), or None."""
        return self.backend.get(sid)

    def drop(self, sid: str):
        """End session C{sid}. @return: a Deferred."""
        return self.backend.drop(sid)

    def drop_user(self, user_id: int):
        """End every session of C{user_id} (disabled, or password reset). @return: a Deferred."""
        return self.backend.drop_user(user_id)

    # -- cookies -----------------------------------------------------------------
    def from_request(self, request):
        """@return: a Deferred firing with the request's live session, or None."""
        return self.get(self.cookie(request))

    def cookie(self, request) -> str | None:
        """The raw value of the session cookie, or None."""
        raw = request.getCookie(self.cookie_name)
        return raw.decode("ascii", "replace") if raw else None

    def set_raw_cookie(self, request, value: str) -> None:
        """Send the session cookie holding C{value} (a login nonce before login)."""
        request.addCookie(self.cookie_name, value.encode("ascii"), path=b"/",
                          httpOnly=True, secure=self.tls, sameSite="strict")

    def anonymous(self, request, forms: LoginForms) -> Session:
        """A transient (never stored) session for a login form, its cookie set.

        Its id is the browser's login nonce and its CSRF token a fresh
        signed token from C{forms}.
        """
        nonce = forms.nonce(self.cookie(request))
        self.set_raw_cookie(request, nonce)
        now = self.clock.seconds()
        return Session(nonce, forms.token(nonce), now, now)

    def set_cookie(self, request, session: Session) -> None:
        """Send C{session}'s cookie: HttpOnly, SameSite=Strict, Path=/, Secure under TLS."""
        self.set_raw_cookie(request, session.id)

    def clear_cookie(self, request) -> None:
        request.addCookie(self.cookie_name, b"", path=b"/", httpOnly=True, secure=self.tls,
                          sameSite="strict", max_age=b"0")


class LoginForms:
    """Stateless CSRF tokens for the login form: no server-side state before login.

    An anonymous browser gets a random nonce in its cookie; the form's token
    is C{ISSUED.MAC} with C{MAC = HMAC-SHA256(secret, nonce | ISSUED)}.  A
    POST is accepted when the MAC matches the cookie's nonce and the token is
    younger than C{max_age} seconds, so any number of anonymous C{GET
    /login} leaves the session table untouched.

    @ivar max_age: seconds a login form stays valid.
    """

    PREFIX = "n."
    _NONCE = re.compile(r"n\.[A-Za-z0-9_-]{16,64}")
    _ISSUED = re.compile(r"[0-9]{1,12}")

    def __init__(self, clock, *, max_age: int, secret: bytes | None = None):
        self.clock = clock
        self.max_age = max_age
        self._secret = secret or secrets.token_bytes(32)

    def nonce(self, cookie: str | None) -> str:
        """The login nonce carried by C{cookie}, or a fresh one."""
        if cookie and self._NONCE.fullmatch(cookie):
            return cookie
        return self.PREFIX + secrets.token_urlsafe(24)

    def _mac(self, nonce: str, issued: int) -> str:
        msg = ("%s|%d" % (nonce, issued)).encode("utf-8", "replace")
        digest = hmac.new(self._secret, msg, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def token(self, nonce: str) -> str:
        """A fresh signed token for a login form shown to the holder of C{nonce}."""
        issued = int(self.clock.seconds())
        return "%d.%s" % (issued, self._mac(nonce, issued))

    def check(self, nonce: str | None, token: str | None) -> bool:
        """True when C{token} was issued for C{nonce} by this node and has not expired."""
        if not nonce or not token or not self._NONCE.fullmatch(nonce):
            return False
        issued_text, _, mac = token.partition(".")
        if not self._ISSUED.fullmatch(issued_text):
            return False
        issued = int(issued_text)
        now = self.clock.seconds()
        if issued > now + 5 or now - issued > self.max_age:
            return False
        return hmac.compare_digest(self._mac(nonce, issued).encode(),
                                   mac.encode("utf-8", "replace"))


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """True when C{token} is C{session}'s CSRF token (constant-time compare)."""
    if session is None or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode("utf-8", "replace"))


# -- login --------------------------------------------------------------------------
