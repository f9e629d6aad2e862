"""SOAP authentication: Basic parsing, UsernameToken text/digest, freshness, replay (issue 7)."""
from __future__ import annotations

import base64
import datetime
import threading

import pytest
import pytest_twisted
from lxml import etree
from twisted.internet import defer, task

from protocols.soap.auth import (
    PASSWORD_DIGEST, AuthFailed, AuthThrottled, Authenticator, NonceCacheFull, PasswordChecksBusy, find_username_token,
    parse_basic, password_digest,
)
from core.passwords import PasswordPool
from protocols.soap.config import SoapClient

NOW = datetime.datetime(2026, 11, 26, 10, 0, 0, tzinfo=datetime.timezone.utc)
NONCE = b"0123456789abcdef"
CREATED = "2026-11-26T10:00:00Z"


def _clock(at=NOW):
    c = task.Clock()
    c.advance(at.timestamp())
    return c


def _auth(clock=None, **kw):
    clients = [SoapClient("shop1", password="s3cret"),
               SoapClient("hashed", password_hash="$argon2id$fake"),
               SoapClient("lan", password="lan", networks=["10.0.0.0/8"])]
    calls = []

    def verify(h, pw):
        calls.append(pw)
        return defer.succeed(pw == "right")
    a = Authenticator(clients, clock=clock or _clock(), skew_seconds=300, verify_hash=verify, **kw)
    a.verify_calls = calls
    return a


def _zeep_header(username, password, *, digest, nonce=NONCE.decode(), created=NOW):
    """The wsse:Security header zeep (a third-party client) builds."""
    from zeep.wsse.username import UsernameToken
    env = etree.fromstring(b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                           b'<s:Header/><s:Body/></s:Envelope>')
    UsernameToken(username, password, use_digest=digest, nonce=nonce,
                  created=created, zulu_timestamp=True).apply(env, {})
    return list(env.find("{http://schemas.xmlsoap.org/soap/envelope/}Header"))


def _result(d):
    out = []
    d.addBoth(out.append)
    return out[0]


def _fails(d, cls=AuthFailed):
    r = _result(d)
    assert hasattr(r, "value") and isinstance(r.value, cls), r
    return r.value


def test_digest_formula_matches_the_profile():
    # Base64(SHA-1(nonce + created + password)), computed independently
    import hashlib
    raw = hashlib.sha1(NONCE + CREATED.encode() + b"s3cret").digest()
    assert password_digest(NONCE, CREATED, "s3cret") == base64.b64encode(raw).decode()


def test_zeep_digest_token_is_accepted_once():
    a = _auth()
    tok = find_username_token(_zeep_header("shop1", "s3cret", digest=True))
    assert tok.password_type == PASSWORD_DIGEST and tok.nonce == NONCE
    assert _result(a.check_token(tok, "127.0.0.1")).name == "shop1"
    # the same token again is a replay
    assert _fails(a.check_token(tok, "127.0.0.1")).reason == "nonce replayed"


def test_zeep_text_token_and_wrong_password():
    a = _auth()
    ok = find_username_token(_zeep_header("shop1", "s3cret", digest=False))
    assert _result(a.check_token(ok, None)).name == "shop1"
    bad = find_username_token(_zeep_header("shop1", "nope", digest=False))
    assert _fails(a.check_token(bad, None)).reason == "wrong password"
    bad_digest = find_username_token(_zeep_header("shop1", "nope", digest=True, nonce="x" * 16))
    assert _fails(a.check_token(bad_digest, None)).reason == "wrong password digest"


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_or_future_created_is_refused(offset):
    a = _auth(_clock(NOW + datetime.timedelta(seconds=offset)))
    tok = find_username_token(_zeep_header("shop1", "s3cret", digest=True))
    assert "skew" in _fails(a.check_token(tok, None)).reason


def test_nonce_forgotten_after_window_and_cache_bounded():
    clock = _clock()
    a = _auth(clock, nonce_cache_size=2)
    for i in range(2):
        tok = find_username_token(_zeep_header("shop1", "s3cret", digest=True,
                                               nonce=str(i) * 16))
        _result(a.check_token(tok, None))
    third = find_username_token(_zeep_header("shop1", "s3cret", digest=True, nonce="z" * 16))
    _fails(a.check_token(third, None), NonceCacheFull)
    clock.advance(601)     # past 2 x skew: old nonces expire (and Created would be stale)
    a.skew = 10_000
    assert _result(a.check_token(third, None)).name == "shop1"
    assert len(a.nonces) == 1


def test_digest_needs_plain_secret_and_nonce():
    a = _auth()
    tok = find_username_token(_zeep_header("hashed", "right", digest=True))
    assert "plain secret" in _fails(a.check_token(tok, None)).reason
    tok = find_username_token(_zeep_header("shop1", "s3cret", digest=True))
    tok.nonce = None
    assert "Nonce and Created" in _fails(a.check_token(tok, None)).reason


