"""Argon2 password checks of an HTTP channel's accounts, with verified passwords remembered.

An Argon2id verification costs tens of milliseconds; a peer or client that
authenticates every request would pay it each time.  L{SecretChecker} runs
the first check of a password on the node's password pool and remembers a
verified password as an HMAC under a per-process random key, so later
requests with it cost microseconds.  Only the last verified password of each
account is remembered, so the memory is bounded by the number of accounts.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from twisted.internet import defer


class SecretChecker:
    """Checks passwords against stored Argon2 hashes, remembering the verified ones."""

    def __init__(self, verify_hash):
        """
        @param verify_hash: C{(stored_hash, password) -> Deferred[bool]} (the
            node's L{core.passwords.PasswordPool} C{verify}).
        """
        self.verify_hash = verify_hash
        self._key = os.urandom(32)
        self._verified: dict[str, bytes] = {}

    def check(self, account: str, stored_hash: str, password: str) -> defer.Deferred:
        """Whether C{password} matches C{account}'s C{stored_hash}.

        @return: a Deferred firing with True or False, or failing as
            C{verify_hash} does (L{core.passwords.PasswordPoolBusy}).
        """
        mac = hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()
        known = self._verified.get(account)
        if known is not None and hmac.compare_digest(known, mac):
            return defer.succeed(True)
        d = defer.maybeDeferred(self.verify_hash, stored_hash, password)

        def verified(ok):
            if ok:
                self._verified[account] = mac
            return bool(ok)
        return d.addCallback(verified)
