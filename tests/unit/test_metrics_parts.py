"""The metrics parts on their own: the null seam, the billing and housekeeping wrappers,
billing peer states, and the rule that only gateway/metrics imports prometheus_client."""
from __future__ import annotations

import ast
import os
import types

import pytest
from twisted.internet import defer, task
from zope.interface import implementer
from zope.interface.verify import verifyObject

from core.billing import BillingUnavailable, CreditOutcome, IBillingPort
from core.interfaces import IInTransactionCredit
from core.metrics import IMetrics, NULL_METRICS
from core.results import ResultCode as R
from gateway.metrics.collectors import peer_label, peer_states
from gateway.metrics.registry import PrometheusMetrics
from gateway.metrics.wrappers import MeteredBilling, MeteredHousekeeper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sample(m, name, **labels):
    return m.registry.get_sample_value(name, labels)


def test_both_implementations_provide_the_seam():
    verifyObject(IMetrics, NULL_METRICS)
    verifyObject(IMetrics, PrometheusMetrics(task.Clock(), process=False))


@implementer(IBillingPort)
class SlowBilling:
    def __init__(self, clock, answer):
        self.clock, self.answer = clock, answer

    def credit(self, account, amount, currency, validity_days, idempotency_key,
               voucher_type=None):
        d = task.deferLater(self.clock, 0.25, lambda: None)
        return d.addCallback(lambda _: self.answer() if callable(self.answer) else self.answer)

    def lookup(self, idempotency_key, **kw):
        return defer.fail(BillingUnavailable("down", sent=False))


def test_metered_billing_counts_results_and_latency():
    clock = task.Clock()
    m = PrometheusMetrics(clock, process=False)
    answers = iter([CreditOutcome(True, R.SUCCESS), CreditOutcome(False, R.SUBSCRIBER_UNKNOWN)])
    port = MeteredBilling(SlowBilling(clock, lambda: next(answers)), m, connector="diameter",
                          peer="ocs1", clock=clock)
    assert not IInTransactionCredit.providedBy(port)
    got = [port.credit("381641234567", 500, "EUR", 30, "k%d" % i) for i in range(2)]
    clock.advance(0.25)
    assert [d.result.code for d in got] == [R.SUCCESS, R.SUBSCRIBER_UNKNOWN]
    failed = port.lookup("k1")
    failed.addErrback(lambda f: f.trap(BillingUnavailable))
    labels = dict(connector="diameter", peer="ocs1", operation="credit")
    assert sample(m, "ivoms_billing_requests_total", result="SUCCESS", **labels) == 1
    assert sample(m, "ivoms_billing_requests_total", result="SUBSCRIBER_UNKNOWN", **labels) == 1
    assert sample(m, "ivoms_billing_requests_total", connector="diameter", peer="ocs1",
                  operation="lookup", result="unavailable") == 1
    assert sample(m, "ivoms_billing_request_seconds_count", connector="diameter",
                  operation="credit") == 2
    assert sample(m, "ivoms_billing_request_seconds_sum", connector="diameter",
                  operation="credit") == pytest.approx(0.5)
    # 0.25 s falls in the 0.25 bucket, not below
    assert sample(m, "ivoms_billing_request_seconds_bucket", connector="diameter",
                  operation="credit", le="0.1") == 0
    assert sample(m, "ivoms_billing_request_seconds_bucket", connector="diameter",
                  operation="credit", le="0.25") == 2


def test_a_timeout_is_labelled_timeout():
    clock = task.Clock()
    m = PrometheusMetrics(clock, process=False)
    port = MeteredBilling(SlowBilling(clock, None), m, connector="ucip", peer="a", clock=clock)
    d = port.credit("1", 1, "EUR", 1, "k")
    d.cancel()
    d.addErrback(lambda f: None)
    assert sample(m, "ivoms_billing_requests_total", connector="ucip", peer="a",
                  operation="credit", result="timeout") == 1


@implementer(IBillingPort, IInTransactionCredit)
class InTx:
    def credit_in(self, tx, account, amount, currency, validity_days, idempotency_key, now):
        if account == "boom":
            raise RuntimeError("no")
        return CreditOutcome(True, R.SUCCESS)


def test_in_transaction_credit_is_kept_and_measured():
    clock = task.Clock()
    m = PrometheusMetrics(clock, process=False)
    port = MeteredBilling(InTx(), m, connector="ledger", peer="embedded", clock=clock)
    assert IInTransactionCredit.providedBy(port)
    assert port.credit_in(None, "381", 1, "EUR", 1, "k", 0).credited
    with pytest.raises(RuntimeError):
        port.credit_in(None, "boom", 1, "EUR", 1, "k", 0)
    assert sample(m, "ivoms_billing_requests_total", connector="ledger", peer="embedded",
                  operation="credit", result="SUCCESS") == 1
    assert sample(m, "ivoms_billing_requests_total", connector="ledger", peer="embedded",
                  operation="credit", result="error") == 1


