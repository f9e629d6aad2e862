"""The operators' login lockout, decided before any password is checked (DESIGN §10).

A login attempt first takes a slot (L{claim}): one conditional
C{UPDATE users SET failed_logins = failed_logins + 1 ... WHERE name = :name
AND locked_until <= :now RETURNING ...}.  The attempt that reaches the
threshold locks the user in that same statement, before its password is
checked; while a user is locked no attempt gets a slot, so no password is
checked at all.  However many attempts arrive at once (on SQLite or
PostgreSQL, on one node or several) at most C{threshold} passwords are
checked before the lock.  L{settle} then records the outcome: a success
resets the count and lifts the lock its own attempt planted; a failure
keeps both.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, case, update

from core.audit import audit
from core.schema import users
from core.users import clear_failed_logins, user_exists


@dataclass(frozen=True)
class LoginUser:
    """The user a login attempt names, as read by its claim."""

    id: int
    name: str
    role: str
    enabled: bool
    password_hash: str


@dataclass(frozen=True)
class LoginClaim:
    """What L{claim} gave one login attempt.

    @ivar user: the user whose password must now be checked, or None when
        no password may be checked (see C{reason}).
    @ivar reason: None, C{"unknown"} (no such user) or C{"locked"}.
    @ivar planted: the end (epoch ms) of the lock this attempt set by
        reaching the threshold, else None.
    """

    user: LoginUser | None
    reason: str | None = None
    planted: int | None = None


_next = users.c.failed_logins + 1
_CLAIM = update(users).where(and_(users.c.name == bindparam("name"),
                                  users.c.locked_until <= bindparam("now"))).values(
    failed_logins=case((_next >= bindparam("threshold"), 0), else_=_next),
    locked_until=case((_next >= bindparam("threshold"), bindparam("until")),
                      else_=users.c.locked_until),
).returning(users.c.id, users.c.name, users.c.role, users.c.enabled, users.c.password_hash,
            users.c.locked_until)

_GIVE_BACK = update(users).where(users.c.id == bindparam("id")).values(
    failed_logins=case((users.c.locked_until == bindparam("planted"), bindparam("threshold") - 1),
                       (users.c.failed_logins > 0, users.c.failed_logins - 1), else_=0),
    locked_until=case((users.c.locked_until == bindparam("planted"), 0),
                      else_=users.c.locked_until))


def claim(tx, name: str, *, now: int, threshold: int, lockout_ms: int) -> LoginClaim:
    """Count a login attempt for C{name} as a failure, before its password is checked.

    @return: a L{LoginClaim}; only when its C{user} is set may the password
        be checked.
    """
    row = tx.execute(_CLAIM, {"name": name, "now": now, "threshold": threshold,
                              "until": now + lockout_ms}).first()
    if row is None:
        return LoginClaim(None, "locked" if user_exists(tx, name) else "unknown")
    uid, uname, role, enabled, pw_hash, locked_until = row
    return LoginClaim(LoginUser(uid, uname, role, bool(enabled), pw_hash), None,
                      locked_until if locked_until > now else None)


def settle(tx, name: str, c: LoginClaim, password_ok: bool, *, now: int, origin: str,
           threshold: int, lockout_ms: int) -> LoginUser | None:
    """Record the outcome of the attempt C{c} and audit it.

    @param password_ok: whether the password matched C{c.user}'s hash
        (ignored when C{c.user} is None); None when it could not be checked
        (the password pool was full): the attempt's slot is given back.
    @return: the user now logged in, or None.
    """
    user = c.user
    if user is not None and password_ok and user.enabled:
        clear_failed_logins(tx, user.id)
        audit(tx, at=now, actor=user.name, action="login", origin=origin)
        return user
    reason = c.reason or ("busy" if password_ok is None else
                          "disabled" if password_ok else "password")
    if user is not None and reason in ("disabled", "busy"):    # not a guess: give the slot back
        tx.execute(_GIVE_BACK, {"id": user.id, "threshold": threshold,
                                "planted": c.planted if c.planted is not None else -1})
    locked = reason == "password" and c.planted is not None
    audit(tx, at=now, actor=name[:64] or "-", action="login.failed", origin=origin,
          detail={"reason": reason, **({"locked": True} if locked else {})})
    if locked:
        audit(tx, at=now, actor="system", action="user.locked", target=name, origin=origin,
              detail={"seconds": lockout_ms // 1000})
    return None
