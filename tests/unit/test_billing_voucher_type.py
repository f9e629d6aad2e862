"""The core tells the billing port the voucher type it credits (UCIP dedicated accounts per type)."""
from __future__ import annotations

import time

import pytest_twisted
from twisted.internet import task

from core.requests import ActivationRequest
from core.results import ResultCode as R
from tests.fakes import FakeBilling
from tests.helpers import VType, build_service, make_batch


@pytest_twisted.ensureDeferred
async def test_credit_and_reconciliation_lookup_carry_the_voucher_type(env, reactor):
    from core.reconcile import Reconciler
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2, vt=VType(code="DATA1G"))
    (_, h1), (_, h2) = sorted(hrns.items())
    clock = task.Clock()
    clock.advance(time.time())
    billing = FakeBilling("accept")
    runner, svc, _ = build_service(store, cipher, reactor=reactor, clock=clock, billing=billing)
    try:
        ok = await svc.activate(ActivationRequest(msisdn="0641234567", hrn=h1, channel="sms"))
        assert ok.code == R.SUCCESS and billing.voucher_types == {ok.txn_id: "DATA1G"}
        billing.mode = "lost"
        lost = await svc.activate(ActivationRequest(msisdn="0641234567", hrn=h2, channel="sms"))
        assert lost.code == R.BILLING_UNAVAILABLE
        clock.advance(61)
        rep = await Reconciler(runner, billing, clock=clock, older_than_seconds=60).run()
        assert rep.examined == 1
        (looked,) = billing.lookups
        assert looked["voucher_type"] == "DATA1G" and looked["amount"] == 1000
    finally:
        await runner.stop()
