"""TLS on the listeners (issue 18 point 6): configuration checks, HTTPS with real clients,
client certificates, and the whole node's listeners over TLS in one process.

The certificates are made per test (L{tests.tls_helpers}); every client pins
the test CA and checks the host name, so a passing request proves the
server presented the configured certificate.
"""
from __future__ import annotations

import http.client
import os
import socket
import ssl

import pytest
import pytest_twisted
from twisted.internet import threads
from twisted.web import resource, server

from core.settings import ConfigError, build
from core.tls import TlsError, listener_service, peer_subject, server_endpoint
from gateway.config import HttpSettings
from gateway.config_billing import DiameterPeer
from gateway.listeners import describe_start_failure
from protocols.smpp.config import ServerSettings
from tests.tls_helpers import encrypted_key, make_pki, plain_exchange


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


def https_get(port, path, ctx, host="localhost", timeout=10.0):
    """(status, body) of a GET over TLS with C{ctx}, connecting to 127.0.0.1 as C{host}."""
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    if host != "127.0.0.1":
        conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout),
                                    server_hostname=host)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def handshake_error(port, ctx, host="localhost"):
    """The exception a TLS client with C{ctx} gets from the listener (None: it got a page)."""
    try:
        https_get(port, "/", ctx, host)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError) as e:
        return e
    return None


# -- the configuration check ----------------------------------------------------------------
def http_settings(**values):
    return build(HttpSettings, values, file="conf/ivoms.toml", key="http", base_dir="/")


def test_tls_keys_give_a_tls_listener(pki):
    s = http_settings(tls_key=pki.server_key, tls_cert=pki.server_cert)
    assert s.tls and not http_settings().tls


@pytest.mark.parametrize("case,message", [
    ("missing key", "conf/ivoms.toml: http.tls_key: cannot read '{d}/nope.pem': "
                    "No such file or directory"),
    ("folder as cert", "conf/ivoms.toml: http.tls_cert: '{d}' is a directory, not a file"),
    ("cert not PEM", "conf/ivoms.toml: http: tls_cert '{d}/server-key.pem': "
                     "no PEM certificate in it"),
    ("key not PEM", "conf/ivoms.toml: http: tls_key '{d}/server-cert.pem': not a PEM private key"),
    ("key of another cert", "conf/ivoms.toml: http: tls_key '{d}/client-key.pem' does not belong "
                            "to the first certificate of tls_cert '{d}/server-cert.pem'"),
    ("encrypted key", "conf/ivoms.toml: http: tls_key '{d}/locked.pem': the key is encrypted"),
    ("key alone", "conf/ivoms.toml: http: tls_key and tls_cert must be given together"),
    ("client ca alone", "conf/ivoms.toml: http: tls_client_ca needs tls_key and tls_cert"),
    ("bad client ca", "conf/ivoms.toml: http: tls_client_ca '{d}/server-key.pem': "
                      "no PEM certificate in it"),
    ("ssl endpoint", "conf/ivoms.toml: http: with tls_key and tls_cert the endpoint must be "
                     "a plain one"),
])
def test_a_bad_tls_file_is_a_config_error_naming_file_key_and_reason(pki, case, message):
    d = pki.folder
    encrypted_key(os.path.join(d, "locked.pem"))
    values = {
        "missing key": dict(tls_key=d + "/nope.pem", tls_cert=pki.server_cert),
        "folder as cert": dict(tls_key=pki.server_key, tls_cert=d),
        "cert not PEM": dict(tls_key=pki.server_key, tls_cert=pki.server_key),
        "key not PEM": dict(tls_key=pki.server_cert, tls_cert=pki.server_cert),
        "key of another cert": dict(tls_key=pki.client_key, tls_cert=pki.server_cert),
        "encrypted key": dict(tls_key=d + "/locked.pem", tls_cert=pki.server_cert),
        "key alone": dict(tls_key=pki.server_key),
        "client ca alone": dict(tls_client_ca=pki.ca),
        "bad client ca": dict(tls_key=pki.server_key, tls_cert=pki.server_cert,
                              tls_client_ca=pki.server_key),
        "ssl endpoint": dict(tls_key=pki.server_key, tls_cert=pki.server_cert,
                             listen="ssl:8443:privateKey=%s" % pki.server_key.replace(":", "\\:")),
    }[case]
    with pytest.raises(ConfigError) as e:
        http_settings(**values)
    assert str(e.value).startswith(message.format(d=d)), str(e.value)


def test_the_same_keys_are_checked_for_the_smpp_listener_and_a_diameter_peer(pki):
    with pytest.raises(ConfigError, match=r"smpp.server: tls_key .* does not belong"):
        build(ServerSettings, {"tls_key": pki.client_key, "tls_cert": pki.server_cert},
              file="f", key="smpp.server", base_dir="/")
    with pytest.raises(ConfigError, match=r"peers\[0\]: tls_ca, tls_key and tls_cert need tls"):
        build(DiameterPeer, {"tls_ca": pki.ca}, file="f", key="peers[0]", base_dir="/")
    with pytest.raises(ConfigError, match=r"peers\[0\].tls_ca: cannot read"):
        build(DiameterPeer, {"tls": True, "tls_ca": pki.folder + "/x.pem"}, file="f",
              key="peers[0]", base_dir="/")
    peer = build(DiameterPeer, {"tls": True, "tls_ca": pki.ca, "tls_key": pki.client_key,
                                "tls_cert": pki.client_cert}, file="f", key="p", base_dir="/")
    assert peer.tls and peer.tls_ca == pki.ca