def test_housekeeper_runs_by_job_and_outcome():
    clock = task.Clock()
    m = PrometheusMetrics(clock, process=False)
    pending = {}

    class Keeper:
        jobs = {"expire": None}

        def run(self, job, **kw):
            pending[job] = defer.Deferred()
            return pending[job]
    keeper = MeteredHousekeeper(Keeper(), m, clock)
    assert keeper.jobs == {"expire": None}
    keeper.run("expire", slot=1)
    clock.advance(12)
    pending["expire"].callback(types.SimpleNamespace(outcome="failed"))
    keeper.run("purge")
    pending["purge"].errback(RuntimeError("store down"))
    pending["purge"].addErrback(lambda f: None)
    assert sample(m, "ivoms_housekeeping_runs_total", job_name="expire", outcome="failed") == 1
    assert sample(m, "ivoms_housekeeping_run_seconds_sum", job_name="expire") == 12
    assert sample(m, "ivoms_housekeeping_last_run_timestamp_seconds", job_name="expire",
                  outcome="failed") == 12
    assert sample(m, "ivoms_housekeeping_runs_total", job_name="purge", outcome="error") == 1


def test_unknown_channels_and_codes_are_bounded():
    m = PrometheusMetrics(task.Clock(), process=False)
    m.activation_done("sms", R.SUCCESS, 0.01)
    m.activation_done("0641234567", 999, 0.01)
    assert sample(m, "ivoms_activations_total", channel="sms", code="0", result="SUCCESS") == 1
    assert sample(m, "ivoms_activations_total", channel="other", code="other",
                  result="OTHER") == 1


def test_peer_states_of_each_connector():
    clock = task.Clock()
    clock.advance(100)
    diameter = types.SimpleNamespace(links=[types.SimpleNamespace(label="ocs-a", usable=True),
                                            types.SimpleNamespace(label="ocs-b", usable=False)])
    assert peer_states("diameter", diameter, clock) == [("ocs-a", 1), ("ocs-b", 0)]
    assert peer_label("diameter", diameter) == "ocs-a,ocs-b"
    ucip = types.SimpleNamespace(
        settings=types.SimpleNamespace(hosts=["http://u:secret@air1:10010/Air",
                                              "https://air2/Air"]),
        down_until={"https://air2/Air": 150})
    states = peer_states("ucip", ucip, clock)
    assert states == [("air1:10010", 1), ("air2:443", 0)]
    assert "secret" not in repr(states)
    cai = types.SimpleNamespace(settings=types.SimpleNamespace(host="hlr", port=3300),
                                ready=set())
    assert peer_states("cai", cai, clock) == [("hlr:3300", 0)]
    assert peer_states("ledger", None, clock) == [("embedded", 1)]


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_only_gateway_metrics_imports_prometheus_client():
    offenders = []
    for top in ("core", "protocols", "admin", "billing", "gateway"):
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            if os.path.join("gateway", "metrics") in folder:
                continue
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    if any(m.split(".")[0] == "prometheus_client" for m in _imports(path)):
                        offenders.append(os.path.relpath(path, REPO))
    assert offenders == []


def test_diameter_answers_per_peer_are_exported():
    from gateway.metrics.collectors import NodeCollector
    clock = task.Clock()
    m = PrometheusMetrics(clock, process=False)
    links = [types.SimpleNamespace(label="ocs-a", usable=True, answers=7),
             types.SimpleNamespace(label="ocs-b", usable=False, answers=2)]
    node = types.SimpleNamespace(
        runner=types.SimpleNamespace(depth=lambda: (3, 1)),
        activation=types.SimpleNamespace(in_flight=2),
        config=types.SimpleNamespace(billing=types.SimpleNamespace(connector="diameter")),
        billing_service=types.SimpleNamespace(links=links), clock=clock)
    m.registry.register(NodeCollector(node, None))
    assert sample(m, "ivoms_billing_peer_answers_total", connector="diameter", peer="ocs-a") == 7
    assert sample(m, "ivoms_billing_peer_answers_total", connector="diameter", peer="ocs-b") == 2
    assert sample(m, "ivoms_billing_peer_up", connector="diameter", peer="ocs-b") == 0
    assert sample(m, "ivoms_unit_queue_depth", lane="foreground") == 3
    assert sample(m, "ivoms_unit_queue_depth", lane="background") == 1
    assert sample(m, "ivoms_activations_in_flight") == 2


def test_the_metered_embedded_ledger_keeps_the_one_statement_path():
    from billing.ledger import EmbeddedLedger
    from core.db_activate import in_store_ledger
    from core.interfaces import IStoreLedger
    clock = task.Clock()
    ledger = EmbeddedLedger(None, clock=clock, auto_create=False)
    port = MeteredBilling(ledger, PrometheusMetrics(clock, process=False), connector="ledger", peer="embedded",
                          clock=clock)
    assert IStoreLedger.providedBy(port) and port.auto_create is False
    assert in_store_ledger(port.credit_in) is port
    apart = EmbeddedLedger(None, clock=clock, in_transaction=False)
    assert in_store_ledger(MeteredBilling(apart, PrometheusMetrics(clock, process=False), connector="ledger",
                                          peer="embedded", clock=clock).credit_in) is None
