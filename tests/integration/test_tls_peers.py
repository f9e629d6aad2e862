"""TLS with real peers (issue 18 point 6): SMPP over TLS with smpplib on Python's C{ssl},
Diameter over TLS to the billing simulator in its own process, and an C{ivoms run}
node with every listener on TLS.

The certificates are made per module (L{tests.tls_helpers}); every client pins the
test CA and checks the host name.
"""
from __future__ import annotations

import socket
import ssl
import struct
import subprocess

import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from billing.sim.process import SimProcess
from core.results import ResultCode as R
from protocols.smpp.config import AccountSettings, ServerSettings, SmppSettings
from tests.helpers import make_batch, voucher_row
from tests.integration.test_diameter_sim import connector, env  # noqa: F401 (fixture)
from tests.integration.test_node_lifecycle import (  # noqa: F401 (fixtures)
    ENV, IVOMS, REPO, conf_dir, free_port, nodes, write_config)
from tests.integration.test_smpp_peers import (
    Stack, smpplib_exchange, reply_text, spaced, with_deadline)
from tests.tls_helpers import make_pki, plain_exchange
from tests.unit.test_tls import handshake_error, https_get

pytestmark = pytest.mark.integration

#: bind_transceiver of system_id "smsc", password "secret" (SMPP 3.4).
BIND = b"smsc\0secret\0\0\x34\0\0\0"
BIND_PDU = struct.pack(">IIII", 16 + len(BIND), 0x00000009, 0, 1) + BIND


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


class Verified:
    """An C{ssl_context} for smpplib (which wraps without a server name): verifies as C{host}."""

    def __init__(self, ctx: ssl.SSLContext, host: str = "127.0.0.1"):
        self.ctx, self.host = ctx, host

    def wrap_socket(self, sock):
        return self.ctx.wrap_socket(sock, server_hostname=self.host)


def bind_over_tls(port: int, ctx: ssl.SSLContext):
    """Send a bind over TLS with C{ctx}: None when a bind_transceiver_resp came back,
    else the exception (or the bytes) the client got instead."""
    try:
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                             server_hostname="127.0.0.1") as s:
            s.sendall(BIND_PDU)
            head = s.recv(16)
    except (ssl.SSLError, ConnectionError, socket.timeout) as e:
        return e
    if len(head) >= 8 and struct.unpack(">I", head[4:8])[0] == 0x80000009:
        return None
    return ConnectionError("no bind_transceiver_resp: %r" % head)


# -- SMPP ----------------------------------------------------------------------------------
def tls_server_settings(pki, **tls) -> SmppSettings:
    return SmppSettings(server=ServerSettings(
        enabled=True, endpoint="tcp:0:interface=127.0.0.1",
        accounts=[AccountSettings(system_id="smsc", password="secret")],
        tls_key=pki.server_key, tls_cert=pki.server_cert, **tls))


@pytest_twisted.inlineCallbacks
def test_smpp_over_tls_binds_and_recharges(tmp_path, pki):
    stack = Stack(tmp_path)
    try:
        port = yield stack.start(tls_server_settings(pki))
        hrn = stack.hrns[0]
        sent, got = yield with_deadline(threads.deferToThread(
            smpplib_exchange, port, [("RECHARGE " + spaced(hrn)).encode()],
            Verified(pki.client_context())), 30)
        assert [s for s, _ in sent] == [0]
        assert reply_text(got).startswith("Your account was credited with 10.00 EUR.")
        # a plain SMPP bind to the TLS port gets no bind_transceiver_resp
        raw = yield threads.deferToThread(plain_exchange, port, BIND_PDU)
        assert len(raw) < 8 or struct.unpack(">I", raw[4:8])[0] != 0x80000009
        # a client that does not trust the certificate never gets as far as a bind
        e = yield threads.deferToThread(bind_over_tls, port, pki.client_context(ca=pki.other_ca))
        assert isinstance(e, ssl.SSLCertVerificationError), e
    finally:
        yield stack.stop()


@pytest_twisted.inlineCallbacks
def test_smpp_over_tls_with_client_certificates(tmp_path, pki):
    stack = Stack(tmp_path)
    try:
        port = yield stack.start(tls_server_settings(pki, tls_client_ca=pki.ca))
        assert (yield threads.deferToThread(bind_over_tls, port,
                                            pki.client_context(cert=True))) is None
        sent, got = yield with_deadline(threads.deferToThread(
            smpplib_exchange, port, [b"HELLO"], Verified(pki.client_context(cert=True))), 30)
        assert [s for s, _ in sent] == [0]
        assert reply_text(got).startswith("To recharge, send RECHARGE/TOPUP")
        for ctx in (pki.client_context(), pki.client_context(rogue=True)):
            e = yield threads.deferToThread(bind_over_tls, port, ctx)
            assert isinstance(e, (ssl.SSLError, ConnectionError)), e
    finally:
        yield stack.stop()


# -- Diameter ------------------------------------------------------------------------------
def tls_peer(pki, port, **more):
    return {"peers": [dict({"host": "127.0.0.1", "port": port, "tls": True, "tls_ca": pki.ca,
                            "tls_server_name": "localhost"}, **more)]}


@pytest_twisted.ensureDeferred
async def test_diameter_over_tls_to_the_simulator(env, pki):
    info, hrns = make_batch(env.store, env.cipher, 1)
    sim = env.sim("--tls-key", pki.server_key, "--tls-cert", pki.server_cert)
    await env.start(sim.diameter_port, **tls_peer(pki, sim.diameter_port))
    (serial, hrn), = hrns.items()
    r = await env.activate(hrn)
    assert r.code == R.SUCCESS and r.balance == 1000
    assert voucher_row(env.store, serial)[0] == "used"
    link, = env.client.links
    cert = link.proto.transport.getPeerCertificate()
    assert cert.to_cryptography().subject.rfc4514_string() == "CN=localhost,O=iVOMS test"


