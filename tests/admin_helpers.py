"""Test support for the admin GUI: a node with its GUI on a real loopback listener, users of
every role, a cookie-keeping HTTP client, and throw-away partner certificates."""
from __future__ import annotations

import datetime as dt
import http.client
import os
import re
import shutil
import urllib.parse

import pytest
import pytest_twisted
from twisted.internet import threads

PASSWORD = "correct horse battery staple"
ROLE_USERS = {
    "admin": "administrator",
    "vm": "voucher_manager",
    "dist": "distributor",
    "hk": "housekeeping",
    "care": "customer_care",
    "rv": "report_viewer",
}
_HASH = []


def password_hash() -> str:
    """One Argon2id hash of PASSWORD, computed once per test run."""
    if not _HASH:
        from core.users import hash_password
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


def write_conf(conf_dir, **admin) -> str:
    """Tune a copied conf/ for tests: small chunks, no HTTP channels, GUI on port 0."""
    path = os.path.join(str(conf_dir), "ivoms.toml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = text.replace("chunk_size = 20000", "chunk_size = 200")
    text = text.replace("workers = 1\n", "workers = 0\n")
    text = re.sub(r"(\[http\]\n(?:#.*\n)*)enabled = true", r"\1enabled = false", text)
    text = text.replace('listen = "tcp:9464:interface=127.0.0.1"', 'listen = ""')   # no metrics port
    head, sep, rest = text.partition("\n[admin]\n")
    assert sep, "conf has no [admin] table"
    for k, v in admin.items():
        rest, n = re.subn(r"(?m)^%s = .*$" % k, "%s = %s" % (k, v), rest, count=1)
        assert n == 1, k
    text = head + sep + rest
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def init_instance(conf_path: str) -> None:
    """Keys, schema and the first administrator (C{admin}), like C{ivoms init}."""
    from core.db import sqlite_path
    from gateway.cli import main
    from gateway.config import load_config
    from tests.helpers import sqlite_template
    path = sqlite_path(load_config(conf_path).database.url)
    if path is not None and not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(sqlite_template(), path)   # already at head: init only seeds
    assert main(["--config", conf_path, "init", "--admin-password", PASSWORD]) == 0


def add_role_users(store) -> None:
    from core.users import add_user
    h = password_hash()

    def unit(tx):
        for name, role in ROLE_USERS.items():
            if name != "admin":
                add_user(tx, name, role, h, 0)
    store.run_sync(unit)


class AdminNode:
    """A node (store, runner, cipher, ledger activation) with the GUI listening on loopback."""

    def __init__(self, conf_path: str, reactor):
        from admin.app import make_site
        from gateway.adapters import admin_context
        from gateway.config import load_config
        from gateway.node import Node
        self.config = load_config(conf_path)
        self.node = Node(self.config, reactor)
        self.node.runner.start()
        self.site = make_site(admin_context(self.node, self.config.admin, reactor))
        self.ctx = self.site.admin_context
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.base = "http://127.0.0.1:%d" % self.port.getHost().port
        add_role_users(self.node.store)

    @property
    def store(self):
        return self.node.store

    def close(self) -> None:
        pytest_twisted.blockon(self.port.stopListening())
        pytest_twisted.blockon(self.node.runner.stop())
        self.node.passwords.stop()
        self.node.store.dispose()

    def client(self) -> "Client":
        return Client(self.base)

    async def logged_in(self, name: str) -> "Client":
        c = self.client()
        r = await c.login(name)
        assert r.status == 303, (r.status, r.text[:500])
        return c


@pytest.fixture
def admin_node(conf_dir, reactor):
    path = write_conf(conf_dir)
    init_instance(path)
    n = AdminNode(path, reactor)
    yield n
    n.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]


class Client:
    """A tiny browser: keeps cookies, remembers the last page's CSRF token.

    Tests run on the reactor (pytest-twisted), so each request runs in a
    thread and its methods are coroutines: C{r = await client.get("/")}.
    """

    def __init__(self, base: str):
        self.base = base
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None

    def _do(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            h = dict(headers or {})
            if self.cookies:
                h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    async def request(self, method, path, body=None, headers=None) -> Response:
        r = await threads.deferToThread(self._do, method, path, body, headers)
        for c in r.cookies():
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if "max-age=0" in c.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        m = re.search(r'name="csrf" value="([^"]+)"', r.text) if r.body else None
        if m:
            self.csrf = m.group(1)
        return r

    async def get(self, path) -> Response:
        return await self.request("GET", path)

    async def post(self, path, data=None, *, csrf=True) -> Response:
        fields = dict(data or {})
        if csrf and "csrf" not in fields and self.csrf:
            fields["csrf"] = self.csrf
        body = urllib.parse.urlencode(fields).encode()
        return await self.request("POST", path, body,
                            {"Content-Type": "application/x-www-form-urlencoded"})

    async def login(self, name, password=PASSWORD) -> Response:
        await self.get("/login")
        return await self.post("/login", {"username": name, "password": password})


_PARTNER_KEYS: dict = {}


def partner_key(name: str):
    """A throw-away 2048-bit RSA key for partner C{name}, made once per test run.

    Partners of different names have different keys; making a key costs a
    large part of a second, which is not what the tests that use it check.
    """
    if name not in _PARTNER_KEYS:
        from cryptography.hazmat.primitives.asymmetric import rsa
        _PARTNER_KEYS[name] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _PARTNER_KEYS[name]


def partner_cert(tmp_path, name="Partner"):
    """A throw-away RSA key and self-signed certificate; returns (cert_pem, cert_path, key_path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    key = partner_key(name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = os.path.join(str(tmp_path), "%s.crt" % name)
    key_path = os.path.join(str(tmp_path), "%s.key" % name)
    with open(cert_path, "wb") as f:
        f.write(pem)
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return pem.decode("ascii"), cert_path, key_path
