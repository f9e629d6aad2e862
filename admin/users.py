"""User administration: list, add, change role, enable/disable, unlock, reset password."""
from __future__ import annotations

from admin import web
from admin.web import FormError
from core.audit import audit
from core.users import (ROLES, UserError, add_user, change_user, generate_password, hash_password,
                        list_users)

ACTIONS = ("role", "enable", "disable", "unlock", "password")


def _add(tx, name, role, pw_hash, actor, origin, now):
    uid = add_user(tx, name, role, pw_hash, now)
    audit(tx, at=now, actor=actor, action="user.add", target=name, origin=origin,
          detail={"role": role})
    return uid


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
            await ctx.sessions.drop_user(user_id)
        session.flash("User %s: %s done." % (name, action))
        if password:
            session.flash("New password for %s, shown only now: %s" % (name, password), "warn")
        return web.redirect(request, "/users")


def _change(tx, user_id, action, role, pw_hash, actor, actor_id, origin, now):
    return change_user(tx, user_id, action, role=role, pw_hash=pw_hash, actor=actor,
                       actor_id=actor_id, origin=origin, now=now)
