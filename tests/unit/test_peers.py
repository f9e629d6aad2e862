"""Configured peers of the USSD and IVR channels (issue 16, point 1): who may call, how
each request resolves to a named peer, and what anyone else gets."""
from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import crypto
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address
from twisted.web.test.requesthelper import DummyRequest

from core.metrics import NULL_METRICS
from core.passwords import PasswordPoolBusy
from core.settings import ConfigError, build
from protocols.common.peers import (PeerGate, PeerRefused, PeerSettings, basic_credentials,
                                    fingerprint, peer_certificate_fingerprint)
from protocols.ivr.config import IvrSettings
from protocols.ussd.config import UssdSettings

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"   # checked by a fake


def certificate(name="ivr-platform"):
    """A self-signed client certificate (pyOpenSSL, as a TLS transport hands it over)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return crypto.X509.from_cryptography(cert), cert.fingerprint(hashes.SHA256()).hex()


class TlsTransport:
    """The part of a TLS transport the gate reads: the peer's certificate."""

    def __init__(self, cert):
        self.cert = cert

    def getPeerCertificate(self):
        return self.cert


class Passwords:
    """A password checker: C{right} is the only password; counts the checks."""

    def __init__(self, right="s3cret-peer-password", busy=False):
        self.right = right
        self.busy = busy
        self.checks = 0

    def verify(self, stored_hash, password):
        self.checks += 1
        if self.busy:
            return defer.fail(PasswordPoolBusy())
        return defer.succeed(stored_hash == HASH and password == self.right)


class Metrics:
    def __init__(self):
        self.refused = []

    def peer_refused(self, channel, reason):
        self.refused.append((channel, reason))


def request(host="10.1.2.3", user=None, password=None, cert=None, header=None):
    req = DummyRequest([b""])
    req.client = IPv4Address("TCP", host, 40000)
    if user is not None:
        header = b"Basic " + base64.b64encode(("%s:%s" % (user, password)).encode())
    if header is not None:
        req.requestHeaders.setRawHeaders(b"authorization", [header])
    if cert is not None:
        req.transport = TlsTransport(cert)
    return req


def resolved(value):
    """The peer a gate's answer names (synchronous or a fired Deferred)."""
    if isinstance(value, defer.Deferred):
        out = []
        value.addBoth(out.append)
        assert out, "the check did not finish"
        if isinstance(out[0], Exception) or hasattr(out[0], "raiseException"):
            out[0].raiseException()
        return out[0]
    return value


def refusal(gate, req) -> str:
    with pytest.raises(PeerRefused) as e:
        resolved(gate.identify(req))
    return e.value.reason


def gate(*peers, **kw):
    kw.setdefault("clock", task.Clock())
    return PeerGate("ivr", peers, **kw)


def test_address_allow_list_names_the_peer():
    g = gate(PeerSettings(name="ivr-a", networks=["10.1.0.0/16"]),
             PeerSettings(name="ivr-b", networks=["10.2.0.0/16", "2001:db8::/32"]))
    assert resolved(g.identify(request("10.1.2.3"))).name == "ivr-a"
    assert resolved(g.identify(request("10.2.0.9"))).name == "ivr-b"
    assert g.source(resolved(g.identify(request("10.2.0.9")))) == "ivr:ivr-b"
    assert refusal(g, request("10.3.0.1")) == "unknown_peer"
    assert refusal(g, request("::1")) == "unknown_peer"


def test_no_peer_refuses_everything():
    m = Metrics()
    g = gate(metrics=m)
    assert refusal(g, request("127.0.0.1")) == "unknown_peer"
    assert m.refused == [("ivr", "unknown_peer")] and g.refused == {"unknown_peer": 1}


