"""Admin GUI: login, logout, cookies, CSRF, sessions, lockout, and what each role may see and do."""
from __future__ import annotations

import json

import pytest
import pytest_twisted
from sqlalchemy import select
from twisted.internet.task import Clock

from admin.auth import PERMISSIONS, SessionStore, csrf_ok
from core.schema import audit_log, users
from tests.admin_helpers import PASSWORD, ROLE_USERS, admin_node  # noqa: F401

# page -> permission needed to GET it
PAGES = {
    "/generation": "generation",
    "/batches": "batches",
    "/distribution": "distribution",
    "/partners": "distribution",
    "/vouchers": "housekeeping",
    "/care": "care",
    "/fraud": "care",
    "/reports": "reports",
    "/reports/stock.csv": "reports",
    "/users": "users",
    "/audit": "audit",
}

# POST endpoints -> permission; the body is enough to pass the guard (not to succeed)
POSTS = {
    "/generation": "generation",
    "/distribution/export": "distribution",
    "/partners": "distribution",
    "/vouchers/change/preview": "housekeeping",
    "/vouchers/change/apply": "housekeeping",
    "/housekeeping/run": "housekeeping",
    "/vouchers/1000000000/reveal": "reveal",
    "/care/activate": "care",
    "/care/unbar": "unbar",
    "/users": "users",
    "/users/1": "users",
}


def audit_rows(store, action=None):
    q = select(audit_log.c.actor, audit_log.c.action, audit_log.c.target, audit_log.c.origin,
               audit_log.c.detail).order_by(audit_log.c.id)
    if action:
        q = q.where(audit_log.c.action == action)
    return store.run_sync(lambda tx: tx.execute(q).rows)


@pytest_twisted.ensureDeferred
async def test_anonymous_is_sent_to_login(admin_node):
    c = admin_node.client()
    for path in ["/", *PAGES]:
        r = await c.get(path)
        assert r.status == 303 and r.header("location") == "/login", path
    r = await c.get("/login")
    assert r.status == 200 and 'name="csrf"' in r.text


@pytest_twisted.ensureDeferred
async def test_anonymous_post_is_refused(admin_node):
    c = admin_node.client()
    await c.get("/login")
    for path in POSTS:
        r = await c.post(path, {"x": "1"})
        assert r.status == 403, path


@pytest_twisted.ensureDeferred
async def test_login_sets_a_fresh_httponly_samesite_cookie_and_logout_ends_it(admin_node):
    c = admin_node.client()
    r = await c.get("/login")
    (anon,) = r.cookies()
    assert "HttpOnly" in anon and "SameSite=strict" in anon and "Secure" not in anon
    anon_id = c.cookies["ivoms_session"]
    r = await c.post("/login", {"username": "admin", "password": PASSWORD})
    assert r.status == 303 and r.header("location") == "/"
    assert c.cookies["ivoms_session"] != anon_id          # no session fixation
    r = await c.get("/")
    assert r.status == 200 and "admin (administrator)" in r.text
    # security headers on every page
    assert "frame-ancestors 'none'" in r.header("content-security-policy")
    assert r.header("x-frame-options") == "DENY"
    assert r.header("cache-control") == "no-store"
    old = dict(c.cookies)
    r = await c.post("/logout")
    assert r.status == 303 and r.header("location") == "/login"
    # the old cookie no longer works
    c.cookies = old
    r = await c.get("/")
    assert r.status == 303
    actions = [a for _, a, *_ in audit_rows(admin_node.store)]
    assert "login" in actions and "logout" in actions
    origin = audit_rows(admin_node.store, "login")[0][3]
    assert origin == "gui:127.0.0.1"


@pytest_twisted.ensureDeferred
async def test_wrong_password_unknown_user_and_missing_csrf(admin_node):
    c = admin_node.client()
    r = await c.login("admin", "wrong")
    assert r.status == 401 and "Login failed" in r.text
    r = await c.login("nobody", "wrong")
    assert r.status == 401
    await c.get("/login")
    r = await c.post("/login", {"username": "admin", "password": PASSWORD}, csrf=False)
    assert r.status == 403 and "ivoms_session" not in r.text
    r = await c.get("/")
    assert r.status == 303            # not logged in
    fails = audit_rows(admin_node.store, "login.failed")
    assert [json.loads(d)["reason"] for *_, d in fails] == ["password", "unknown"]
    assert all(PASSWORD not in (d or "") for *_, d in audit_rows(admin_node.store))


@pytest_twisted.ensureDeferred
async def test_csrf_is_checked_on_every_post(admin_node):
    c = await admin_node.logged_in("admin")
    await c.get("/users")
    for path in POSTS:
        r = await c.post(path, {"x": "1"}, csrf=False)
        assert r.status == 403 and "security token" in r.text, path
        r = await c.post(path, {"x": "1", "csrf": "forged"}, csrf=False)
        assert r.status == 403, path
    # with the token the guard lets the request through (the form itself is then judged)
    r = await c.post("/users", {"name": "", "role": "x"})
    assert r.status == 400


