"""Operator users and roles, with Argon2id password hashes (DESIGN §10).

The administration GUI reads and changes users only through the units of
work here: L{user_by_name} and L{user_by_id} (login and the role check of
every request), L{user_exists} and L{clear_failed_logins} (the login
lockout of L{core.lockout}), L{list_users} and L{change_user}.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, bindparam, func, select, update

from core.audit import audit
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


def user_exists(tx, name: str) -> bool:
    """Whether a user called C{name} exists."""
    return tx.execute(_BY_NAME, {"name": name}).first() is not None


def add_user(tx, name: str, role: str, password_hash: str, now: int) -> int:
    """Create user C{name} with C{role}; return its id.

    @raise UserError: unknown role or the name is taken.
    """
    if role not in ROLES:
        raise UserError("unknown role %r (roles: %s)" % (role, ", ".join(ROLES)))
    if not name or len(name) > 64:
        raise UserError("a user name must be 1-64 characters")
    if user_exists(tx, name):
        raise UserError("user %r already exists" % name)
    tx.insert(users, {"name": name, "role": role, "password_hash": password_hash,
                      "enabled": 1, "failed_logins": 0, "locked_until": 0, "created_at": now})
    return tx.execute(_BY_NAME, {"name": name}).scalar()


# -- logins ---------------------------------------------------------------------------
@dataclass(frozen=True)
class UserRow:
    """One operator user as login and the role checks read it."""

    id: int
    name: str
    role: str
    enabled: bool
    failed_logins: int
    locked_until: int
    password_hash: str


_USER_BY_NAME = select(users).where(users.c.name == bindparam("name"))
_USER_BY_ID = select(users).where(users.c.id == bindparam("id"))


def _row(r) -> UserRow | None:
    if r is None:
        return None
    d = dict(zip(users.c.keys(), r))
    return UserRow(d["id"], d["name"], d["role"], bool(d["enabled"]), d["failed_logins"],
                   d["locked_until"], d["password_hash"])


def user_by_name(tx, name: str) -> UserRow | None:
    """The user called C{name}, or None (a read unit of work)."""
    return _row(tx.execute(_USER_BY_NAME, {"name": name}).first())


def user_by_id(tx, user_id: int) -> UserRow | None:
    """The user with id C{user_id}, or None (a read unit of work)."""
    return _row(tx.execute(_USER_BY_ID, {"id": user_id}).first())


def clear_failed_logins(tx, user_id: int) -> None:
    """Reset the failure count and any lock of user C{user_id} (after a good login)."""
    tx.execute(update(users).where(users.c.id == user_id).values(failed_logins=0, locked_until=0))


# -- administration ----------------------------------------------------------------------
_LIST_COLS = (users.c.id, users.c.name, users.c.role, users.c.enabled, users.c.failed_logins,
              users.c.locked_until, users.c.created_at)


def list_users(tx) -> list[dict]:
    """Every user by name: C{id, name, role, enabled, failed_logins, locked_until,
    created_at} (never the password hash)."""
    return [dict(zip((c.name for c in _LIST_COLS), r))
            for r in tx.execute(select(*_LIST_COLS).order_by(users.c.name)).rows]


def _enabled_admins(tx, except_id) -> int:
    return tx.execute(select(func.count()).select_from(users).where(and_(
        users.c.role == "administrator", users.c.enabled == 1, users.c.id != except_id))).scalar()


def change_user(tx, user_id, action, *, role=None, pw_hash=None, actor, actor_id, origin, now):
    """Apply C{action} to user C{user_id} and audit it (a unit of work).

    @param action: C{role} (to C{role}), C{enable}, C{disable}, C{unlock} or
        C{password} (to C{pw_hash}, clearing failures and lock).
    @param actor_id: the acting user's id (no one changes their own role or
        disables themselves).
    @return: the user's name.
    @raise UserError: unknown user or role, or a change that would leave no
        enabled administrator or lock the acting user out.
    """
    row = tx.execute(select(users.c.name, users.c.role).where(users.c.id == user_id)).first()
    if row is None:
        raise UserError("no user with id %d" % user_id)
    name, old_role = row
    values, detail = {}, {}
    if action == "role":
        if role not in ROLES:
            raise UserError("unknown role %r" % role)
        if user_id == actor_id:
            raise UserError("you cannot change your own role")
        if old_role == "administrator" and role != "administrator" and not _enabled_admins(tx, user_id):
            raise UserError("the last enabled administrator must stay an administrator")
        values, detail = {"role": role}, {"from": old_role, "to": role}
    elif action == "disable":
        if user_id == actor_id:
            raise UserError("you cannot disable yourself")
        if old_role == "administrator" and not _enabled_admins(tx, user_id):
            raise UserError("the last enabled administrator cannot be disabled")
        values = {"enabled": 0}
    elif action == "enable":
        values = {"enabled": 1}
    elif action == "unlock":
        values = {"locked_until": 0, "failed_logins": 0}
    elif action == "password":
        values = {"password_hash": pw_hash, "failed_logins": 0, "locked_until": 0}
    else:
        raise UserError("unknown action %r" % action)
    tx.execute(update(users).where(users.c.id == user_id).values(**values))
    audit(tx, at=now, actor=actor, action="user." + action, target=name, origin=origin,
          detail=detail or None)
    return name