def test_an_ssl_endpoint_string_names_a_missing_file(pki):
    from core.endpoint_check import server_endpoint_problem
    ok = "ssl:8443:interface=127.0.0.1:privateKey=%s:certKey=%s" % (pki.server_key,
                                                                    pki.server_cert)
    assert server_endpoint_problem(ok) is None
    gone = "ssl:8443:privateKey=%s/gone.pem" % pki.folder
    assert server_endpoint_problem(gone) == ("privateKey: cannot read '%s/gone.pem': "
                                             "No such file or directory" % pki.folder)
    assert "needs privateKey=" in server_endpoint_problem("ssl:8443")


def test_a_file_gone_after_the_check_fails_the_start_in_one_line(pki, reactor, tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes(open(pki.server_key, "rb").read())
    s = http_settings(listen="tcp:0:interface=127.0.0.1", tls_key=str(key),
                      tls_cert=pki.server_cert)
    key.unlink()
    svc = listener_service(reactor, s.listen, s, server.Site(resource.Resource()), "http")
    with pytest.raises(TlsError) as e:
        svc.startService()
    line = describe_start_failure(e.value, None)
    assert line == "cannot start: http: tls_key %r: cannot read: No such file or directory" % (
        str(key),)


# -- real TLS clients -----------------------------------------------------------------------
class Whoami(resource.Resource):
    """Answers the subject of the client certificate, and whether the request is secure."""

    isLeaf = True

    def render_GET(self, request):
        subject = peer_subject(request.channel.transport)
        return ("%s secure=%s" % (subject, request.isSecure())).encode()


async def listen(reactor, settings):
    port = await server_endpoint(reactor, settings.listen, settings, "test").listen(
        server.Site(Whoami()))
    return port, port.getHost().port


@pytest_twisted.ensureDeferred
async def test_https_with_a_pinned_ca_and_host_name_check(pki, reactor):
    s = http_settings(listen="tcp:0:interface=127.0.0.1", tls_key=pki.server_key,
                      tls_cert=pki.server_cert)
    port, p = await listen(reactor, s)
    try:
        for host in ("localhost", "127.0.0.1"):
            status, body = await threads.deferToThread(https_get, p, "/", pki.client_context(),
                                                       host)
            assert (status, body) == (200, b"None secure=True")
        # a client trusting another CA refuses the certificate
        e = await threads.deferToThread(handshake_error, p, pki.client_context(ca=pki.other_ca))
        assert isinstance(e, ssl.SSLCertVerificationError), e
        # ...and so does one expecting another host name
        e = await threads.deferToThread(handshake_error, p, pki.client_context(), "ocs.example")
        assert isinstance(e, ssl.SSLCertVerificationError) and "ocs.example" in str(e), e
        # a plain HTTP client gets no HTTP answer from the TLS port
        raw = await threads.deferToThread(plain_exchange, p, b"GET / HTTP/1.0\r\n\r\n")
        assert b"HTTP/1." not in raw and b"secure" not in raw
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_client_certificates_signed_by_the_configured_ca_are_required(pki, reactor):
    s = http_settings(listen="tcp:0:interface=127.0.0.1", tls_key=pki.server_key,
                      tls_cert=pki.server_cert, tls_client_ca=pki.ca)
    port, p = await listen(reactor, s)
    try:
        status, body = await threads.deferToThread(https_get, p, "/",
                                                   pki.client_context(cert=True))
        assert (status, body) == (200, b"CN=ussd-gw,O=iVOMS test secure=True")
        assert await threads.deferToThread(handshake_error, p, pki.client_context()) is not None
        assert await threads.deferToThread(handshake_error, p,
                                           pki.client_context(rogue=True)) is not None
    finally:
        await port.stopListening()


def test_peer_subject_of_a_plain_connection_is_none():
    class Plain:
        pass
    assert peer_subject(Plain()) is None


def test_a_diameter_peer_of_the_config_reaches_the_client_with_its_tls_keys(pki, reactor):
    from billing.diameter.config import from_mapping
    from billing.diameter.node.client import peer_endpoint
    _, _, transport, _ = from_mapping({"peers": [
        {"host": "127.0.0.1", "port": 5658, "tls": True, "tls_ca": pki.ca,
         "tls_server_name": "localhost"},
        {"host": "127.0.0.1", "port": 3868},
        {"host": "127.0.0.1", "port": 5659, "tls": True, "tls_ca": pki.folder + "/gone.pem"}]})
    tls, plain, gone = transport.peers
    assert (tls.tls, tls.tls_ca, tls.tls_server_name) == (True, pki.ca, "localhost")
    assert not plain.tls
    from twisted.internet.endpoints import TCP4ClientEndpoint
    assert isinstance(peer_endpoint(reactor, plain, 5.0), TCP4ClientEndpoint)
    assert not isinstance(peer_endpoint(reactor, tls, 5.0), TCP4ClientEndpoint)
    with pytest.raises(TlsError) as e:
        peer_endpoint(reactor, gone, 5.0)
    assert str(e.value) == ("billing.diameter peer 127.0.0.1:5659: tls_ca '%s/gone.pem': "
                            "cannot read: No such file or directory" % pki.folder)
