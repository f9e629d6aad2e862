"""GET /metrics of a real node after known traffic, parsed with prometheus_client's parser.

The node is the full service tree of a copied conf/ (demo stock, embedded
ledger), started in-process on loopback; activations go through its
activation service and the scrape over TCP to the metrics listener and to
C{/metrics} on the HTTP listener.
"""
from __future__ import annotations

import collections
import threading
import time

import pytest_twisted
from sqlalchemy import func, select
from twisted.internet import task, threads

from core.requests import ActivationRequest
from core.schema import batch, voucher
from gateway.config import load_config
from tests.metrics_helpers import (available_hrns, free_port, metrics_instance, samples,
                                   scrape, value)


def _stock(node):
    rows = node.store.run_sync(lambda tx: tx.execute(
        select(batch.c.type_code, voucher.c.state, func.count())
        .select_from(voucher.join(batch, batch.c.id == voucher.c.batch_id))
        .group_by(batch.c.type_code, voucher.c.state)).rows)
    return {(t, s): n for t, s, n in rows}


@pytest_twisted.ensureDeferred
async def test_metrics_after_known_traffic(conf_dir, reactor):
    from gateway.service import make_service
    metrics_port, http_port = free_port(), free_port()
    cfg = load_config(metrics_instance(conf_dir, metrics_port, http_port))
    top = make_service(cfg, reactor)
    node = top.node
    assert top.getServiceNamed("metrics") is not None
    scheduler = top.getServiceNamed("housekeeping")
    started, run = [], scheduler.housekeeper.run

    def watched_run(job, **kw):       # the Deferred of the start-up reconcile run
        d = run(job, **kw)
        started.append(d)
        return d
    scheduler.housekeeper.run = watched_run
    top.startService()
    try:
        await scheduler.armed
        await started[0]
        good, = available_hrns(node, 1)
        results = []

        async def activate(channel, msisdn, hrn, source=None):
            r = await node.activation.activate(ActivationRequest(
                msisdn=msisdn, hrn=hrn, channel=channel, source=source))
            results.append((channel, int(r.code)))
            return int(r.code)

        assert await activate("ussd", "0641234567", good) == 0
        assert await activate("ussd", "0641234567", good) == 107
        assert await activate("web", "0641234567", "123") == 119          # malformed HRN
        for _ in range(5):                                                  # guessing: barred
            await activate("sms", "0647777777", "12345678901234", source="smsc1")
        assert await activate("sms", "0647777777", "12345678901234", source="smsc1") == 103

        text = await scrape(reactor, metrics_port)
        got = samples(text)
        # activations by channel and result code, exactly
        expected = collections.Counter(results)
        for (channel, code), n in expected.items():
            found = [v for (name, labels), v in got.items()
                     if name == "ivoms_activations_total"
                     and dict(labels)["channel"] == channel and dict(labels)["code"] == str(code)]
            assert found == [n], (channel, code, found)
        assert sum(v for (name, _), v in got.items() if name == "ivoms_activations_total") == 9
        assert value(got, "ivoms_activations_total", channel="ussd", code="107",
                     result="VOUCHER_ALREADY_USED_BY_YOU") == 1
        assert value(got, "ivoms_activation_seconds_count", channel="ussd") == 2
        assert value(got, "ivoms_activation_seconds_count", channel="sms") == 6
        # billing: one credit, through the embedded ledger in the activation's unit of work
        assert value(got, "ivoms_billing_requests_total", connector="ledger", peer="embedded",
                     operation="credit", result="SUCCESS") == 1
        assert sum(v for (name, _), v in got.items()
                   if name == "ivoms_billing_requests_total") == 1
        assert value(got, "ivoms_billing_request_seconds_count", connector="ledger",
                     operation="credit") == 1
        assert value(got, "ivoms_billing_peer_up", connector="ledger", peer="embedded") == 1
        # units of work: every committed batch observed once, every unit counted
        assert value(got, "ivoms_unit_batch_size_count") == node.runner.batches
        assert value(got, "ivoms_unit_batch_size_sum") == node.runner.units
        assert value(got, "ivoms_unit_queue_depth", lane="foreground") == 0
        # housekeeping: the start-up reconcile
        assert value(got, "ivoms_housekeeping_runs_total", job_name="reconcile", outcome="ok") == 1
        assert value(got, "ivoms_housekeeping_run_seconds_count", job_name="reconcile") == 1
        # stock by type and state, as the store counts it
        stock = _stock(node)
        assert {(dict(labels)["type"], dict(labels)["state"]): v for (name, labels), v
                in got.items() if name == "ivoms_voucher_stock"} == stock
        assert sum(n for (t, s), n in stock.items() if s == "used") == 1
        # fraud: one MSISDN barred, one source counted
        assert value(got, "ivoms_fraud_barred", kind="msisdn") == 1
        assert value(got, "ivoms_fraud_counted", kind="msisdn") == 1
        assert value(got, "ivoms_fraud_counted", kind="source") == 1
        # SMPP: the server account is configured, nothing bound; MO counters present
        assert any(name == "ivoms_smpp_binds" for name, _ in got)
        assert value(got, "ivoms_smpp_messages_total", direction="mo", kind="mo") == 0
        # process metrics
        assert value(got, "process_cpu_seconds_total") is not None
        # never a subscriber number or an HRN
        for secret in ("641234567", "647777777", good, "12345678901234"):
            assert secret not in text

        # the same registry on the HTTP listener; the store figures are cached
        second, = available_hrns(node, 1)
        assert await activate("ussd", "0641234568", second) == 0
        got2 = samples(await scrape(reactor, http_port))
        assert value(got2, "ivoms_activations_total", channel="ussd", code="0",
                     result="SUCCESS") == 2
        assert {(dict(labels)["type"], dict(labels)["state"]): v for (name, labels), v
                in got2.items() if name == "ivoms_voucher_stock"} == stock      # not read again
        figures = top.getServiceNamed("metrics").factory.resource.children[b"metrics"].figures
        assert figures.reads == 1
    finally:
        await top.stopService()


