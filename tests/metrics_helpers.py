"""Test support for the metrics tests: an initialised instance on chosen loopback ports,
available HRNs, and scraping /metrics into {(name, labels): value}."""
from __future__ import annotations

import socket

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from twisted.web.client import Agent, readBody

from core.schema import voucher
from gateway.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict:
    """{(sample name, sorted label items): value} of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(got: dict, name: str, **labels) -> float | None:
    return got.get((name, tuple(sorted(labels.items()))))


async def scrape(reactor, port: int) -> str:
    agent = Agent(reactor)
    response = await agent.request(b"GET", b"http://127.0.0.1:%d/metrics" % port)
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    return (await readBody(response)).decode()


def metrics_instance(conf_dir, metrics_port, http_port, smpp_port=0):
    """A copied conf/ with its listeners on these ports (admin on an ephemeral one), C{on_http},
    initialised with demo stock; its path."""
    path = conf_dir / "ivoms.toml"
    text = path.read_text()
    text = text.replace('"tcp:8081:interface=127.0.0.1"', '"tcp:0:interface=127.0.0.1"')
    text = text.replace('"tcp:2775:interface=127.0.0.1"', '"tcp:%d:interface=127.0.0.1"' % smpp_port)
    text = text.replace('"tcp:8080:interface=127.0.0.1"', '"tcp:%d:interface=127.0.0.1"' % http_port)
    text = text.replace('"tcp:9464:interface=127.0.0.1"', '"tcp:%d:interface=127.0.0.1"'
                        % metrics_port)
    text = text.replace("on_http = false", "on_http = true")
    path.write_text(text)
    assert main(["--config", str(path), "init", "--demo", "--admin-password",
                 "metrics-test-password-1"]) == 0
    return str(path)


def available_hrns(node, count):
    """HRNs of the first C{count} available vouchers."""
    rows = node.store.run_sync(lambda tx: tx.execute(
        select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
        .where(voucher.c.state == "available").order_by(voucher.c.serial).limit(count)).rows)
    return [node.cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows]