@pytest_twisted.ensureDeferred
async def test_lockout_after_repeated_failures_and_unlock(admin_node):
    s = admin_node.config.admin
    c = admin_node.client()
    for _ in range(s.lockout_threshold):
        r = await c.login("hk", "wrong password")
        assert r.status == 401
    locked_until = admin_node.store.run_sync(lambda tx: tx.execute(
        select(users.c.locked_until).where(users.c.name == "hk")).scalar())
    assert locked_until > admin_node.ctx.now()
    r = await c.login("hk")                        # right password, still locked
    assert r.status == 401
    assert any(a == "user.locked" and t == "hk" for _, a, t, *_ in audit_rows(admin_node.store))
    reasons = [json.loads(d)["reason"] for *_, d in audit_rows(admin_node.store, "login.failed")]
    assert reasons[-1] == "locked"
    # an administrator unlocks
    a = await admin_node.logged_in("admin")
    await a.get("/users")
    hk_id = admin_node.store.run_sync(lambda tx: tx.execute(
        select(users.c.id).where(users.c.name == "hk")).scalar())
    r = await a.post("/users/%d" % hk_id, {"action": "unlock"})
    assert r.status == 303
    r = await c.login("hk")
    assert r.status == 303


@pytest_twisted.ensureDeferred
async def test_success_resets_the_failure_count(admin_node):
    c = admin_node.client()
    for _ in range(admin_node.config.admin.lockout_threshold - 1):
        await c.login("rv", "wrong password")
    assert (await c.login("rv")).status == 303
    c2 = admin_node.client()
    for _ in range(admin_node.config.admin.lockout_threshold - 1):
        await c2.login("rv", "wrong password")
    assert (await c2.login("rv")).status == 303     # not locked: the count restarted


@pytest.mark.parametrize("name", sorted(ROLE_USERS))
@pytest_twisted.ensureDeferred
async def test_each_role_sees_only_its_pages(admin_node, name):
    role = ROLE_USERS[name]
    c = await admin_node.logged_in(name)
    home = await c.get("/")
    assert home.status == 200
    for path, perm in PAGES.items():
        r = await c.get(path)
        expected = 200 if role in PERMISSIONS[perm] else 403
        assert r.status == expected, (role, path, r.status, r.text[-1500:])
        if not path.endswith(".csv"):
            shown = 'href="%s"' % path in home.text
            if path in ("/partners", "/reports/stock.csv"):
                continue
            assert shown == (role in PERMISSIONS[perm]), (role, path)


@pytest.mark.parametrize("name", sorted(ROLE_USERS))
@pytest_twisted.ensureDeferred
async def test_each_role_does_only_what_it_may(admin_node, name):
    role = ROLE_USERS[name]
    c = await admin_node.logged_in(name)
    await c.get("/")
    for path, perm in POSTS.items():
        r = await c.post(path, {"x": "1"})
        if role in PERMISSIONS[perm]:
            assert r.status != 403, (role, path, r.text[:300])
        else:
            assert r.status == 403 and "may not use" in r.text, (role, path)


@pytest_twisted.ensureDeferred
async def test_disabled_user_loses_its_session_at_once(admin_node):
    c = await admin_node.logged_in("care")
    assert (await c.get("/care")).status == 200
    admin_node.store.run_sync(lambda tx: tx.execute(
        users.update().where(users.c.name == "care").values(enabled=0)))
    r = await c.get("/care")
    assert r.status == 303 and r.header("location") == "/login"
    assert (await admin_node.client().login("care")).status == 401


@pytest_twisted.ensureDeferred
async def test_role_change_applies_on_the_next_request(admin_node):
    c = await admin_node.logged_in("rv")
    assert (await c.get("/care")).status == 403
    admin_node.store.run_sync(lambda tx: tx.execute(
        users.update().where(users.c.name == "rv").values(role="customer_care")))
    assert (await c.get("/care")).status == 200
    assert (await c.get("/reports")).status == 403


def test_sessions_expire_after_idle_time_and_lifetime():
    clock = Clock()
    store = SessionStore(clock, lifetime=100, idle=30, tls=False)

    def get(sid):
        out = []
        store.get(sid).addCallback(out.append)
        return out[0]
    s = store.new()
    store.save(s)
    clock.advance(29)
    assert get(s.id) is s
    clock.advance(31)
    assert get(s.id) is None
    s = store.new()
    store.save(s)
    for _ in range(4):
        clock.advance(25)
        assert get(s.id) is s
    clock.advance(1)
    assert get(s.id) is None          # 101 s after it started
    assert get("unknown") is None and get(None) is None


def test_cookie_is_secure_with_host_prefix_under_tls():
    class Req:
        def __init__(self):
            self.calls = []

        def addCookie(self, *a, **kw):
            self.calls.append((a, kw))
    store = SessionStore(Clock(), lifetime=10, idle=10, tls=True)
    req = Req()
    store.set_cookie(req, store.new())
    (args, kw), = req.calls
    assert args[0] == b"__Host-ivoms_session"
    assert kw["secure"] is True and kw["httpOnly"] is True and kw["sameSite"] == "strict"
    assert kw["path"] == b"/"


def test_csrf_compare():
    s = SessionStore(Clock(), lifetime=10, idle=10, tls=False).new()
    assert csrf_ok(s, s.csrf)
    assert not csrf_ok(s, s.csrf[:-1])
    assert not csrf_ok(s, "")
    assert not csrf_ok(None, s.csrf)


@pytest_twisted.ensureDeferred
async def test_bad_input_gets_a_clear_answer(admin_node):
    c = admin_node.client()
    await c.get("/login")
    body = b"username=%ff%fe&password=x&csrf=" + c.csrf.encode()
    r = await c.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and "UTF-8" in r.text
    a = await admin_node.logged_in("admin")
    await a.get("/users")
    r = await a.request("POST", "/users", b"csrf=%ff", {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400
    assert (await a.get("/static/")).status == 404
    assert (await a.get("/static/admin.css")).status == 200
    assert (await a.get("/vouchers?serial=12345678901234567890")).status == 400
    assert (await a.request("DELETE", "/users")).status == 405