def _smpp_session(port, texts, replies, bound, release):
    """Bind as the demo account, send C{texts}, read C{len(texts)} replies, stay bound
    until C{release} is set, then unbind."""
    import smpplib.client
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    client.set_message_received_handler(lambda pdu: replies.append(pdu.short_message))
    client.connect()
    try:
        client.bind_transceiver(system_id="demo", password="demo1234")
        bound.set()
        for text in texts:
            client.send_message(source_addr_ton=1, source_addr_npi=1, source_addr="381641112223",
                                dest_addr_ton=0, dest_addr_npi=0, destination_addr="1555",
                                short_message=text, data_coding=0)
        deadline = time.monotonic() + 20
        while len(replies) < len(texts) and time.monotonic() < deadline:
            client.read_once()
        release.wait(20)
        client.unbind()
    finally:
        client.disconnect()


@pytest_twisted.ensureDeferred
async def test_smpp_binds_and_messages(conf_dir, reactor):
    from gateway.service import make_service
    metrics_port, http_port, smpp_port = free_port(), free_port(), free_port()
    cfg = load_config(metrics_instance(conf_dir, metrics_port, http_port, smpp_port))
    top = make_service(cfg, reactor)
    node = top.node
    top.startService()
    release = threading.Event()
    try:
        hrn, = available_hrns(node, 1)
        replies, bound = [], threading.Event()
        session = threads.deferToThread(_smpp_session, smpp_port,
                                        [("RECHARGE " + hrn).encode(), b"HELLO"],
                                        replies, bound, release)
        for _ in range(1000):
            if len(replies) >= 2 or session.called:
                break
            await task.deferLater(reactor, 0.02, lambda: None)
        assert len(replies) == 2
        for _ in range(250):            # the SMSC's submit_sm_resp confirms each MT
            text = await scrape(reactor, metrics_port)
            got = samples(text)
            if value(got, "ivoms_smpp_messages_total", direction="mt", kind="sent") == 2 and \
                    value(got, "ivoms_smpp_messages_total", direction="mt", kind="outbox_sent"):
                break
            await task.deferLater(reactor, 0.02, lambda: None)
        assert value(got, "ivoms_smpp_binds", role="server", account="demo") == 1
        assert value(got, "ivoms_smpp_messages_total", direction="mo", kind="mo") == 2
        assert value(got, "ivoms_smpp_messages_total", direction="mo", kind="help") == 1
        # both replies confirmed; the recharge's (durable, the default) also by the outbox
        assert value(got, "ivoms_smpp_messages_total", direction="mt", kind="sent") == 2
        assert value(got, "ivoms_smpp_messages_total", direction="mt", kind="outbox_sent") == 1
        assert value(got, "ivoms_smpp_messages_total", direction="mt", kind="failed") == 0
        assert value(got, "ivoms_activations_total", channel="sms", code="0",
                     result="SUCCESS") == 1
        assert "381641112223" not in text and hrn not in text
        release.set()
        await session
        for _ in range(250):            # the unbind reaches the server
            got = samples(await scrape(reactor, metrics_port))
            if value(got, "ivoms_smpp_binds", role="server", account="demo") == 0:
                break
            await task.deferLater(reactor, 0.02, lambda: None)
        assert value(got, "ivoms_smpp_binds", role="server", account="demo") == 0
    finally:
        release.set()
        await top.stopService()