def test_basic_credentials_name_the_peer_and_wrong_ones_are_throttled():
    pw = Passwords()
    m = Metrics()
    clock = task.Clock()
    g = gate(PeerSettings(name="ivr-a", networks=["10.0.0.0/8"], user="ivr-a", password_hash=HASH),
             clock=clock, passwords=pw, metrics=m)
    assert refusal(g, request()) == "credentials_required"
    assert resolved(g.identify(request(user="ivr-a", password=pw.right))).name == "ivr-a"
    assert resolved(g.identify(request(user="ivr-a", password=pw.right))).name == "ivr-a"
    assert pw.checks == 1                              # a verified password is remembered
    assert refusal(g, request(header=b"Basic !!!")) == "bad_credentials"
    assert refusal(g, request(user="someone", password="x")) == "bad_credentials"
    assert refusal(g, request("192.0.2.1", user="ivr-a", password=pw.right)) == "unknown_peer"
    for _ in range(10):
        assert refusal(g, request(user="ivr-a", password="guess")) == "bad_credentials"
    checks = pw.checks
    # ten failures of the user this minute: refused without a password check
    assert refusal(g, request(user="ivr-a", password=pw.right)) == "throttled"
    assert pw.checks == checks and ("ivr", "throttled") in m.refused
    clock.advance(61)
    assert resolved(g.identify(request(user="ivr-a", password=pw.right))).name == "ivr-a"


def test_a_full_password_pool_answers_busy():
    g = gate(PeerSettings(name="p", user="p", password_hash=HASH), passwords=Passwords(busy=True))
    assert refusal(g, request(user="p", password="whatever")) == "busy"


def test_client_certificate_fingerprint_names_the_peer():
    cert, hexprint = certificate()
    other, _ = certificate("someone-else")
    colons = ":".join(hexprint[i:i + 2] for i in range(0, 64, 2)).upper()
    g = gate(PeerSettings(name="ivr-tls", cert_fingerprints=[colons]),
             PeerSettings(name="ivr-lan", networks=["10.9.0.0/16"]))
    assert peer_certificate_fingerprint(request(cert=cert)) == hexprint
    assert resolved(g.identify(request("192.0.2.7", cert=cert))).name == "ivr-tls"
    assert refusal(g, request("192.0.2.7", cert=other)) == "unknown_peer"
    assert refusal(g, request("192.0.2.7")) == "unknown_peer"      # plain TCP: no certificate
    assert resolved(g.identify(request("10.9.1.1"))).name == "ivr-lan"


def test_every_condition_a_peer_sets_must_hold():
    cert, hexprint = certificate()
    g = gate(PeerSettings(name="strict", networks=["10.0.0.0/8"], user="strict",
                          password_hash=HASH, cert_fingerprints=["sha256:" + hexprint]),
             passwords=Passwords())
    ok = Passwords().right
    assert resolved(g.identify(request(user="strict", password=ok, cert=cert))).name == "strict"
    assert refusal(g, request(user="strict", password=ok)) == "unknown_peer"
    assert refusal(g, request("192.0.2.1", user="strict", password=ok, cert=cert)) == "unknown_peer"
    assert refusal(g, request(cert=cert)) == "credentials_required"


def test_refusals_are_logged_once_per_address_and_reason_a_minute():
    from twisted.logger import globalLogPublisher
    events = []
    globalLogPublisher.addObserver(events.append)
    clock = task.Clock()
    try:
        g = gate(PeerSettings(name="a", networks=["10.0.0.0/8"]), clock=clock)
        for _ in range(50):
            refusal(g, request("192.0.2.1"))
        clock.advance(60)
        refusal(g, request("192.0.2.1"))
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [e for e in events if e.get("reason") == "unknown_peer"]
    assert len(lines) == 2 and g.refused == {"unknown_peer": 51}


def test_fingerprint_and_basic_parsing():
    assert fingerprint("AB:" * 31 + "AB") == "ab" * 32
    assert fingerprint("sha256:" + "0" * 64) == "0" * 64
    assert fingerprint("abc") is None
    assert basic_credentials(None) is None and basic_credentials(b"Bearer x") is None
    assert basic_credentials(b"Basic " + base64.b64encode(b"u:p:q")) == ("u", "p:q")
    with pytest.raises(ValueError):
        basic_credentials(b"Basic " + base64.b64encode(b"no-colon"))


