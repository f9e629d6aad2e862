"""The login form is stateless: anonymous visitors take no session slot (signed CSRF token)."""
from __future__ import annotations

import http.client

import pytest_twisted
from twisted.internet import threads
from twisted.internet.task import Clock

from admin.auth import LoginForms
from tests.admin_helpers import PASSWORD, admin_node  # noqa: F401


def _anonymous_gets(host, port, n):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        for _ in range(n):
            conn.request("GET", "/login")
            r = conn.getresponse()
            r.read()
            assert r.status == 200
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_a_flood_of_anonymous_login_forms_evicts_no_operator(admin_node):  # noqa: F811
    # a small cap on this node's store, so that a flood of a few hundred
    # forms goes past it as 10,050 forms go past the shipped one
    sessions = admin_node.ctx.sessions
    sessions.MAX_ANONYMOUS = 200
    operator = admin_node.client()
    await operator.get("/login")                      # fetched before the flood
    before = len(sessions.backend.sessions)
    flood = admin_node.client()
    await threads.deferToThread(_anonymous_gets, flood.host, flood.port,
                                sessions.MAX_ANONYMOUS + 50)
    assert len(sessions.backend.sessions) == before   # GET /login stores nothing
    r = await operator.post("/login", {"username": "admin", "password": PASSWORD})
    assert r.status == 303 and r.header("location") == "/"
    assert (await operator.get("/")).status == 200


@pytest_twisted.ensureDeferred
async def test_forged_or_foreign_login_token_is_refused(admin_node):  # noqa: F811
    a, b = admin_node.client(), admin_node.client()
    await a.get("/login")
    await b.get("/login")
    # b's token with a's nonce cookie: bound to another nonce
    r = await a.post("/login", {"username": "admin", "password": PASSWORD, "csrf": b.csrf})
    assert r.status == 403
    issued, _, mac = a.csrf.partition(".")
    forged = "%d.%s" % (int(issued) + 1, mac)
    r = await a.post("/login", {"username": "admin", "password": PASSWORD, "csrf": forged})
    assert r.status == 403
    r = await a.post("/login", {"username": "admin", "password": PASSWORD})
    assert r.status == 303


def test_login_token_expires_and_is_bound_to_its_nonce():
    clock = Clock()
    clock.advance(1_000_000)
    forms = LoginForms(clock, max_age=600)
    nonce = forms.nonce(None)
    token = forms.token(nonce)
    assert forms.check(nonce, token)
    assert not forms.check(forms.nonce(None), token)
    assert not forms.check(nonce, token + "x")
    assert not forms.check(nonce, "")
    assert not forms.check(None, token)
    assert not forms.check("session-id", token)
    assert not LoginForms(clock, max_age=600).check(nonce, token)     # another secret
    clock.advance(601)
    assert not forms.check(nonce, token)
    assert forms.nonce(nonce) == nonce and forms.nonce("junk") != "junk"
    # what a client sends back is never echoed into a header or parsed loosely
    assert forms.nonce("n.\ufffd;Path=/x" + "a" * 20).startswith("n.")
    assert forms.nonce("n.\ufffd;Path=/x" + "a" * 20) != "n.\ufffd;Path=/x" + "a" * 20
    assert not forms.check(nonce, "\u00b2." + token.partition(".")[2])
    assert not forms.check(nonce, "9" * 40 + "." + token.partition(".")[2])
