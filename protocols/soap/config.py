"""Typed settings of the SOAP channel: the C{[soap]} table of C{conf/ivoms.toml}.

Frozen dataclasses built by L{core.settings.build}; every field has the
default the shipped example config shows.  L{SoapSettings} is the root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.settings import positive, setting

from protocols.common.settings_checks import networks

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,48}")


def _client_name(v):
    return None if _NAME.fullmatch(v) else "must be 1-48 letters, digits, '_', '.', '@' or '-'"


def _public_url(v):
    if v and not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", v):
        return "must be empty or an absolute http(s) URL such as 'https://ivoms.example/soap'"
    return None


@dataclass(frozen=True)
class SoapClient:
    """One SOAP client account (a partner system or a shop's terminal server).

    Exactly one of C{password} and C{password_hash} is set.

    @ivar name: the account name; sent as the HTTP Basic user or the
        UsernameToken C{Username}; recorded as the actor of its audit rows
        and as the source of its transactions.
    @ivar password: the shared secret in plain text.  Needed for
        WS-Security C{PasswordDigest}, which is computed from it.
    @ivar password_hash: an Argon2id hash (C{ivoms} users use the same
        scheme); accepts HTTP Basic and C{PasswordText} only.
    @ivar networks: client addresses the account may call from (empty: any).
    @ivar query_all: C{GetTransactionStatus} may read any channel's
        transactions (customer-care systems); otherwise only the account's own.
    """

    name: str = setting(check=_client_name)
    password: str = ""
    password_hash: str = ""
    networks: list[str] = setting(factory=list, check=networks)
    query_all: bool = False

    def __post_init__(self):
        if bool(self.password) == bool(self.password_hash):
            raise ValueError("client %r: set exactly one of 'password' and 'password_hash'"
                             % (self.name,))
        if self.password_hash and not self.password_hash.startswith("$argon2"):
            raise ValueError("client %r: password_hash must be an Argon2 hash "
                             "('$argon2id$...')" % (self.name,))

    def __repr__(self) -> str:   # never show a secret
        return "SoapClient(name=%r)" % (self.name,)


@dataclass(frozen=True)
class SoapSettings:
    """The C{[soap]} table.

    @ivar enabled: mount C{/soap} on the HTTP listener.
    @ivar public_url: the service address written into the WSDL; empty to
        derive it from each C{?wsdl} request (scheme, C{Host}, path).
    @ivar max_request_bytes: largest request body accepted (413 above).
    @ivar timestamp_skew_seconds: how far a UsernameToken C{Created} may be
        from this node's clock, either way.
    @ivar nonce_cache_size: UsernameToken nonces remembered (for the skew
        window) against replay; when full, new digest requests are refused.
    @ivar clients: the client accounts.
    """

    enabled: bool = True
    public_url: str = setting("", check=_public_url)
    realm: str = "iVOMS SOAP"
    max_request_bytes: int = setting(65536, check=positive)
    timestamp_skew_seconds: int = setting(300, check=positive)
    nonce_cache_size: int = setting(200_000, check=positive)
    clients: list[SoapClient] = setting(factory=list)

    def __post_init__(self):
        names = [c.name for c in self.clients]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError("clients: duplicate name %r" % (dup[0],))
