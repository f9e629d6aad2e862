"""TLS for every listener of the node, configured one way: C{tls_key}, C{tls_cert},
C{tls_client_ca}.

Each listener table (C{[http]}, C{[admin]}, C{[smpp.server]}, C{[metrics]},
C{[billing_sim]}) derives from L{TlsListener}: with C{tls_key} and
C{tls_cert} set, the listener's plain endpoint (C{tcp:8443:interface=...})
is wrapped in TLS (1.2 or later); with C{tls_client_ca} also set, a client
must present a certificate signed by one of that file's CAs or the
handshake fails.  The files are read and checked when the configuration
is loaded (L{tls_problem}) and again when the listener starts
(L{server_options}), so a file replaced in between is still refused with
one line naming it.  Twisted's own C{ssl:} endpoint strings keep working
(their files are checked by L{core.endpoint_check}) but cannot verify
clients.

L{peer_subject} tells a resource or protocol the subject of the verified
client certificate of its connection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer

from core.endpoint_check import file_problem, split_description
from core.settings import setting


class TlsError(Exception):
    """A key, certificate or CA file cannot be used; the message names the file and why."""


def readable_or_empty(path: str) -> str | None:
    """A C{check} for a path setting: None when empty or a readable file, else why not."""
    if not path:
        return None
    return file_problem(path)


@dataclass(frozen=True)
class TlsListener:
    """The TLS keys shared by every listener settings table.

    @ivar tls_key: PEM private key file (unencrypted; keep it mode 0600).
    @ivar tls_cert: PEM certificate file: the server certificate first,
        then any intermediate CA certificates sent with it.
    @ivar tls_client_ca: PEM file of the CA certificates a client
        certificate must be signed by; empty: clients are not asked for one.
    """

    #: the field holding the listener's endpoint string
    TLS_ENDPOINT_FIELD: ClassVar[str] = "listen"

    tls_key: str = setting("", path=True, check=readable_or_empty)
    tls_cert: str = setting("", path=True, check=readable_or_empty)
    tls_client_ca: str = setting("", path=True, check=readable_or_empty)

    def __post_init__(self):
        problem = tls_problem(self)
        if problem:
            raise ValueError(problem)

    @property
    def tls(self) -> bool:
        """True when this listener speaks TLS."""
        return bool(self.tls_key and self.tls_cert)


def tls_problem(files) -> str | None:
    """What is wrong with the TLS keys of C{files} (a L{TlsListener}), or None.

    Checks that C{tls_key} and C{tls_cert} come together, that each file
    holds what it should (an unencrypted key; certificates; the key
    belonging to the first certificate) and that C{tls_client_ca} is only
    given with them.
    """
    if bool(files.tls_key) != bool(files.tls_cert):
        return "tls_key and tls_cert must be given together"
    if files.tls_client_ca and not files.tls_key:
        return "tls_client_ca needs tls_key and tls_cert (client certificates are asked over TLS)"
    if not files.tls_key:
        return None
    listen = getattr(files, getattr(files, "TLS_ENDPOINT_FIELD", "listen"), None)
    if isinstance(listen, str) and split_description(listen)[0] == "ssl":
        return ("with tls_key and tls_cert the endpoint must be a plain one "
                "(tcp:, tcp6: or unix:), not %r" % listen)
    try:
        load_key_and_chain(files.tls_key, files.tls_cert)
        if files.tls_client_ca:
            load_certificates(files.tls_client_ca, "tls_client_ca")
    except TlsError as e:
        return str(e)
    return None


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsError("%s %r: cannot read: %s" % (key, path, e.strerror or e))


def load_certificates(path: str, key: str) -> list:
    """The PEM certificates in C{path}, file order (C{cryptography} objects).

    @param key: the setting's name, for the message.
    @raise TlsError: unreadable, or no certificate in it.
    """
    from cryptography import x509
    data = _read(path, key)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TlsError("%s %r: no PEM certificate in it" % (key, path))
    return certs


def load_key_and_chain(key_path: str, cert_path: str):
    """The private key and certificate chain of a listener, checked to belong together.

    @return: (key, [certificate, intermediates...]) as C{cryptography} objects.
    @raise TlsError: naming the setting and the file.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    data = _read(key_path, "tls_key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TlsError("tls_key %r: the key is encrypted (give an unencrypted key, mode 0600)"
                       % key_path)
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError("tls_key %r: not a PEM private key" % key_path)
    chain = load_certificates(cert_path, "tls_cert")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    def spki(k):
        return k.public_bytes(pem, public)
    if spki(key.public_key()) != spki(chain[0].public_key()):
        raise TlsError("tls_key %r does not belong to the first certificate of tls_cert %r"
                       % (key_path, cert_path))
    return key, chain