def test_hashed_account_verifies_once_then_caches():
    a = _auth()
    assert _result(a.check_basic("hashed", "right", None)).name == "hashed"
    assert _result(a.check_basic("hashed", "right", None)).name == "hashed"
    assert a.verify_calls == ["right"]
    _fails(a.check_basic("hashed", "wrong", None))
    assert a.verify_calls == ["right", "wrong"]


def test_unknown_account_and_network_restriction():
    a = _auth()
    assert _fails(a.check_basic("nobody", "x", "127.0.0.1")).reason == "unknown account"
    assert "not allowed" in _fails(a.check_basic("lan", "lan", "127.0.0.1")).reason
    assert _result(a.check_basic("lan", "lan", "10.1.2.3")).name == "lan"


def test_parse_basic():
    assert parse_basic(None) is None
    assert parse_basic(b"Bearer abc") is None
    assert parse_basic(b"Basic " + base64.b64encode(b"shop1:pa:ss")) == ("shop1", "pa:ss")
    with pytest.raises(AuthFailed):
        parse_basic(b"Basic !!!notbase64")
    with pytest.raises(AuthFailed):
        parse_basic(b"Basic " + base64.b64encode(b"no-colon"))


def test_malformed_security_headers():
    ns = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    sec = etree.Element("{%s}Security" % ns)
    with pytest.raises(AuthFailed):
        find_username_token([sec])
    tok = etree.SubElement(sec, "{%s}UsernameToken" % ns)
    etree.SubElement(tok, "{%s}Username" % ns).text = "shop1"
    pw = etree.SubElement(tok, "{%s}Password" % ns, Type="urn:other")
    pw.text = "x"
    with pytest.raises(AuthFailed, match="authentication failed"):
        find_username_token([sec])
    assert find_username_token([]) is None


def test_secrets_are_not_in_repr():
    assert "s3cret" not in repr(SoapClient("shop1", password="s3cret"))


def test_wrong_passwords_are_throttled_per_account_before_any_check():
    """Finding 4: 96 wrong passwords for a hashed account and 300 for a plain one."""
    a = _auth()
    for _ in range(96):
        _fails(a.check_basic("hashed", "wrong", "10.1.1.1"))
    assert len(a.verify_calls) == 10                # the account's limit, then refused unchecked
    _fails(a.check_basic("hashed", "right", "10.1.1.2"), AuthThrottled)   # even the right one
    b = _auth()
    refused = [_result(b.check_basic("shop1", "wrong", "10.1.1.1")) for _ in range(300)]
    assert sum(1 for f in refused if isinstance(f.value, AuthThrottled)) == 290


def test_an_address_is_throttled_across_accounts_and_the_window_ends():
    clock = _clock()
    a = _auth(clock)
    for i in range(30):
        _fails(a.check_basic("user%d" % i, "wrong", "10.9.9.9"))
    _fails(a.check_basic("shop1", "s3cret", "10.9.9.9"), AuthThrottled)
    assert _result(a.check_basic("shop1", "s3cret", "10.9.9.8")).name == "shop1"
    clock.advance(61)
    assert _result(a.check_basic("shop1", "s3cret", "10.9.9.9")).name == "shop1"


@pytest_twisted.ensureDeferred
async def test_a_password_storm_is_bounded_by_the_pool(reactor):
    """N wrong passwords at once: at most the pool's bound is ever accepted or checked;
    the others are refused at once with Server.Busy."""
    release = threading.Event()
    checked = []

    def slow_verify(stored_hash, password):
        release.wait(30)
        checked.append(password)
        return False
    pool = PasswordPool(reactor, threads=2, queue=3, verify=slow_verify)
    clients = [SoapClient("acct%d" % i, password_hash="$argon2id$fake") for i in range(40)]
    a = Authenticator(clients, clock=reactor, passwords=pool)
    try:
        outcomes = []
        ds = [a.check_basic("acct%d" % i, "wrong", "10.0.0.%d" % i).addBoth(outcomes.append)
              for i in range(40)]
        assert pool.pending == pool.bound == 5
        assert len(outcomes) == 35                  # refused at once, nothing queued
        assert all(f.check(PasswordChecksBusy) for f in outcomes)
        release.set()
        await defer.gatherResults(ds)
    finally:
        release.set()
        pool.stop()
    assert len(checked) == 5 and pool.checked == 5 and pool.refused == 35
    assert len(outcomes) == 40
    assert all(f.check(AuthFailed) for f in outcomes[35:])


def test_failures_from_outside_an_accounts_networks_do_not_throttle_the_account():
    a = _auth()
    for i in range(50):
        _fails(a.check_basic("lan", "wrong", "192.168.0.%d" % i))
    assert _result(a.check_basic("lan", "lan", "10.0.0.1")).name == "lan"
