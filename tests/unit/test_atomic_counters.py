"""Atomic counters: the fraud bar and the admin lockout are decided before the HRN or the
password is evaluated, so concurrency never lets more than the threshold through (issue 16,
findings 1 and 10)."""
from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from types import SimpleNamespace

import pytest_twisted
from twisted.internet import defer, task, threads
from twisted.python.threadpool import ThreadPool

from core import fraud, lockout
from core.throttle import SourceGate
from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.users import add_user, hash_password
from tests.admin_helpers import PASSWORD, admin_node  # noqa: F401
from tests.helpers import FraudSettings, build_service, make_batch
from tests.unit.test_admin_auth import audit_rows

WRONG = "11111111111111"


def _req(hrn, msisdn="0641234567"):
    return ActivationRequest(msisdn=msisdn, hrn=hrn, channel="sms", source="bind-a")


@pytest_twisted.ensureDeferred
async def test_sixty_concurrent_wrong_guesses_evaluate_at_most_the_threshold(env, reactor):
    store, cipher = env
    runner, svc, _ = build_service(store, cipher, reactor=reactor,
                                   workers=1 if store.is_sqlite else 10,
                                   fraud=FraudSettings(tiers=((5, 900),)))
    try:
        results = await defer.gatherResults([svc.activate(_req(WRONG)) for _ in range(60)])
    finally:
        await runner.stop()
    codes = [r.code for r in results]
    assert codes.count(R.INVALID_HRN) <= 5
    assert codes.count(R.INVALID_HRN) + codes.count(R.SUBSCRIBER_BARRED) == 60
    (counter,) = [c for c in store.run_sync(fraud.list_counters, "msisdn:")]
    assert counter["failures"] == 5 and counter["barred_until"] > 0


@pytest_twisted.ensureDeferred
async def test_a_valid_hrn_reaching_the_tier_lifts_the_bar_it_planted(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor,
                                   fraud=FraudSettings(tiers=((3, 900),), reset_on_success=False))
    try:
        for _ in range(2):
            assert (await svc.activate(_req(WRONG))).code == R.INVALID_HRN
        assert (await svc.activate(_req(hrn))).code == R.SUCCESS     # third slot: bar planted, lifted
        assert (await svc.activate(_req(WRONG))).code == R.INVALID_HRN
        assert (await svc.activate(_req(WRONG))).code == R.SUBSCRIBER_BARRED
    finally:
        await runner.stop()
    assert [c["failures"] for c in store.run_sync(fraud.list_counters, "msisdn:")] == [3]


@pytest_twisted.ensureDeferred
async def test_a_clean_subscriber_keeps_no_counter_row(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        for hrn in hrns.values():
            assert (await svc.activate(_req(hrn))).code == R.SUCCESS
    finally:
        await runner.stop()
    assert store.run_sync(fraud.list_counters, "msisdn:") == []


def _user(store, name="op", password="right password"):
    h = hash_password(password)
    store.run_sync(add_user, name, "report_viewer", h, 0)


def test_forty_parallel_login_claims_let_at_most_the_threshold_through(env):
    store, _ = env
    _user(store)
    now = int(time.time() * 1000)
    gate = threading.Barrier(8)
    claims = []

    def attempt():
        gate.wait(10)
        for _ in range(5):
            claims.append(store.run_sync(lockout.claim, "op", now=now, threshold=5,
                                         lockout_ms=60_000))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claims) == 40
    evaluated = [c for c in claims if c.user is not None]
    assert len(evaluated) == 5
    assert sum(1 for c in claims if c.planted) == 1
    assert all(c.reason == "locked" for c in claims if c.user is None)


def _post_login(client, password) -> int:
    """POST /login for C{hk} with the form C{client} fetched; the HTTP status."""
    conn = http.client.HTTPConnection(client.host, client.port, timeout=60)
    try:
        body = urllib.parse.urlencode({"username": "hk", "password": password,
                                       "csrf": client.csrf})
        conn.request("POST", "/login", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": "; ".join("%s=%s" % kv for kv in client.cookies.items())})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_forty_parallel_logins_check_at_most_the_threshold(admin_node, monkeypatch,
                                                                 reactor):
    """Finding 1: 40 parallel POST /login for one user; the right password, sent 38th,
    must not log in, and no more than the threshold of passwords is checked."""
    import admin.auth
    import core.users
    checked = []
    real = core.users.verify_password
    threshold = admin_node.config.admin.lockout_threshold
    # the right password goes out once the threshold of wrong ones is being
    # checked (or all wrong ones are answered): thread start order alone does
    # not keep the 38th request behind the first few
    wrong_checked, wrong_done = threading.Event(), []

    def counting(stored_hash, password):
        checked.append(password)
        if len(checked) >= threshold:
            wrong_checked.set()
        return real(stored_hash, password)

    def post(client, i):
        if i != 37:
            try:
                return _post_login(client, "wrong")
            finally:
                wrong_done.append(i)
                if len(wrong_done) == 39:
                    wrong_checked.set()
        wrong_checked.wait(60)
        return _post_login(client, PASSWORD)
    monkeypatch.setattr(core.users, "verify_password", counting)
    monkeypatch.setattr(admin.auth, "verify_password", counting, raising=False)
    clients = [admin_node.client() for _ in range(40)]
    for c in clients:
        await c.get("/login")
    checked.clear()
    pool = ThreadPool(40, 40, name="login-clients")     # the clients' own threads
    pool.start()
    try:
        answers = await defer.gatherResults([
            threads.deferToThreadPool(reactor, pool, post, c, i)
            for i, c in enumerate(clients)])
    finally:
        pool.stop()
    assert answers[37] in (401, 429)        # locked, or its address throttled
    assert len(checked) <= threshold
    assert PASSWORD not in checked
    locked = [r for r in audit_rows(admin_node.store) if r[1] == "user.locked"]
    assert len(locked) == 1


