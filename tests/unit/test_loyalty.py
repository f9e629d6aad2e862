"""Loyalty: counters in the activation's unit, tiers, periods, rewards and their reconciliation (issue 9)."""
from __future__ import annotations

import datetime as dt
import time

import pytest
import pytest_twisted
from sqlalchemy import select
from twisted.internet import defer, task

from core import saga
from core.billing import BillingUnavailable
from core.loyalty.plans import Period, Plan, PrefixRange, Reward, Tier, day_start_ms
from core.loyalty.service import LoyaltyService
from core.reconcile import Reconciler
from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.schema import loyalty_counter, loyalty_event
from tests.fakes import FakeBilling
from tests.helpers import (
    FraudSettings, VType, build_service, credited_entries, make_batch, make_store,
    txn_rows,
)

MSISDN = "0641234567"
E164 = "381641234567"
NO_BARS = FraudSettings(tiers=((10_000, 1),))


def plan(id="p1", tiers=((2, 0, 100, 0),), period=Period("month"), **kw) -> Plan:
    """A plan counting every voucher type; tiers as (recharges, amount, bonus, days)."""
    kw.setdefault("voucher_types", {"*": 1})
    kw.setdefault("currency", "EUR")
    return Plan(id=id, name=kw.pop("name", "Plan " + id),
                tiers=tuple(Tier(r, a, Reward(b, "EUR", d)) for r, a, b, d in tiers),
                period=period, **kw)


def at(text: str) -> float:
    """Epoch seconds of an ISO UTC time C{2025-01-31T23:59:59}."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture
def env(db_url, tmp_path):
    # batch terms are cached per process by batch id; each test has a new database
    saga.forget_batch_terms()
    store, cipher = make_store(db_url, str(tmp_path))
    yield store, cipher
    store.dispose()


class Env:
    """A running activation service with a loyalty service over C{plans}."""

    def __init__(self, store, cipher, reactor, plans, *, clock=None, billing=None,
                 reward_billing=None, workers=None, in_transaction=True, writer_process=False):
        self.store = store
        self.clock = clock or reactor
        self.runner, self.svc, self.ledger = build_service(
            store, cipher, reactor=reactor, clock=self.clock, billing=billing, fraud=NO_BARS,
            workers=workers, in_transaction=in_transaction, writer_process=writer_process)
        self.loyalty = LoyaltyService(plans, self.runner, reward_billing or self.ledger,
                                      clock=self.clock, billing_timeout=5)
        self.svc.loyalty = self.loyalty

    async def activate(self, hrn, msisdn=MSISDN, **kw):
        res = await self.svc.activate(ActivationRequest(msisdn=msisdn, hrn=hrn, channel="sms", **kw))
        await self.loyalty.drain()
        return res

    async def stop(self):
        await self.loyalty.drain()
        await self.runner.stop()


def counters(store):
    return store.run_sync(lambda tx: sorted(tuple(r) for r in tx.execute(
        select(loyalty_counter.c.msisdn, loyalty_counter.c.plan_id, loyalty_counter.c.period_key,
               loyalty_counter.c.recharges, loyalty_counter.c.amount,
               loyalty_counter.c.rewarded_tiers)).rows))


def reward_rows(store):
    return [t for t in txn_rows(store) if t["kind"] == "loyalty"]


def clock_at(when: str) -> task.Clock:
    c = task.Clock()
    c.advance(at(when))
    return c


# -- tiers -------------------------------------------------------------------------
@pytest.mark.parametrize("in_transaction", [True, False], ids=["ledger-in-unit", "ledger-apart"])
@pytest_twisted.ensureDeferred
async def test_tier_crossing_rewards_once_and_the_reply_says_so(in_transaction, env, reactor):
    """The embedded ledger credits in the activation's unit (rewards too), or apart
    like an external billing system (rewards credited after the commit)."""
    await _tier_crossing(*env, reactor, in_transaction, writer_process=False)


@pytest.mark.parametrize("in_transaction", [True, False], ids=["ledger-in-unit", "ledger-apart"])
@pytest_twisted.ensureDeferred
async def test_tier_crossing_with_units_in_a_writer_process(in_transaction, sqlite_url,
                                                            tmp_path, reactor):
    """The same in a SQLite node's writer process, where the loyalty hook, the
    plans and the ledger's in-transaction credit travel with each unit."""
    saga.forget_batch_terms()
    store, cipher = make_store(sqlite_url, str(tmp_path))
    try:
        await _tier_crossing(store, cipher, reactor, in_transaction, writer_process=True)
    finally:
        store.dispose()


