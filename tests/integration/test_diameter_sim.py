"""Diameter billing end to end against the simulator in its own process (issue 5 points 5-6).

A real ActivationService over a temp SQLite store credits through
DiameterBilling to C{python -m billing.sim} on 127.0.0.1.  Faults:
billing down at start, dying mid-flight, garbage, slow, dropped answers,
refusals; no voucher is ever consumed without a credit, and recovery
(reconnect, reconciliation by T-flag replay) is automatic.
"""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, task

from billing.diameter.node.client import DiameterClient
from billing.diameter.config import from_mapping
from billing.diameter.node.connector import DiameterBilling
from billing.sim.process import SimProcess
from core.reconcile import Reconciler
from core.requests import ActivationRequest
from core.results import ResultCode as R
from tests.helpers import build_service, make_batch, make_store, voucher_row

pytestmark = pytest.mark.integration
MSISDN = "0641234567"


def connector(reactor, port, **transport):
    conf = {"origin_host": "ivoms.test.localdomain", "origin_realm": "localdomain",
            "peers": [{"host": "127.0.0.1", "port": port}],
            "validity_avps": [{"vendor_id": 32473, "code": 1}],
            "reconnect_initial": 0.2, "reconnect_max": 0.5,
            "request_timeout": 2.0, "watchdog_interval": 6.0}
    conf.update(transport)
    local, credit, ts, extra = from_mapping(conf)
    client = DiameterClient(local, ts, reactor=reactor)
    return client, DiameterBilling(client, local, credit, clock=reactor,
                                   session_host=extra["session_host"])


class Env:
    def __init__(self, store, cipher, reactor, tmp_path):
        self.store, self.cipher, self.reactor = store, cipher, reactor
        self.sims = []
        self.client = None

    def sim(self, *options, port=0):
        s = SimProcess.spawn(*options, diameter_port=port)
        self.sims.append(s)
        return s

    async def start(self, port, billing_timeout=5.0, wait=True, **transport):
        self.client, self.billing = connector(self.reactor, port, **transport)
        self.client.startService()
        if wait:
            assert await self.client.when_open(10), "peer did not open"
        self.runner, self.svc, _ = build_service(
            self.store, self.cipher, reactor=self.reactor, billing=self.billing,
            billing_timeout=billing_timeout)
        self.reconciler = Reconciler(self.runner, self.billing, clock=self.reactor,
                                     older_than_seconds=0, lookup_timeout=5)

    def activate(self, hrn, msisdn=MSISDN):
        return self.svc.activate(ActivationRequest(msisdn, hrn, "sms"))

    async def close(self):
        if self.client is not None:
            await self.client.stopService()
            await self.runner.stop()
        for s in self.sims:
            s.stop()


@pytest.fixture
def env(sqlite_url, tmp_path, reactor):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    e = Env(store, cipher, reactor, tmp_path)
    yield e
    pytest_twisted.blockon(defer.ensureDeferred(e.close()))
    store.dispose()