def server_options(files):
    """Twisted TLS server options for a listener's L{TlsListener} keys (TLS 1.2 or later).

    With C{tls_client_ca}, a client must present a certificate signed by
    one of those CAs.

    @raise TlsError: a file is unreadable or does not hold what it should.
    """
    from OpenSSL import crypto
    from twisted.internet.ssl import CertificateOptions, TLSVersion
    key, chain = load_key_and_chain(files.tls_key, files.tls_cert)
    # Twisted's client-certificate check still takes pyOpenSSL certificates
    cas = [crypto.X509.from_cryptography(c)
           for c in load_certificates(files.tls_client_ca, "tls_client_ca")] \
        if files.tls_client_ca else None
    return CertificateOptions(
        privateKey=key, certificate=chain[0],
        extraCertChain=chain[1:], verify=cas is not None, caCerts=cas,
        requireCertificate=cas is not None, raiseMinimumTo=TLSVersion.TLSv1_2)


@implementer(IStreamServerEndpoint)
class TlsServerEndpoint:
    """A server endpoint that speaks TLS over another (plain) one.

    The key and certificates are loaded when it starts listening: a file
    that cannot be used fails the C{listen} Deferred with a L{TlsError}.
    """

    def __init__(self, inner, files, where: str):
        """
        @param inner: the plain L{IStreamServerEndpoint}.
        @param files: the listener's L{TlsListener} settings.
        @param where: the listener's name (C{"http"}), put first in errors.
        """
        self.inner = inner
        self.files = files
        self.where = where

    def listen(self, factory) -> defer.Deferred:
        from twisted.protocols.tls import TLSMemoryBIOFactory
        try:
            options = server_options(self.files)
        except TlsError as e:
            return defer.fail(TlsError("%s: %s" % (self.where, e)))
        return self.inner.listen(TLSMemoryBIOFactory(options, False, factory))


def server_endpoint(reactor, listen: str, files=None, where: str = "listener"):
    """The endpoint of a listener: C{listen} itself, wrapped in TLS when C{files} say so.

    @param listen: the configured Twisted endpoint string.
    @param files: a L{TlsListener} (or None: plain).
    """
    inner = serverFromString(reactor, listen)
    if files is None or not files.tls:
        return inner
    return TlsServerEndpoint(inner, files, where)


def listener_service(reactor, listen: str, files, factory, name: str):
    """A service listening on C{listen} (with TLS per C{files}) while running.

    Like C{twisted.application.strports.service}: a failure to listen that
    is known at once (a port in use, a TLS file gone) is raised by
    C{startService}.
    """
    from twisted.application.internet import StreamServerEndpointService
    svc = StreamServerEndpointService(server_endpoint(reactor, listen, files, name), factory)
    svc._raiseSynchronously = True
    svc.setName(name)
    return svc


def client_problem(tls: bool, ca: str, key: str, cert: str) -> str | None:
    """What is wrong with the TLS keys of a client connection (a Diameter peer), or None.

    @param tls: whether the connection speaks TLS at all.
    @param ca: PEM CA file the server certificate must chain to ("" = the system's).
    @param key, cert: the client certificate's key and chain ("" = none presented).
    """
    if not tls and (ca or key or cert):
        return "tls_ca, tls_key and tls_cert need tls = true"
    if bool(key) != bool(cert):
        return "tls_key and tls_cert must be given together"
    try:
        if ca:
            load_certificates(ca, "tls_ca")
        if key:
            load_key_and_chain(key, cert)
    except TlsError as e:
        return str(e)
    return None


def client_options(server_name: str, ca: str = "", key: str = "", cert: str = ""):
    """Twisted TLS client options (TLS 1.2 or later) verifying the server as C{server_name}.

    @param server_name: the host name or IP address the server certificate
        must be issued to (checked against its subjectAltName).
    @param ca: PEM file of the CAs the server certificate must chain to;
        "" trusts the system's CA store.
    @param key, cert: a client certificate to present (mutual TLS), or "".
    @raise TlsError: a file cannot be used.
    """
    from OpenSSL import crypto
    from twisted.internet import ssl
    if ca:
        trust = ssl.trustRootFromCertificates(
            [ssl.Certificate(crypto.X509.from_cryptography(c))
             for c in load_certificates(ca, "tls_ca")])
    else:
        trust = ssl.platformTrust()
    client = None
    if key:
        k, chain = load_key_and_chain(key, cert)
        client = ssl.PrivateCertificate.fromCertificateAndKeyPair(
            ssl.Certificate(crypto.X509.from_cryptography(chain[0])),
            ssl.KeyPair(crypto.PKey.from_cryptography_key(k)))
    return ssl.optionsForClientTLS(
        server_name, trustRoot=trust, clientCertificate=client,
        extraCertificateOptions={"raiseMinimumTo": ssl.TLSVersion.TLSv1_2})


def peer_subject(transport) -> str | None:
    """The subject (RFC 4514, e.g. C{CN=ussd-gw,O=Operator}) of the client certificate
    the connection's peer presented, or None (plain TCP, or no certificate asked).

    A listener with C{tls_client_ca} has verified it against those CAs.
    For a twisted.web request pass C{request.channel.transport}.
    """
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    cert = get()
    if cert is None:
        return None
    return cert.to_cryptography().subject.rfc4514_string()