@pytest.mark.parametrize("table, key", [
    ({"peers": [{"name": "x"}]}, "ussd.peers"),
    ({"peers": [{"name": "x", "networks": ["nowhere"]}]}, "ussd.peers"),
    ({"peers": [{"name": "x", "user": "u"}]}, "ussd.peers"),
    ({"peers": [{"name": "x", "user": "u", "password_hash": "plain"}]}, "ussd.peers"),
    ({"peers": [{"name": "x", "cert_fingerprints": ["zz"]}]}, "ussd.peers"),
    ({"peers": [{"name": "x y", "networks": ["10.0.0.1"]}]}, "ussd.peers"),
    ({"peers": [{"name": "x", "networks": ["10.0.0.1"]}, {"name": "x", "networks": ["::1"]}]},
     "ussd.peers"),
    ({"peers": [{"name": "x", "networks": ["10.0.0.1"]}], "allowed_addresses": ["10.0.0.2"]},
     "ussd"),
])
def test_bad_peer_tables_name_the_key(table, key):
    with pytest.raises(ConfigError) as e:
        build(UssdSettings, table, file="conf/ivoms.toml", key="ussd", base_dir=".")
    assert key in str(e.value) and "conf/ivoms.toml" in str(e.value)


def test_peer_tables_and_the_older_allow_list():
    s = build(UssdSettings, {"peers": [{"name": "gw", "networks": ["10.0.0.0/8"],
                                        "cert_fingerprints": ["ab" * 32]}]}, file="f", key="ussd", base_dir=".")
    assert [p.name for p in s.peer_list()] == ["gw"]
    legacy = build(UssdSettings, {"allowed_addresses": ["10.0.0.0/8"]}, file="f", key="ussd", base_dir=".")
    assert [(p.name, p.networks) for p in legacy.peer_list()] == [("gateway", ["10.0.0.0/8"])]
    assert UssdSettings().peer_list() == [] and IvrSettings().peers == []
    ivr = build(IvrSettings, {"peers": [{"name": "vxml", "user": "vxml", "password_hash": HASH}]},
                file="f", key="ivr", base_dir=".")
    assert ivr.peers[0].user == "vxml" and HASH not in repr(ivr.peers[0])


def test_the_demo_config_allows_loopback_peers():
    from gateway.config import load_config
    cfg = load_config("conf/ivoms.toml")
    for table, channel in ((cfg.ussd.peer_list(), "ussd"), (cfg.ivr.peers, "ivr")):
        g = PeerGate(channel, table, clock=task.Clock(), metrics=NULL_METRICS)
        assert resolved(g.identify(request("127.0.0.1"))).name
        assert refusal(g, request("10.0.0.1")) == "unknown_peer"


def test_refusals_are_counted_by_channel_and_reason_in_prometheus():
    from gateway.metrics.registry import PrometheusMetrics
    m = PrometheusMetrics(task.Clock(), process=False)
    g = PeerGate("ussd", [PeerSettings(name="gw", networks=["10.0.0.0/8"], user="gw",
                                       password_hash=HASH)],
                 clock=task.Clock(), passwords=Passwords(), metrics=m)
    refusal(g, request("192.0.2.1"))
    refusal(g, request("192.0.2.2"))
    refusal(g, request("10.0.0.1", user="gw", password="wrong"))
    sample = m.registry.get_sample_value
    assert sample("ivoms_peer_refusals_total", {"channel": "ussd", "reason": "unknown_peer"}) == 2
    assert sample("ivoms_peer_refusals_total",
                  {"channel": "ussd", "reason": "bad_credentials"}) == 1


def test_a_cryptography_certificate_is_read_too():
    cert, hexprint = certificate()
    assert peer_certificate_fingerprint(request(cert=cert.to_cryptography())) == hexprint
    assert peer_certificate_fingerprint(request(cert=None)) is None