def sleep(reactor, seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_activation_credits_once_through_the_simulator(env, reactor):
    info, hrns = make_batch(env.store, env.cipher, 2)
    sim = env.sim()
    await env.start(sim.diameter_port)
    (s1, h1), (s2, h2) = sorted(hrns.items())
    r = await env.activate(h1)
    assert r.code == R.SUCCESS and r.balance == 1000 and r.new_expiry
    assert voucher_row(env.store, s1)[0] == "used"
    assert (await env.activate(h1)).code == R.VOUCHER_ALREADY_USED_BY_YOU
    r2 = await env.activate(h2)
    assert r2.code == R.SUCCESS and r2.balance == 2000


@pytest_twisted.ensureDeferred
async def test_unknown_subscriber_and_refusal_release_the_voucher(env, reactor):
    info, hrns = make_batch(env.store, env.cipher, 1)
    sim = env.sim("--no-auto-create")
    await env.start(sim.diameter_port)
    (serial, hrn), = hrns.items()
    assert (await env.activate(hrn)).code == R.SUBSCRIBER_UNKNOWN
    assert voucher_row(env.store, serial)[0] == "available"


@pytest_twisted.ensureDeferred
async def test_rejecting_billing_answers_115(env, reactor):
    info, hrns = make_batch(env.store, env.cipher, 1)
    sim = env.sim("--reject-rate", "1")
    await env.start(sim.diameter_port)
    (serial, hrn), = hrns.items()
    assert (await env.activate(hrn)).code == R.BILLING_REJECTED
    assert voucher_row(env.store, serial)[0] == "available"


@pytest_twisted.ensureDeferred
async def test_billing_down_at_start_then_recovers_by_itself(env, reactor):
    info, hrns = make_batch(env.store, env.cipher, 1)
    (serial, hrn), = hrns.items()
    probe = SimProcess.spawn()            # find a free port, then free it
    port = probe.diameter_port
    probe.stop()
    await env.start(port, wait=False)
    r = await env.activate(hrn)
    assert r.code == R.BILLING_UNAVAILABLE
    assert voucher_row(env.store, serial)[0] == "available"   # nothing consumed
    env.sim(port=port)
    assert await env.client.when_open(10)
    r = await env.activate(hrn)
    assert r.code == R.SUCCESS and r.balance == 1000


@pytest_twisted.ensureDeferred
async def test_billing_dying_mid_flight_is_reconciled_later(env, reactor):
    info, hrns = make_batch(env.store, env.cipher, 1)
    (serial, hrn), = hrns.items()
    sim = env.sim("--latency", "1.5")
    port = sim.diameter_port
    await env.start(port, request_timeout=8.0)
    d = env.activate(hrn)
    await sleep(reactor, 0.5)
    sim.kill()
    r = await d
    assert r.code == R.BILLING_UNAVAILABLE
    assert voucher_row(env.store, serial)[0] == "reserved"     # not consumed, not lost
    report = await env.reconciler.run()
    assert report.left == 1                                     # still down: left pending
    env.sim(port=port)
    assert await env.client.when_open(10)
    report = await env.reconciler.run()
    assert (report.committed, report.released) == (1, 0)
    assert voucher_row(env.store, serial)[0] == "used"


@pytest.mark.parametrize("fault", [
    ("--malformed-rate", "1"),
    ("--drop-rate", "1"),
    ("--slow-rate", "1", "--slow-seconds", "3"),
])
@pytest_twisted.ensureDeferred
async def test_garbage_dropped_or_slow_answers_are_reconciled_once(env, reactor, fault):
    info, hrns = make_batch(env.store, env.cipher, 1)
    (serial, hrn), = hrns.items()
    sim = env.sim(*fault)
    await env.start(sim.diameter_port, request_timeout=1.0)
    r = await env.activate(hrn)
    assert r.code == R.BILLING_UNAVAILABLE
    assert voucher_row(env.store, serial)[0] == "reserved"
    assert env.client.open_peers()          # the link survived
    report = await env.reconciler.run()
    assert report.committed == 1
    assert voucher_row(env.store, serial)[0] == "used"
    # the replay was detected as a duplicate: the balance it reports is
    # that of the first (only) credit, 1000, not 2000
    from sqlalchemy import select

    from core.schema import txn
    detail = env.store.run_sync(lambda tx: tx.execute(
        select(txn.c.detail).where(txn.c.id == r.txn_id)).first()[0])
    assert '"balance": 1000' in detail and '"reconciled": true' in detail, detail


@pytest_twisted.ensureDeferred
async def test_failover_to_second_simulator_with_t_flag(env, reactor):
    info, hrns = make_batch(env.store, env.cipher, 2)
    a, b = env.sim("--latency", "1.0"), env.sim()
    conf = dict(peers=[{"host": "127.0.0.1", "port": a.diameter_port, "priority": 0},
                       {"host": "127.0.0.1", "port": b.diameter_port, "priority": 1}])
    env.client, env.billing = connector(reactor, 0, request_timeout=8.0, **conf)
    env.client.startService()
    for _ in range(100):
        if len(env.client.open_peers()) == 2:
            break
        await sleep(reactor, 0.05)
    env.runner, env.svc, _ = build_service(env.store, env.cipher, reactor=reactor,
                                           billing=env.billing, billing_timeout=9)
    (s1, h1), _ = sorted(hrns.items())
    d = env.activate(h1)
    await sleep(reactor, 0.3)
    a.kill()                           # A had the request; B gets it with T set
    r = await d
    assert r.code == R.SUCCESS
    assert env.client.stats["retransmitted"] == 1
    assert voucher_row(env.store, s1)[0] == "used"