def test_an_attempt_not_checked_or_disabled_gives_its_slot_back(env):
    store, _ = env
    _user(store)
    now = int(time.time() * 1000)
    kw = dict(now=now, threshold=3, lockout_ms=60_000)
    for _ in range(2):
        c = store.run_sync(lockout.claim, "op", **kw)
        store.run_sync(lockout.settle, "op", c, False, origin="t", **kw)
    third = store.run_sync(lockout.claim, "op", **kw)
    assert third.planted == now + 60_000
    assert store.run_sync(lockout.claim, "op", **kw).reason == "locked"
    store.run_sync(lockout.settle, "op", third, None, origin="t", **kw)   # pool was full
    again = store.run_sync(lockout.claim, "op", **kw)                      # the lock was lifted
    assert again.user is not None and again.planted == now + 60_000
    user = store.run_sync(lockout.settle, "op", again, True, origin="t", **kw)
    assert user.name == "op"
    assert store.run_sync(lockout.claim, "op", **kw).planted is None       # count restarted


@pytest_twisted.ensureDeferred
async def test_guesses_with_rotating_msisdns_are_throttled_per_source(env, reactor):
    """Finding 2: one source guessing with a new MSISDN each time, 100 at once; past 30
    failures in a minute its attempts are refused with 153 before any lookup, a correct HRN
    included; other sources are not affected, and the next minute it may try again."""
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    first, second = hrns.values()
    clock = task.Clock()
    clock.advance(time.time())
    runner, svc, _ = build_service(store, cipher, reactor=reactor, clock=clock,
                                   workers=1 if store.is_sqlite else 10)
    try:
        guesses = await defer.gatherResults([
            svc.activate(_req(WRONG, msisdn="06400%05d" % i)) for i in range(100)])
        codes = [r.code for r in guesses]
        assert codes.count(R.INVALID_HRN) == 30
        assert codes.count(R.SOURCE_THROTTLED) == 70
        late = await svc.activate(_req(first, msisdn="0641111111"))
        assert late.code == R.SOURCE_THROTTLED
        other = ActivationRequest(msisdn="0642222222", hrn=first, channel="sms", source="bind-b")
        assert (await svc.activate(other)).code == R.SUCCESS
        clock.advance(61)
        assert (await svc.activate(_req(second, msisdn="0641111111"))).code == R.SUCCESS
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_a_peer_has_its_own_source_limit(env, reactor):
    store, cipher = env
    settings = FraudSettings(tiers=((1000, 60),))
    settings.sources = [SimpleNamespace(source="bind-a", failures_per_minute=3)]
    runner, svc, _ = build_service(store, cipher, reactor=reactor, fraud=settings)
    try:
        codes = [(await svc.activate(_req(WRONG, msisdn="06400%05d" % i))).code
                 for i in range(5)]
        other = [(await svc.activate(ActivationRequest(
            msisdn="06410%05d" % i, hrn=WRONG, channel="sms", source="bind-b"))).code
            for i in range(5)]
    finally:
        await runner.stop()
    assert codes == [R.INVALID_HRN] * 3 + [R.SOURCE_THROTTLED] * 2
    assert other == [R.INVALID_HRN] * 5                 # the default limit, 30


@pytest_twisted.ensureDeferred
async def test_the_fraud_view_shows_bars_and_throttled_sources(admin_node):
    now = int(time.time() * 1000)
    fs = FraudSettings(tiers=((2, 900),))
    for _ in range(2):
        admin_node.store.run_sync(fraud.claim, fraud.msisdn_subject("381641234567"), now, fs)
    for _ in range(30):
        admin_node.store.run_sync(fraud.record_source_failure,
                                  fraud.source_subject("sms", "smpp:smsc"), now)
    admin_node.store.run_sync(fraud.record_source_failure, fraud.source_subject("web", "10.1.1.1"),
                              now)
    c = await admin_node.logged_in("admin")
    r = await c.get("/fraud")
    assert r.status == 200
    page = r.text
    assert "381641234567" in page and "smpp:smsc" in page and "10.1.1.1" in page
    assert page.count("throttled (153)") == 1


def test_a_busy_source_that_rarely_fails_waits_instead_of_being_refused():
    clock = task.Clock()
    gate = SourceGate(clock, lambda source: 3)
    assert [gate.admit("sms", "smsc") for _ in range(3)] == [None] * 3
    waiting = gate.admit("sms", "smsc")                 # 3 under way: it waits its turn
    assert isinstance(waiting, defer.Deferred) and not waiting.called
    got = []
    waiting.addCallback(got.append)
    gate.done("sms", "smsc", failed=False)              # a success frees a slot
    assert got == [None]
    for _ in range(3):
        gate.done("sms", "smsc", failed=True)
    assert gate.admit("sms", "smsc") == clock.seconds() + 60     # 3 failures: refused
    assert gate.throttled() == [("sms", "smsc", 3, 3)]
    clock.advance(60)
    assert gate.admit("sms", "smsc") is None
