"""An operator settles pending activations by hand (billing without a lookup, e.g. UCIP)."""
from __future__ import annotations

import time

import pytest
import pytest_twisted
from twisted.internet import task

from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.settle import settle
from gateway.cli.main import build_parser
from tests.fakes import FakeBilling
from tests.helpers import build_service, make_batch, txn_rows, voucher_row


@pytest_twisted.ensureDeferred
async def test_settle_uses_or_releases_a_pending_voucher_once(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    (s1, h1), (s2, h2) = sorted(hrns.items())
    clock = task.Clock()
    clock.advance(time.time())
    billing = FakeBilling("hang")
    runner, svc, _ = build_service(store, cipher, reactor=reactor, clock=clock, billing=billing,
                                   billing_timeout=5)
    try:
        d1 = svc.activate(ActivationRequest(msisdn="0641234567", hrn=h1, channel="sms"))
        await billing.called(1)
        await task.deferLater(reactor, 0, lambda: None)     # let activate set its timeout
        clock.advance(5)
        r1 = await d1
        d2 = svc.activate(ActivationRequest(msisdn="0641234567", hrn=h2, channel="sms"))
        await billing.called(2)
        await task.deferLater(reactor, 0, lambda: None)
        clock.advance(5)
        r2 = await d2
        assert r1.code == r2.code == R.BILLING_UNAVAILABLE
        ids = [r1.txn_id, r2.txn_id]
    finally:
        await runner.stop()
    now = int(clock.seconds() * 1000)
    assert store.run_sync(settle, ids[0], True, now, "cli:op", "AIR record seen") == "used"
    assert store.run_sync(settle, ids[1], False, now, "cli:op") == "released"
    assert store.run_sync(settle, ids[0], False, now, "cli:op") == "not pending"
    assert store.run_sync(settle, "no-such-id", True, now, "cli:op") == "unknown"
    assert voucher_row(store, s1)[0] == "used" and voucher_row(store, s2)[0] == "available"
    assert sorted(t["state"] for t in txn_rows(store)) == ["failed", "success"]


def test_settle_command_needs_a_verdict():
    p = build_parser()
    args = p.parse_args(["settle", "T1", "--credited", "--note", "seen on AIR"])
    assert args.credited is True and args.txn_id == "T1"
    assert p.parse_args(["settle", "T1", "--not-credited"]).credited is False
    with pytest.raises(SystemExit):
        p.parse_args(["settle", "T1"])
