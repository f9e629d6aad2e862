"""An IVR peer identified by its TLS client certificate, over a real TLS listener on
127.0.0.1 that asks for client certificates (verified against the operator's CA), and
a real HTTPS client presenting one (issue 16, point 1)."""
from __future__ import annotations

import datetime
import ipaddress

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import ssl, task
from twisted.web import resource, server
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from protocols.common.peers import PeerSettings
from protocols.ivr.config import IvrSettings
from protocols.ivr.resource import build_resource
from tests.fakes import FakeActivationService


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject, key, issuer, issuer_key, *, ca=False, san=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem(cert, key=None):
    out = cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        out += key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
    return out


class Pki:
    """An operator CA, the node's server certificate and two client certificates."""

    def __init__(self):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _issue("operator CA", ca_key, "operator CA", ca_key, ca=True)
        self.server_key = ec.generate_private_key(ec.SECP256R1())
        self.server = _issue("localhost", self.server_key, "operator CA", ca_key,
                             san=[x509.DNSName("localhost"),
                                  x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.clients = {}
        for name in ("ivr-platform", "other-box"):
            key = ec.generate_private_key(ec.SECP256R1())
            self.clients[name] = (_issue(name, key, "operator CA", ca_key), key)

    def fingerprint(self, name):
        return self.clients[name][0].fingerprint(hashes.SHA256()).hex()


@implementer(IPolicyForHTTPS)
class ClientPolicy:
    def __init__(self, pki, client=None):
        ca = ssl.Certificate.loadPEM(_pem(pki.ca))
        cert = None
        if client is not None:
            cert = ssl.PrivateCertificate.loadPEM(_pem(*pki.clients[client]))
        self.options = ssl.optionsForClientTLS("localhost", trustRoot=ca,
                                               clientCertificate=cert)

    def creatorForNetloc(self, hostname, port):
        return self.options


async def get(url, policy):
    from twisted.internet import reactor
    agent = Agent(reactor, contextFactory=policy,
                  pool=HTTPConnectionPool(reactor, persistent=False))
    response = await agent.request(b"GET", url)
    body = await readBody(response)
    headers = {k.decode().lower(): v[-1].decode() for k, v in response.headers.getAllRawHeaders()}
    return response.code, headers, body


@pytest_twisted.ensureDeferred
async def test_the_client_certificate_names_the_peer(reactor):
    pki = Pki()
    settings = IvrSettings(peers=[PeerSettings(name="ivr-tls",
                                               cert_fingerprints=[pki.fingerprint("ivr-platform")])])
    root = resource.Resource()
    root.putChild(b"ivr", build_resource(FakeActivationService(), settings, clock=task.Clock()))
    site = server.Site(root)
    server_cert = ssl.PrivateCertificate.loadPEM(_pem(pki.server, pki.server_key))
    # the listener verifies a certificate against the CA when one is offered; the peer
    # gate decides which ones are peers (a client without one reaches it and is refused)
    options = ssl.CertificateOptions(privateKey=server_cert.privateKey.original,
                                     certificate=server_cert.original, verify=True,
                                     caCerts=[ssl.Certificate.loadPEM(_pem(pki.ca)).original],
                                     requireCertificate=False)
    port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
    url = b"https://localhost:%d/ivr/" % port.getHost().port
    try:
        code, headers, body = await get(url, ClientPolicy(pki, "ivr-platform"))
        assert code == 200 and b"<vxml" in body
        code, headers, _ = await get(url, ClientPolicy(pki, "other-box"))
        assert code == 403 and headers["x-ivoms-error"] == "unknown_peer"
        code, headers, _ = await get(url, ClientPolicy(pki))
        assert code == 403 and headers["x-ivoms-error"] == "unknown_peer"
    finally:
        await port.stopListening()