@pytest_twisted.ensureDeferred
async def test_diameter_tls_peer_is_not_opened_without_trust_or_over_plain_tcp(env, pki):
    sim = env.sim("--tls-key", pki.server_key, "--tls-cert", pki.server_cert)
    port = sim.diameter_port
    for what, peer in (("pinned to another CA", tls_peer(pki, port, tls_ca=pki.other_ca)),
                       ("expecting another name", tls_peer(pki, port, tls_server_name="ocs")),
                       ("plain TCP", {})):
        client, _ = connector(reactor, port, **peer)
        client.startService()
        try:
            assert not await client.when_open(3), what
        finally:
            await client.stopService()
    # the same simulator opens for a client that trusts it
    client, _ = connector(reactor, port, **tls_peer(pki, port))
    client.startService()
    try:
        assert await client.when_open(10)
    finally:
        await client.stopService()


@pytest_twisted.ensureDeferred
async def test_diameter_mutual_tls_with_the_simulator(env, pki):
    info, hrns = make_batch(env.store, env.cipher, 1)
    sim = env.sim("--tls-key", pki.server_key, "--tls-cert", pki.server_cert,
                  "--tls-client-ca", pki.ca)
    await env.start(sim.diameter_port, **tls_peer(pki, sim.diameter_port, tls_key=pki.client_key,
                                                  tls_cert=pki.client_cert))
    (serial, hrn), = hrns.items()
    assert (await env.activate(hrn)).code == R.SUCCESS


def test_the_simulator_refuses_a_bad_certificate_in_one_line(pki):
    with pytest.raises(RuntimeError):
        SimProcess.spawn("--tls-key", pki.client_key, "--tls-cert", pki.server_cert, timeout=10)
    run = subprocess.run(IVOMS + ["billing-sim", "--diameter", "tcp:0:interface=127.0.0.1",
                                  "--tls-key", pki.client_key, "--tls-cert", pki.server_cert],
                         cwd=REPO, env=ENV, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "does not belong to the first certificate of tls_cert" in run.stderr
    assert "Traceback" not in run.stderr


# -- a whole node --------------------------------------------------------------------------
def tls_config(conf_dir, pki, *, key=None):
    """A node config with every listener on TLS (metrics also asking client certificates)."""
    key = key or pki.server_key
    eps = {n: "tcp:%d:interface=127.0.0.1" % free_port() for n in ("http", "admin", "smpp")}
    metrics = "tcp:%d:interface=127.0.0.1" % free_port()
    files = 'tls_key = "%s"\ntls_cert = "%s"\n' % (key, pki.server_cert)
    path, chosen = write_config(conf_dir, eps, {
        'listen = "%s"' % eps["http"]: 'listen = "%s"\n%s' % (eps["http"], files),
        'endpoint = "%s"' % eps["smpp"]: 'endpoint = "%s"\n%s' % (eps["smpp"], files),
        'tls_key = ""\ntls_cert = ""\n': files,
        'listen = "tcp:9464:interface=127.0.0.1"':
            'listen = "%s"\n%stls_client_ca = "%s"\n' % (metrics, files, pki.ca)})
    chosen["metrics"] = metrics
    return path, {n: int(ep.split(":")[1]) for n, ep in chosen.items()}


def test_a_node_serves_every_listener_over_tls(conf_dir, nodes, pki):
    path, ports = tls_config(conf_dir, pki)
    check = subprocess.run(IVOMS + ["--config", str(path), "check-config"], cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "http.listen" in check.stdout and "(TLS)" in check.stdout
    assert "(TLS, client certificate required)" in check.stdout
    node = nodes(path)
    node.wait_for("node started")
    ctx = pki.client_context()
    # HTTP channels and the GUI
    status, body = https_get(ports["http"], "/health", ctx)
    assert status == 200 and b'"status": "ok"' in body
    status, body = https_get(ports["http"], "/web/", ctx)
    assert status == 200 and b"<form" in body
    status, body = https_get(ports["admin"], "/login", ctx)
    assert status == 200 and b'type="password"' in body
    assert b"HTTP/1." not in plain_exchange(ports["http"], b"GET /health HTTP/1.0\r\n\r\n")
    assert b"HTTP/1." not in plain_exchange(ports["admin"], b"GET /login HTTP/1.0\r\n\r\n")
    # metrics ask a client certificate of the test CA
    status, body = https_get(ports["metrics"], "/metrics", pki.client_context(cert=True))
    assert status == 200 and b"ivoms_" in body
    assert handshake_error(ports["metrics"], ctx) is not None
    # SMPP: the shipped demo account binds over TLS and gets the help text
    sent, got = smpplib_exchange(ports["smpp"], [b"HELLO"], Verified(ctx),
                                  system_id="demo", password="demo1234")
    assert [s for s, _ in sent] == [0] and reply_text(got).startswith("To recharge")


def test_a_bad_certificate_is_refused_by_check_config_and_by_run(conf_dir, nodes, pki):
    path, ports = tls_config(conf_dir, pki, key=pki.client_key)
    check = subprocess.run(IVOMS + ["--config", str(path), "check-config"], cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=60)
    expected = ("ivoms: error: %s: http: tls_key %r does not belong to the first certificate "
                "of tls_cert %r\n" % (path, pki.client_key, pki.server_cert))
    assert (check.returncode, check.stderr) == (1, expected)
    node = nodes(path)
    assert node.wait() == 1
    assert "".join(node.err) == expected
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ports["http"]), timeout=1).close()
