"""Operator users and roles, with Argon2id password hashes (DESIGN §10)."""
from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select

from core.schema import users

ROLES = ("administrator", "voucher_manager", "distributor", "housekeeping",
         "customer_care", "report_viewer")

_hasher = PasswordHasher()   # Argon2id, memory-hard, library defaults (RFC 9106 profile)


class UserError(ValueError):
    """A user request is invalid (unknown role, duplicate name...)."""


def hash_password(password: str) -> str:
    """An Argon2id hash of C{password} (salted, memory-hard)."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when C{password} matches C{stored_hash}; never raises for a mismatch."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password of 20 URL-safe characters."""
    return secrets.token_urlsafe(15)


def count_users(tx) -> int:
    return tx.execute(select(func.count()).select_from(users)).scalar()


_BY_NAME = select(users.c.id).where(users.c.name == bindparam("name"))


def add_user(tx, name: str, role: str, password_hash: str, now: int) -> int:
    """Create user C{name} with C{role}; return its id.

    @raise UserError: unknown role or the name is taken.
    """
    if role not in ROLES:
        raise UserError("unknown role %r (roles: %s)" % (role, ", ".join(ROLES)))
    if not name or len(name) > 64:
        raise UserError("a user name must be 1-64 characters")
    if tx.execute(_BY_NAME, {"name": name}).first() is not None:
        raise UserError("user %r already exists" % name)
    tx.insert(users, {"name": name, "role": role, "password_hash": password_hash,
                      "enabled": 1, "failed_logins": 0, "locked_until": 0, "created_at": now})
    return tx.execute(_BY_NAME, {"name": name}).scalar()