async def _tier_crossing(store, cipher, reactor, in_transaction, writer_process):
    _, hrns = make_batch(store, cipher, 6)
    p = plan(name="Gold club", tiers=((2, 0, 150, 7), (4, 0, 500, 0)))
    e = Env(store, cipher, reactor, [p], in_transaction=in_transaction,
            writer_process=writer_process)
    try:
        results = [await e.activate(h) for h in hrns.values()]
        assert [r.code for r in results] == [R.SUCCESS] * 6
        assert [len(r.rewards) for r in results] == [0, 1, 0, 1, 0, 0]
        g2, g4 = results[1].rewards[0], results[3].rewards[0]
        assert (g2.plan, g2.plan_name, g2.tier, g2.amount, g2.currency, g2.validity_days) == \
            ("p1", "Gold club", "r2", 150, "EUR", 7)
        assert (g4.tier, g4.amount, g4.validity_days) == ("r4", 500, 0)
        assert g2.msisdn == E164 and g2.parent_id == results[1].txn_id
        assert g2.state == ("success" if in_transaction else "pending")   # when replied
        assert g2.text == "Loyalty reward (Gold club, 2 recharges): 1.50 EUR and 7 days validity."
        assert g2.fields()["bonus"] == "1.50 EUR"
        # the rewards were credited through billing with their own keys and rows
        credited = {k: a for k, _, a in credited_entries(store)}
        assert credited[g2.txn_id] == 150 and credited[g4.txn_id] == 500
        rows = {t["id"]: t for t in reward_rows(store)}
        assert set(rows) == {g2.txn_id, g4.txn_id}
        r2 = rows[g2.txn_id]
        assert (r2["kind"], r2["channel"], r2["state"], r2["result_code"], r2["parent_id"],
                r2["plan_id"], r2["account"], r2["amount"], r2["validity_days"]) == \
            ("loyalty", "loyalty", "success", 0, results[1].txn_id, "p1", E164, 150, 7)
        month = p.period.key(int(time.time() * 1000))
        assert counters(store) == [(E164, "p1", month, 6, 6000, "r2,r4")]
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_weights_amounts_and_the_batch_snapshot(env, reactor):
    store, cipher = env
    # a batch generated with loyalty parameters: weight 3 toward "snap"
    _, snap_hrns = make_batch(store, cipher, 1, vt=VType(code="S", loyalty={"snap": 3}))
    _, plain = make_batch(store, cipher, 2, vt=VType(code="T10", loyalty={}))
    snap = plan("snap", tiers=((3, 0, 100, 0),), voucher_types={})        # counts only the snapshot
    typed = plan("typed", tiers=((0, 3000, 0, 30),), counter="amount", voucher_types={"T10": 2})
    usd = plan("usd", tiers=((1, 0, 100, 0),), currency="USD", voucher_types={"T10": 1})
    off = plan("zero", voucher_types={"T10": 0})
    e = Env(store, cipher, reactor, [snap, typed, usd, off])
    try:
        r1 = await e.activate(next(iter(snap_hrns.values())))
        assert [g.plan for g in r1.rewards] == ["snap"]         # 1 recharge, weight 3
        h1, h2 = plain.values()
        r2 = await e.activate(h1)
        # typed: weight 2 -> 2 recharges, 20.00 EUR; usd: a recharge but no EUR amount
        assert [g.plan for g in r2.rewards] == ["usd"]
        r3 = await e.activate(h2)
        assert [(g.plan, g.tier, g.validity_days) for g in r3.rewards] == [("typed", "a3000", 30)]
        got = {c[1]: c[3:5] for c in counters(store)}
        assert got == {"snap": (3, 3000), "typed": (4, 4000), "usd": (2, 0)}
    finally:
        await e.stop()


