"""CSRF protection of the recharge form: a signed double-submit token (OWASP cheat sheet).

The browser gets a random token in a cookie (C{HttpOnly}, C{SameSite=Strict},
path C{/web}); the form carries C{HMAC-SHA256(secret, token)}.  A POST is
accepted only when its form field matches the HMAC of its cookie.  A page
on another site cannot read the cookie to compute the field, and a cookie
planted from a sibling domain is useless without the server's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

COOKIE = b"ivoms_csrf"
FIELD = b"csrf"
_TOKEN = re.compile(rb"^[A-Za-z0-9_-]{43}$")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class CsrfGuard:
    """Issues cookie tokens and checks form fields against them."""

    def __init__(self, secret: str = "", *, secure: bool = False, path: str = "/web"):
        """
        @param secret: the HMAC key; empty for a random key per process.
        @param secure: add the C{Secure} attribute to the cookie.
        """
        self.key = secret.encode("utf-8") if secret else os.urandom(32)
        self.secure = secure
        self.path = path

    def new_token(self) -> str:
        """A fresh random cookie token (256 bits)."""
        return _b64(os.urandom(32))

    def field_for(self, token: str) -> str:
        """The hidden form value for the cookie C{token}."""
        return _b64(hmac.new(self.key, b"csrf|" + token.encode("ascii"), hashlib.sha256).digest())

    def cookie_token(self, request) -> str | None:
        """The request's well-formed CSRF cookie, or None."""
        value = request.getCookie(COOKIE)
        if value and _TOKEN.match(value):
            return value.decode("ascii")
        return None

    def ensure_cookie(self, request) -> str:
        """The request's token, setting a new cookie when it has none."""
        token = self.cookie_token(request)
        if token is None:
            token = self.new_token()
            request.addCookie(COOKIE, token.encode("ascii"), path=self.path.encode(),
                              httpOnly=True, secure=self.secure, sameSite="strict")
        return token

    def check(self, request) -> bool:
        """True when the POSTed field matches the HMAC of the request's cookie."""
        token = self.cookie_token(request)
        sent = (request.args.get(FIELD) or [b""])[0]
        if token is None or not sent:
            return False
        return hmac.compare_digest(self.field_for(token).encode("ascii"), sent)
