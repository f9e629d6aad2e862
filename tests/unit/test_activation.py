"""ActivationService: every result code, idempotency, races, timeouts, fraud tiers (issue 3)."""
from __future__ import annotations

import time

import pytest_twisted
from twisted.internet import defer, task

from core import db_activate, saga
from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.timeutil import DAY_MS
from core.vouchers import Selection, set_state
from tests.fakes import FakeBilling
from tests.helpers import (
    FraudSettings, build_service, credited_entries, make_batch,
    txn_rows, voucher_row,
)

MSISDN = "0641234567"
E164 = "381641234567"


def _req(hrn, msisdn=MSISDN, **kw):
    return ActivationRequest(msisdn=msisdn, hrn=hrn, channel=kw.pop("channel", "sms"), **kw)


async def _stop(runner):
    await runner.stop()


@pytest_twisted.ensureDeferred
async def test_success_credits_once_and_records_everything(env, reactor):
    store, cipher = env
    info, hrns = make_batch(store, cipher, 3)
    serial, hrn = next(iter(hrns.items()))
    runner, svc, ledger = build_service(store, cipher, reactor=reactor)
    try:
        grouped = hrn[:4] + " " + hrn[4:8] + "-" + hrn[8:]
        res = await svc.activate(_req(grouped, channel_ref="m-1"))
        assert res.code == R.SUCCESS and res.serial == serial
        assert (res.amount, res.currency, res.validity_days, res.account) == (1000, "EUR", 30, E164)
        assert res.balance == 1000 and res.new_expiry > time.time() * 1000 + 29 * DAY_MS
        assert voucher_row(store, serial)[:2] == ("used", E164)
        assert [(m, a) for _, m, a in credited_entries(store)] == [(E164, 1000)]
        (t,) = txn_rows(store)
        assert (t["state"], t["result_code"], t["channel"], t["channel_ref"], t["serial"]) == \
            ("success", 0, "sms", "m-1", serial)
        # the same voucher again: used by you, no second credit
        again = await svc.activate(_req(hrn))
        assert again.code == R.VOUCHER_ALREADY_USED_BY_YOU
        other = await svc.activate(_req(hrn, msisdn="0641111111"))
        assert other.code == R.VOUCHER_USED_BY_OTHER
        assert len(credited_entries(store)) == 1
        assert [t["result_code"] for t in txn_rows(store)] == [0, 107, 108]
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_malformed_input_never_touches_the_store(env, reactor):
    store, cipher = env
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        assert (await svc.activate(_req("1234", msisdn="12"))).code == R.INVALID_MSISDN
        assert (await svc.activate(_req("12345678901234", msisdn="06412345x7"))).code == R.INVALID_MSISDN
        assert (await svc.activate(_req("1234abcd901234"))).code == R.INVALID_HRN
        assert (await svc.activate(_req("123"))).code == R.INVALID_HRN
        assert (await svc.activate(_req("12345678901234", beneficiary="99"))).code == R.INVALID_MSISDN
        assert runner.units == 0 and txn_rows(store) == []
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_each_voucher_state_gives_its_code(env, reactor):
    store, cipher = env
    info, hrns = make_batch(store, cipher, 5)
    serials = sorted(hrns)
    now = int(time.time() * 1000)
    store.run_sync(set_state, Selection.serial(serials[0]), "blocked", actor="t", reason="stolen", now=now)
    store.run_sync(set_state, Selection.serial(serials[1]), "expired", actor="t", reason=None, now=now)
    store.run_sync(set_state, Selection.serial(serials[2]), "generated", actor="t", reason=None, now=now)
    _, gen = make_batch(store, cipher, 1, available=False)
    past, past_hrns = make_batch(store, cipher, 1, expires_in_days=1)
    from sqlalchemy import update

    from core.schema import voucher
    store.run_sync(lambda tx: tx.execute(update(voucher).where(voucher.c.batch_id == past.batch_id)
                                         .values(expires_at=now - 1000)))
    runner, svc, _ = build_service(store, cipher, reactor=reactor, fraud=FraudSettings(tiers=((50, 60),)))
    try:
        codes = [(await svc.activate(_req(hrns[s]))).code for s in serials[:3]]
        assert codes == [R.VOUCHER_BLOCKED, R.VOUCHER_EXPIRED, R.VOUCHER_NOT_AVAILABLE]
        assert (await svc.activate(_req(next(iter(gen.values()))))).code == R.VOUCHER_NOT_AVAILABLE
        # past its date but not yet swept by housekeeping
        assert (await svc.activate(_req(next(iter(past_hrns.values()))))).code == R.VOUCHER_EXPIRED
        assert (await svc.activate(_req("99999999999999"))).code == R.INVALID_HRN
        assert all(voucher_row(store, s)[0] != "used" for s in serials[:3])
        assert credited_entries(store) == []
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_billing_refusals_release_the_voucher(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    (s1, h1), (s2, h2) = sorted(hrns.items())
    runner, svc, _ = build_service(store, cipher, reactor=reactor, billing=FakeBilling("reject"))
    try:
        res = await svc.activate(_req(h1))
        assert res.code == R.BILLING_REJECTED and voucher_row(store, s1)[0] == "available"
        svc.billing = FakeBilling("unknown-subscriber")
        assert (await svc.activate(_req(h1))).code == R.SUBSCRIBER_UNKNOWN
        svc.billing = FakeBilling("down")
        assert (await svc.activate(_req(h2))).code == R.BILLING_UNAVAILABLE
        assert voucher_row(store, s2)[0] == "available"       # never sent: released at once
        svc.billing = FakeBilling("accept")
        assert (await svc.activate(_req(h1))).code == R.SUCCESS
        assert [t["state"] for t in txn_rows(store)] == ["failed", "failed", "failed", "success"]
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_ledger_requires_accounts_when_configured(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor, auto_create=False)
    try:
        assert (await svc.activate(_req(hrn))).code == R.SUBSCRIBER_UNKNOWN
        assert voucher_row(store, serial)[0] == "available" and credited_entries(store) == []
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_beneficiary_is_credited(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        res = await svc.activate(_req(next(iter(hrns.values())), beneficiary="+381 64 999 8888"))
        assert res.code == R.SUCCESS and res.account == "381649998888"
        assert [m for _, m, _ in credited_entries(store)] == ["381649998888"]
        assert txn_rows(store)[0]["msisdn"] == E164
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_system_error_consumes_nothing(env, reactor, monkeypatch):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))

    def broken(tx, *a):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(saga, "reserve", broken)
    # PostgreSQL's one-statement path fails in the server instead
    monkeypatch.setattr(db_activate, "CALL", db_activate.CALL.replace("ivoms_activate", "ivoms_broken"))
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        assert (await svc.activate(_req(hrn))).code == R.SYSTEM_ERROR
        assert voucher_row(store, serial)[0] == "available"
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_timeout_leaves_pending_then_reconciles(env, reactor):
    """Billing hangs: 151 after the timeout, 113 meanwhile; reconciliation concludes."""
    from core.reconcile import Reconciler
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    (s1, h1), (s2, h2) = sorted(hrns.items())
    clock = task.Clock()
    clock.advance(time.time())
    billing = FakeBilling("hang")
    runner, svc, _ = build_service(store, cipher, reactor=reactor, clock=clock, billing=billing,
                                   billing_timeout=5)
    try:
        d1 = svc.activate(_req(h1))
        await billing.called(1)
        assert (await svc.activate(_req(h1, msisdn="0640000001"))).code == R.VOUCHER_PENDING
        clock.advance(5)
        assert (await d1).code == R.BILLING_UNAVAILABLE
        assert voucher_row(store, s1)[0] == "reserved"
        # a second one times out too, but billing did credit it
        d2 = svc.activate(_req(h2))
        await billing.called(2)
        clock.advance(5)
        r2 = await d2
        billing.credits[r2.txn_id] = ("x", 1000, "EUR", 30)
        rec = Reconciler(runner, billing, clock=clock, older_than_seconds=60)
        assert (await rec.run()).examined == 0                 # too young
        clock.advance(61)
        rep = await rec.run()
        assert (rep.examined, rep.committed, rep.released) == (2, 1, 1)
        assert voucher_row(store, s1)[0] == "available" and voucher_row(store, s2)[0] == "used"
        assert sorted(t["state"] for t in txn_rows(store)) == ["failed", "failed", "success"]
        assert (await rec.run()).examined == 0                 # nothing left
        assert not clock.getDelayedCalls()
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_lost_answer_is_reconciled_with_the_ledger(env, reactor):
    """Embedded ledger: a lookup of an unknown key voids it, so a late credit can't apply."""
    from billing.ledger import credit_unit
    from core.reconcile import Reconciler
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    runner, svc, ledger = build_service(store, cipher, reactor=reactor, billing=FakeBilling("lost"))
    try:
        res = await svc.activate(_req(hrn))
        assert res.code == R.BILLING_UNAVAILABLE and voucher_row(store, serial)[0] == "reserved"
        rep = await Reconciler(runner, ledger, clock=reactor, older_than_seconds=0).run()
        assert rep.released == 1 and voucher_row(store, serial)[0] == "available"
        late = store.run_sync(credit_unit, E164, 1000, "EUR", 30, res.txn_id, 0, True)
        assert not late.credited and credited_entries(store) == []
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_fraud_tiers_bar_and_lift(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    clock = task.Clock()
    clock.advance(time.time())
    runner, svc, _ = build_service(store, cipher, reactor=reactor, clock=clock)
    try:
        wrong = "11111111111111"
        codes = [(await svc.activate(_req(wrong, source="bind-a"))).code for _ in range(3)]
        assert codes == [R.INVALID_HRN] * 3
        barred = await svc.activate(_req(hrn))
        assert barred.code == R.SUBSCRIBER_BARRED
        assert barred.unbar_at == int(clock.seconds() * 1000) + 60_000
        assert voucher_row(store, serial)[0] == "available"     # never touched the voucher
        clock.advance(61)
        # second tier at 6 failures within the window
        for _ in range(3):
            await svc.activate(_req(wrong))
        tier2 = await svc.activate(_req(hrn))
        assert tier2.code == R.SUBSCRIBER_BARRED
        assert tier2.unbar_at - int(clock.seconds() * 1000) > 500_000
        clock.advance(601)
        ok = await svc.activate(_req(hrn))
        assert ok.code == R.SUCCESS
        from core.fraud import list_counters
        counters = {c["subject"]: c for c in store.run_sync(list_counters)}
        assert "msisdn:" + E164 not in counters                  # success cleared it
        assert counters["source:sms:bind-a"]["failures"] == 3    # per-source counter kept
        # other subscribers are not affected
        assert (await svc.activate(_req(wrong, msisdn="0649999999"))).code == R.INVALID_HRN
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_window_expiry_restarts_the_count(env, reactor):
    store, cipher = env
    clock = task.Clock()
    clock.advance(time.time())
    runner, svc, _ = build_service(store, cipher, reactor=reactor, clock=clock,
                                   fraud=FraudSettings(tiers=((3, 60),), window_seconds=100))
    try:
        for _ in range(2):
            await svc.activate(_req("11111111111111"))
        clock.advance(101)
        for _ in range(2):
            await svc.activate(_req("11111111111111"))
        assert (await svc.activate(_req("11111111111111"))).code == R.INVALID_HRN
        assert (await svc.activate(_req("11111111111111"))).code == R.SUBSCRIBER_BARRED
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_fifty_concurrent_activations_of_one_voucher(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor,
                                   fraud=FraudSettings(tiers=((1000, 60),)))
    try:
        results = await defer.gatherResults([
            svc.activate(_req(hrn, msisdn="06410000%02d" % i)) for i in range(50)])
        codes = [r.code for r in results]
        assert codes.count(R.SUCCESS) == 1
        assert set(codes) <= {R.SUCCESS, R.VOUCHER_PENDING, R.VOUCHER_USED_BY_OTHER}
        assert len(credited_entries(store)) == 1
        assert voucher_row(store, serial)[0] == "used"
    finally:
        await _stop(runner)


def test_normalisation_rules():
    from core.normalise import MsisdnRules, normalise_hrn
    rules = MsisdnRules("381", "0", ["00", "+"], [11, 12])
    for raw in ("+381641234567", "00381641234567", "0641234567", "381641234567", "064 123-45.67"):
        assert rules.normalise(raw) == "381641234567", raw
    for raw in ("", None, "12", "+38164123456789", "06412345a7", "٠٦٤١٢٣٤٥٦٧"):
        assert rules.normalise(raw) is None, raw
    assert normalise_hrn("1234 5678-9012 34", {14}) == "12345678901234"
    assert normalise_hrn("1234567890123", {14}) is None
    assert normalise_hrn("1234567890123x", {14}) is None


@pytest_twisted.ensureDeferred
async def test_ledger_as_a_separate_saga_step(env, reactor):
    """With in_transaction = false the ledger is called like external billing:
    three units of work, the same outcomes."""
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor, in_transaction=False)
    try:
        res = await svc.activate(_req(hrn))
        assert res.code == R.SUCCESS and res.balance == 1000
        assert runner.units == 3                        # reserve, credit, conclude
        assert (await svc.activate(_req(hrn))).code == R.VOUCHER_ALREADY_USED_BY_YOU
        assert voucher_row(store, serial)[0] == "used" and len(credited_entries(store)) == 1
    finally:
        await _stop(runner)


@pytest_twisted.ensureDeferred
async def test_ledger_in_the_activation_transaction_is_one_unit(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor, auto_create=False)
    try:
        assert (await svc.activate(_req(hrn))).code == R.SUBSCRIBER_UNKNOWN
        assert runner.units == 1
        assert [t["state"] for t in txn_rows(store)] == ["failed"]
    finally:
        await _stop(runner)