# -- periods ------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_calendar_month_boundary_restarts_the_count(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 5)
    hrns = list(hrns.values())
    clock = clock_at("2025-01-31T23:59:59")
    e = Env(store, cipher, reactor, [plan(tiers=((2, 0, 100, 0),))], clock=clock)
    try:
        assert (await e.activate(hrns[0])).rewards == ()
        clock.advance(1)                                    # 2025-02-01T00:00:00Z
        assert (await e.activate(hrns[1])).rewards == ()    # a new month: count 1
        got = await e.activate(hrns[2])
        assert [(g.tier, g.period) for g in got.rewards] == [("r2", "M2025-02")]
        assert (await e.activate(hrns[3])).rewards == ()    # once per period
        assert [c[2:4] for c in counters(store)] == [("M2025-01", 1), ("M2025-02", 3)]
        assert not clock.getDelayedCalls()
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_calendar_day_and_week_boundaries(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 4)
    hrns = list(hrns.values())
    clock = clock_at("2025-01-05T23:00:00")          # a Sunday
    day = plan("day", tiers=((2, 0, 100, 0),), period=Period("day"))
    week = plan("week", tiers=((2, 0, 100, 0),), period=Period("week"))
    e = Env(store, cipher, reactor, [day, week], clock=clock)
    try:
        await e.activate(hrns[0])
        clock.advance(2 * 3600)                       # Monday 01:00: new day and new ISO week
        assert (await e.activate(hrns[1])).rewards == ()
        clock.advance(3600)
        got = await e.activate(hrns[2])               # same Monday: both reach 2
        assert sorted((g.plan, g.period) for g in got.rewards) == [("day", "D2025-01-06"),
                                                                   ("week", "W2025-02")]
        clock.advance(86400)                          # Tuesday: new day, same week
        assert (await e.activate(hrns[3])).rewards == ()
        assert [c[1:4] for c in counters(store)] == [
            ("day", "D2025-01-05", 1), ("day", "D2025-01-06", 2), ("day", "D2025-01-07", 1),
            ("week", "W2025-01", 1), ("week", "W2025-02", 3)]
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_rolling_window(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 9)
    hrns = list(hrns.values())
    clock = clock_at("2025-03-10T12:00:00")
    e = Env(store, cipher, reactor, [plan(tiers=((3, 0, 100, 0),), period=Period("rolling", 7))],
            clock=clock)
    day = 86400
    try:
        await e.activate(hrns[0])
        await e.activate(hrns[1])
        clock.advance(7 * day)                                   # both left the window
        assert (await e.activate(hrns[2])).rewards == ()         # window holds 1
        clock.advance(day)
        assert (await e.activate(hrns[3])).rewards == ()         # 2
        clock.advance(day)
        first = await e.activate(hrns[4])                        # 3 within 7 days
        assert [(g.tier, g.period) for g in first.rewards] == [("r3", "rolling")]
        clock.advance(day)
        assert (await e.activate(hrns[5])).rewards == ()         # 4, rewarded this window
        clock.advance(7 * day)                                   # a full window later
        assert (await e.activate(hrns[6])).rewards == ()         # window holds 1 again
        assert (await e.activate(hrns[7])).rewards == ()
        second = await e.activate(hrns[8])
        assert [g.tier for g in second.rewards] == ["r3"]
        assert second.rewards[0].txn_id != first.rewards[0].txn_id
        assert len([t for t in reward_rows(store) if t["state"] == "success"]) == 2
        # old events are pruned, the window's are kept
        events = store.run_sync(lambda tx: tx.execute(select(loyalty_event.c.at)).rows)
        assert len(events) == 3
    finally:
        await e.stop()


# -- concurrency ---------------------------------------------------------------------
@pytest.mark.parametrize("in_transaction", [True, False], ids=["ledger-in-unit", "ledger-apart"])
@pytest_twisted.ensureDeferred
async def test_concurrent_activations_crossing_one_target_reward_once(in_transaction, env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 30)
    e = Env(store, cipher, reactor, [plan(tiers=((10, 0, 100, 0), (30, 0, 900, 0)))],
            workers=None if store.is_sqlite else 8, in_transaction=in_transaction)
    hrns = list(hrns.values())
    try:
        # the first recharge creates the ledger account (concurrent first credits of
        # a new account are the ledger's business); then 29 at once
        results = [await e.activate(hrns[0])]
        results += await defer.gatherResults([
            e.svc.activate(ActivationRequest(msisdn=MSISDN, hrn=h, channel="sms"))
            for h in hrns[1:]])
        await e.loyalty.drain()
        assert [r.code for r in results] == [R.SUCCESS] * 30
        granted = sorted(g.tier for r in results for g in r.rewards)
        assert granted == ["r10", "r30"]
        assert [c[3] for c in counters(store)] == [30]
        rows = reward_rows(store)
        assert sorted(t["amount"] for t in rows) == [100, 900]
        assert sorted(a for _, _, a in credited_entries(store) if a in (100, 900)) == [100, 900]
    finally:
        await e.stop()


