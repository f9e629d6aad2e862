"""User administration: list, add, change role, enable/disable, unlock, reset password."""
from __future__ import annotations

from sqlalchemy import and_, func, select, update

from admin import web
from admin.web import FormError
from core.audit import audit
from core.schema import users
from core.users import ROLES, UserError, add_user, generate_password, hash_password

ACTIONS = ("role", "enable", "disable", "unlock", "password")


def list_users(tx) -> list[dict]:
    cols = (users.c.id, users.c.name, users.c.role, users.c.enabled, users.c.failed_logins,
            users.c.locked_until, users.c.created_at)
    return [dict(zip((c.name for c in cols), r))
            for r in tx.execute(select(*cols).order_by(users.c.name)).rows]


def _add(tx, name, role, pw_hash, actor, origin, now):
    uid = add_user(tx, name, role, pw_hash, now)
    audit(tx, at=now, actor=actor, action="user.add", target=name, origin=origin,
          detail={"role": role})
    return uid


def _enabled_admins(tx, except_id) -> int:
    return tx.execute(select(func.count()).select_from(users).where(and_(
        users.c.role == "administrator", users.c.enabled == 1, users.c.id != except_id))).scalar()


def change_user(tx, user_id, action, *, role=None, pw_hash=None, actor, actor_id, origin, now):
    """Apply C{action} to user C{user_id} and audit it; return the user's name.

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


def register(app, ctx) -> None:

    @app.route("/users", methods=["GET"])
    @ctx.page("users")
    async def page(request, session):
        rows = await ctx.read(list_users)
        return ctx.render(request, "users.html", session, title="Users", users=rows, roles=ROLES,
                          now=ctx.now())

    @app.route("/users", methods=["POST"])
    @ctx.page("users")
    async def add(request, session):
        name = web.arg(request, "name")
        role = web.arg(request, "role")
        password = web.arg(request, "password")
        if password and len(password) < 12:
            raise FormError("a password must have at least 12 characters (or leave it empty "
                            "to generate one)")
        generated = not password
        password = password or generate_password()
        pw_hash = await ctx.blocking(hash_password, password)
        try:
            await ctx.write(_add, name, role, pw_hash, session.name, web.client_origin(request),
                            ctx.now())
        except UserError as e:
            raise FormError(str(e))
        session.flash("User %s (%s) created." % (name, role))
        if generated:
            session.flash("Generated password for %s, shown only now: %s" % (name, password), "warn")
        return web.redirect(request, "/users")

    @app.route("/users/<int:user_id>", methods=["POST"])
    @ctx.page("users")
    async def change(request, session, user_id):
        action = web.arg(request, "action")
        if action not in ACTIONS:
            raise FormError("unknown action")
        pw_hash = password = None
        if action == "password":
            password = generate_password()
            pw_hash = await ctx.blocking(hash_password, password)
        try:
            name = await ctx.write(_change, user_id, action, web.arg(request, "role"), pw_hash,
                                   session.name, session.user_id, web.client_origin(request),
                                   ctx.now())
        except UserError as e:
            raise FormError(str(e))
        if action in ("disable", "password", "role"):
            ctx.sessions.drop_user(user_id)
        session.flash("User %s: %s done." % (name, action))
        if password:
            session.flash("New password for %s, shown only now: %s" % (name, password), "warn")
        return web.redirect(request, "/users")


def _change(tx, user_id, action, role, pw_hash, actor, actor_id, origin, now):
    return change_user(tx, user_id, action, role=role, pw_hash=pw_hash, actor=actor,
                       actor_id=actor_id, origin=origin, now=now)
