"""The shared HTTP listener: mounts, health, body cap, access log without query strings."""
from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet import threads

from gateway.cli import main
from gateway.config import load_config


def _request(port, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


@pytest_twisted.ensureDeferred
async def test_site_mounts_channels_and_caps_bodies(conf_dir, reactor):
    from twisted.internet import endpoints

    from gateway.http import make_site
    from protocols.common.http_log import access_log_line
    from gateway.node import Node
    path = conf_dir / "ivoms.toml"
    path.write_text(path.read_text().replace("max_body_bytes = 1048576", "max_body_bytes = 1000"))
    assert main(["--config", str(path), "init"]) == 0
    node = Node(load_config(str(path)), reactor)
    node.runner.start()
    site = make_site(node)
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    p = port.getHost().port
    try:
        health = await threads.deferToThread(
            _request, p, b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
        assert b" 200 " in health.split(b"\r\n")[0] and b'"status": "ok"' in health
        index = await threads.deferToThread(_request, p, b"GET / HTTP/1.0\r\n\r\n")
        for mount in (b"/ivr", b"/soap", b"/web"):
            assert mount in index
        big = await threads.deferToThread(
            _request, p, b"POST /soap HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
        assert big.startswith(b"HTTP/1.1 413")
        chunked = b"POST /web/recharge HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + \
            b"".join(b"200\r\n" + b"y" * 512 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
        assert (await threads.deferToThread(_request, p, chunked)).startswith(b"HTTP/1.1 413")
        # the listener still serves after refusing
        again = await threads.deferToThread(_request, p, b"GET /health HTTP/1.0\r\n\r\n")
        assert b" 200 " in again.split(b"\r\n")[0]
    finally:
        await port.stopListening()
        await node.runner.stop()

    class Req:
        uri = b"/ivr/activate?hrn=12345678901234&msisdn=381641234567"
        method = b"GET"
        clientproto = b"HTTP/1.1"
        code = 200
        sentLength = 10

        def getClientAddress(self):
            return type("A", (), {"host": "127.0.0.1"})()
    line = access_log_line("[ts]", Req())
    assert "/ivr/activate" in line and "12345678901234" not in line and "msisdn" not in line