# -- reward billing failures -----------------------------------------------------------
class LostAfterCredit:
    """Billing that credits (through the ledger) but loses the answer."""

    def __init__(self, ledger):
        self.ledger = ledger

    def credit(self, *a, **kw):
        return self.ledger.credit(*a, **kw).addCallback(
            lambda _: defer.fail(BillingUnavailable("answer lost")))

    def lookup(self, *a, **kw):
        return self.ledger.lookup(*a, **kw)


@pytest.mark.parametrize("failure", ["lost", "down", "lost-after-credit"])
@pytest_twisted.ensureDeferred
async def test_reward_with_unknown_outcome_is_reconciled_once(failure, env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    clock = task.Clock()
    clock.advance(time.time())
    e = Env(store, cipher, reactor, [plan(tiers=((1, 0, 250, 3),))], clock=clock)
    e.loyalty.billing = LostAfterCredit(e.ledger) if failure == "lost-after-credit" \
        else FakeBilling(failure)
    try:
        res = await e.activate(next(iter(hrns.values())))
        assert res.code == R.SUCCESS and [g.amount for g in res.rewards] == [250]
        (row,) = reward_rows(store)
        assert row["state"] == "pending"
        rec = Reconciler(e.runner, e.ledger, clock=clock, older_than_seconds=60,
                         loyalty=e.loyalty)
        assert (await rec.run()).examined == 0                  # too young
        clock.advance(61)
        rep = await rec.run()
        assert (rep.examined, rep.rewards_credited, rep.committed, rep.released) == (1, 1, 0, 0)
        (row,) = reward_rows(store)
        assert (row["state"], row["result_code"]) == ("success", 0)
        assert [a for k, _, a in credited_entries(store) if k == row["id"]] == [250]
        assert (await rec.run()).examined == 0
        assert not clock.getDelayedCalls()
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_reward_refused_is_failed_and_reconciliation_keeps_trying_unanswered(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    h1, h2 = hrns.values()
    clock = task.Clock()
    clock.advance(time.time())
    e = Env(store, cipher, reactor, [plan("a", tiers=((1, 0, 100, 0),)),
                                     plan("b", tiers=((2, 0, 100, 0),))],
            clock=clock, reward_billing=FakeBilling("reject"))
    try:
        await e.activate(h1)
        (row,) = reward_rows(store)
        assert (row["state"], row["result_code"]) == ("failed", int(R.BILLING_REJECTED))
        e.loyalty.billing = FakeBilling("lost")
        await e.activate(h2)
        clock.advance(61)
        rec = Reconciler(e.runner, FakeBilling("lost"), clock=clock, older_than_seconds=60)
        rep = await rec.run()
        assert (rep.examined, rep.left, rep.rewards_credited) == (1, 1, 0)   # still pending
        rep = await Reconciler(e.runner, e.ledger, clock=clock, older_than_seconds=60).run()
        assert rep.rewards_credited == 1
        assert sorted(t["state"] for t in reward_rows(store)) == ["failed", "success"]
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_activation_concluded_by_reconciliation_counts_too(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    h1, h2 = hrns.values()
    clock = task.Clock()
    clock.advance(time.time())
    billing = FakeBilling("accept")
    e = Env(store, cipher, reactor, [plan(tiers=((2, 0, 100, 0),))], clock=clock, billing=billing,
            reward_billing=billing)
    try:
        assert (await e.activate(h1)).code == R.SUCCESS
        billing.mode = "lost"
        res = await e.activate(h2)
        assert res.code == R.BILLING_UNAVAILABLE and res.rewards == ()
        billing.credits[res.txn_id] = (E164, 1000, "EUR", 30)     # billing did credit it
        billing.mode = "accept"
        clock.advance(61)
        rep = await Reconciler(e.runner, billing, clock=clock, older_than_seconds=60,
                               loyalty=e.loyalty).run()
        assert rep.committed == 1
        await e.loyalty.drain()
        (row,) = reward_rows(store)
        assert (row["state"], row["parent_id"], row["amount"]) == ("success", res.txn_id, 100)
        assert row["id"] in billing.credits
        assert [c[3] for c in counters(store)] == [2]
    finally:
        await e.stop()


# -- configuration changes, eligibility, activity ------------------------------------------
@pytest_twisted.ensureDeferred
async def test_plan_changed_between_restarts_keeps_counters_and_applies_new_tiers(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 5)
    hrns = list(hrns.values())
    e = Env(store, cipher, reactor, [plan(tiers=((2, 0, 100, 0),))])
    try:
        rewarded = [len((await e.activate(h)).rewards) for h in hrns[:3]]
        assert rewarded == [0, 1, 0]
    finally:
        await e.stop()
    # restart with an edited plan: tier 2 kept (richer reward), tiers 1 and 4 added
    e = Env(store, cipher, reactor, [plan(tiers=((1, 0, 50, 0), (2, 0, 999, 0), (4, 0, 400, 0)))])
    try:
        got = await e.activate(hrns[3])                        # count 4 (kept across the restart)
        assert sorted(g.tier for g in got.rewards) == ["r1", "r4"]
        assert (await e.activate(hrns[4])).rewards == ()
        assert [c[3:] for c in counters(store)] == [(5, 5000, "r1,r2,r4")]
        assert sorted(t["amount"] for t in reward_rows(store)) == [50, 100, 400]
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_eligibility_prefixes_use_the_credited_subscriber(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 4)
    h = list(hrns.values())
    p = plan(tiers=((1, 0, 100, 0),),
             eligible=(PrefixRange.parse("38164"), PrefixRange.parse("3816600-3816699")))
    e = Env(store, cipher, reactor, [p])
    try:
        assert len((await e.activate(h[0], msisdn="0641234567")).rewards) == 1
        assert (await e.activate(h[1], msisdn="0651234567")).rewards == ()
        assert len((await e.activate(h[2], msisdn="0661234567")).rewards) == 1
        # a beneficiary outside the ranges: the credited account is what counts
        assert (await e.activate(h[3], msisdn="0641111111", beneficiary="0651111111")).rewards == ()
        assert sorted(c[0] for c in counters(store)) == ["381641234567", "381661234567"]
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_inactive_plans_count_nothing(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    h1, h2 = hrns.values()
    clock = clock_at("2025-06-15T12:00:00")
    day = dt.date(2025, 6, 15)
    plans = [
        plan("disabled", tiers=((1, 0, 100, 0),), enabled=False),
        plan("over", tiers=((1, 0, 100, 0),), active_until=day_start_ms(day)),
        plan("future", tiers=((1, 0, 100, 0),), active_from=day_start_ms(day) + 86_400_000),
        plan("now", tiers=((1, 0, 100, 0),), active_from=day_start_ms(day),
             active_until=day_start_ms(day) + 86_400_000),
    ]
    e = Env(store, cipher, reactor, plans, clock=clock)
    try:
        assert [g.plan for g in (await e.activate(h1)).rewards] == ["now"]
        clock.advance(86400)                     # "future" starts, "now" has ended
        assert [g.plan for g in (await e.activate(h2)).rewards] == ["future"]
        assert sorted(c[1] for c in counters(store)) == ["future", "now"]
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_no_plan_no_loyalty_work(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    e = Env(store, cipher, reactor, [])
    try:
        res = await e.activate(next(iter(hrns.values())))
        assert res.code == R.SUCCESS and res.rewards == ()
        assert counters(store) == [] and reward_rows(store) == []
    finally:
        await e.stop()


@pytest_twisted.ensureDeferred
async def test_a_loyalty_failure_never_blocks_the_activation(env, reactor, monkeypatch):
    from core.loyalty import rewards
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    h1, h2 = hrns.values()
    calls = []

    def broken(tx, *a):
        calls.append(1)
        tx.execute_raw("SELECT no_such_column FROM loyalty_counter")   # a real database error
    monkeypatch.setattr(rewards, "record", broken)
    e = Env(store, cipher, reactor, [plan(tiers=((1, 0, 100, 0),))])
    try:
        res = await e.activate(h1)
        assert res.code == R.SUCCESS and res.rewards == ()
        assert len(calls) == 2                                   # tried twice
        assert counters(store) == [] and reward_rows(store) == []   # loyalty work rolled back alone
        assert [t["state"] for t in txn_rows(store)] == ["success"]
        monkeypatch.undo()
        assert len((await e.activate(h2)).rewards) == 1
    finally:
        await e.stop()
