"""Test certificates made with C{cryptography}: a CA, a server certificate for
C{localhost}/C{127.0.0.1} and client certificates, written as PEM files."""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "iVOMS test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject, key, issuer, issuer_key, *, ca=False, hosts=(), usage=None, days=30):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                          False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False)
    else:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if hosts:
        sans = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem_key(key, password: bytes | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    """PEM files in a folder: C{ca}, C{server_key}/C{server_cert}, C{client_key}/C{client_cert}
    (signed by the CA) and C{other_ca}, C{rogue_key}/C{rogue_cert} (a client of another CA)."""

    folder: str
    ca: str
    server_key: str
    server_cert: str
    client_key: str
    client_cert: str
    other_ca: str
    rogue_key: str
    rogue_cert: str

    def client_context(self, *, ca: str | None = None, cert: bool = False,
                       rogue: bool = False) -> ssl.SSLContext:
        """A client context pinned to C{ca} (default: this CA), checking the host name,
        presenting the client (or the rogue) certificate when asked."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or self.ca)
        assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
        if cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        if rogue:
            ctx.load_cert_chain(self.rogue_cert, self.rogue_key)
        return ctx


def make_pki(folder) -> Pki:
    """Write a test PKI into C{folder} (keys mode 0600)."""
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    ca_key, other_key = _key(), _key()
    ca = _cert(_name("iVOMS test CA"), ca_key, _name("iVOMS test CA"), ca_key, ca=True)
    other = _cert(_name("Other CA"), other_key, _name("Other CA"), other_key, ca=True)
    srv_key, cli_key, rogue_key = _key(), _key(), _key()
    srv = _cert(_name("localhost"), srv_key, ca.subject, ca_key,
                hosts=("localhost", "127.0.0.1"), usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    cli = _cert(_name("ussd-gw"), cli_key, ca.subject, ca_key,
                usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    rogue = _cert(_name("rogue"), rogue_key, other.subject, other_key,
                  usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    files = {}

    def write(name, data, mode=0o644):
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        files[name.replace(".pem", "").replace("-", "_")] = path
    write("ca.pem", _pem(ca))
    write("other-ca.pem", _pem(other))
    write("server-key.pem", _pem_key(srv_key), 0o600)
    write("server-cert.pem", _pem(srv))
    write("client-key.pem", _pem_key(cli_key), 0o600)
    write("client-cert.pem", _pem(cli))
    write("rogue-key.pem", _pem_key(rogue_key), 0o600)
    write("rogue-cert.pem", _pem(rogue))
    return Pki(folder=folder, **files)


def encrypted_key(path: str, password: bytes = b"secret") -> None:
    """Write a new passphrase-protected key to C{path}."""
    with open(path, "wb") as f:
        f.write(_pem_key(_key(), password))


def plain_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send C{data} over plain TCP and read until the peer closes (or goes silent)."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out.append(chunk)
        except (socket.timeout, ConnectionResetError):
            pass
    return b"".join(out)
