"""Loyalty rewards: which tiers a recharge reaches, their transaction rows, and their credit.

A reached tier is rewarded at most once per period per subscriber: the
counter row's C{rewarded_tiers} records it in the same unit of work that
counted the recharge, and the reward's transaction id -- also its billing
idempotency key -- is derived from (subscriber, plan, period, tier), so even
a repeated decision could neither insert a second row nor credit twice.

The credit itself runs after the activation's unit committed: a C{loyalty}
transaction row (channel C{loyalty}, C{parent_id} = the activation) is
C{pending} until billing answers.  An unknown outcome leaves it pending; the
reconciliation job then repeats the credit with the same key, which billing
answers without crediting twice (L{core.billing.IBillingPort.credit}).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, update
from twisted.internet import defer
from twisted.logger import Logger

from core.billing import BillingUnavailable
from core.loyalty.counters import CounterState
from core.loyalty.plans import Plan, Tier
from core.money import format_money
from core.results import ResultCode as R
from core.schema import txn

log = Logger(namespace="core.loyalty.rewards")

CHANNEL = "loyalty"
KIND = "loyalty"


@dataclass(frozen=True)
class RewardGrant:
    """A reward decided for one subscriber (an item of C{ActivationResult.rewards}).

    @ivar txn_id: the reward's transaction id and billing idempotency key.
    @ivar parent_id: the activation that reached the tier.
    @ivar msisdn: the credited subscriber (E.164 digits).
    @ivar plan: the plan id; C{plan_name} its display name.
    @ivar tier: the tier id (C{r5}, C{a5000}); C{target} says it in words.
    @ivar period: the counter period key (C{M2025-01}, C{rolling}).
    @ivar amount: bonus in minor units of C{currency} (0: none).
    @ivar validity_days: account validity granted (0: none).
    """

    txn_id: str
    parent_id: str
    msisdn: str
    plan: str
    plan_name: str
    tier: str
    tier_name: str
    target: str
    period: str
    amount: int
    currency: str
    validity_days: int
    state: str = "pending"

    @property
    def text(self) -> str:
        """Default English text: C{Loyalty reward (Gold, 5 recharges): 5.00 EUR and 7 days validity.}"""
        what = []
        if self.amount:
            what.append(format_money(self.amount, self.currency))
        if self.validity_days:
            what.append("%d day%s validity" % (self.validity_days, "" if self.validity_days == 1 else "s"))
        return "Loyalty reward (%s, %s): %s." % (self.plan_name, self.tier_name or self.target,
                                                 " and ".join(what) or "granted")

    def fields(self) -> dict:
        """The values channel reply templates may use."""
        return {"plan": self.plan, "plan_name": self.plan_name, "tier": self.tier,
                "tier_name": self.tier_name or self.target, "target": self.target,
                "amount": self.amount, "currency": self.currency,
                "bonus": format_money(self.amount, self.currency) if self.amount else "",
                "validity_days": self.validity_days, "txn_id": self.txn_id,
                "text": self.text}


def reward_txn_id(msisdn: str, plan_id: str, period_key: str, tier_id: str,
                  parent_id: str | None = None) -> str:
    """The deterministic id (and idempotency key) of a reward: 32 hex digits.

    Calendar periods derive it from (subscriber, plan, period, tier) alone;
    rolling windows, where a tier can be earned again later, add the
    activation that reached it.
    """
    parts = ["loyalty", msisdn, plan_id, period_key, tier_id]
    if parent_id is not None:
        parts.append(parent_id)
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:32]


def due_tiers(plan: Plan, state: CounterState, now: int) -> list[Tier]:
    """Tiers reached by C{state} and not yet rewarded in its period (pure).

    A tier added to the plan later (below counts already reached) is due at
    the subscriber's next counted recharge in the period.
    """
    due = []
    for t in plan.tiers:
        if not t.reached(state.recharges, state.amount):
            continue
        last = state.rewarded.get(t.id)
        if last is None:
            due.append(t)
        elif plan.period.rolling and last * 1000 <= now - plan.period.window_ms:
            due.append(t)
    return due


def record(tx, plan: Plan, tier: Tier, state: CounterState, msisdn: str, parent_id: str,
           recharge_currency: str, now: int) -> RewardGrant | None:
    """Write the reward's C{pending} transaction row (inside a unit of work).

    @return: the L{RewardGrant}, or None when a row with its id already
        exists (it was decided before) or the reward grants nothing.
    """
    rolling = plan.period.rolling
    tid = reward_txn_id(msisdn, plan.id, state.period_key, tier.id, parent_id if rolling else None)
    r = tier.reward
    currency = r.currency or plan.currency or recharge_currency
    if not r.bonus and not r.validity_days:
        return None
    row = {"id": tid, "kind": KIND, "msisdn": msisdn, "account": msisdn, "serial": None,
           "channel": CHANNEL, "channel_ref": "%s:%s:%s" % (plan.id, state.period_key, tier.id),
           "operator_user": None, "source": None, "state": "pending",
           "result_code": int(R.BILLING_UNAVAILABLE), "amount": r.bonus, "currency": currency,
           "validity_days": r.validity_days, "parent_id": parent_id, "plan_id": plan.id,
           "started_at": now, "reserved_at": None, "finished_at": None, "billing_ms": None,
           "detail": None}
    if not tx.insert_ignore(txn, row):
        return None
    return RewardGrant(tid, parent_id, msisdn, plan.id, plan.name, tier.id, tier.name,
                       tier.describe(plan.currency or recharge_currency), state.period_key,
                       r.bonus, currency, r.validity_days)


_CONCLUDE = update(txn).where(and_(txn.c.id == bindparam("tid"), txn.c.kind == KIND,
                                   txn.c.state == "pending")) \
    .values(state=bindparam("st"), result_code=bindparam("code"), finished_at=bindparam("ts"),
            billing_ms=bindparam("ms"), detail=bindparam("dt"))


def conclude(tx, txn_id: str, state: str, code: int, now: int, billing_ms: int | None,
             detail: dict | None) -> bool:
    """Conclude a pending reward row (a unit of work); False if it was no longer pending."""
    return tx.execute(_CONCLUDE, {"tid": txn_id, "st": state, "code": int(code), "ts": now,
                                  "ms": billing_ms,
                                  "dt": json.dumps(detail) if detail else None}).rowcount == 1


def credit_in_unit(tx, credit_in, grant: RewardGrant, now: int) -> RewardGrant:
    """Credit C{grant} inside the caller's unit of work, for a billing connector
    in this database (the embedded ledger's C{credit_in}), and conclude its row.

    @return: the grant with its final C{state} (C{success} or C{failed}).
    """
    from dataclasses import replace
    outcome = credit_in(tx, grant.msisdn, grant.amount, grant.currency, grant.validity_days,
                        grant.txn_id, now)
    if outcome.credited:
        state, code = "success", R.SUCCESS
        detail = {"balance": outcome.balance, "new_expiry": outcome.new_expiry}
    else:
        state, code = "failed", outcome.code
        detail = {"refused": outcome.detail or R(outcome.code).name}
    conclude(tx, grant.txn_id, state, code, now, 0, detail)
    return replace(grant, state=state)


def credit(billing, runner, clock, timeout: float, txn_id: str, account: str, amount: int,
           currency: str, validity_days: int, *, reconciled: bool = False) -> defer.Deferred:
    """Credit one reward through billing and conclude its row.

    Safe to repeat: the reward's id is the idempotency key.

    @return: a Deferred firing with C{"success"}, C{"failed"} (billing
        definitely refused; the row is C{failed} with its code) or
        C{"pending"} (outcome unknown; the row stays pending for the
        reconciliation job).  It does not fail.
    """
    started = clock.seconds()
    d = defer.maybeDeferred(billing.credit, account, amount, currency, validity_days, txn_id)
    d.addTimeout(timeout, clock)

    def answered(outcome):
        ms = int((clock.seconds() - started) * 1000)
        from core.timeutil import now_ms
        now = now_ms(clock)
        if outcome.credited:
            detail = {"balance": outcome.balance, "new_expiry": outcome.new_expiry}
            state, code = "success", R.SUCCESS
        else:
            detail = {"refused": outcome.detail or R(outcome.code).name}
            state, code = "failed", outcome.code
        if reconciled:
            detail["reconciled"] = True
        c = runner.submit(conclude, txn_id, state, code, now, ms, detail)
        c.addCallback(lambda _: state)
        return c

    def unknown(failure):
        exc = failure.value
        if isinstance(exc, (BillingUnavailable, defer.TimeoutError, defer.CancelledError)):
            log.warn("loyalty reward {txn_id}: billing outcome unknown ({why}); left for "
                     "reconciliation", txn_id=txn_id, why=type(exc).__name__)
        else:
            log.failure("loyalty reward {txn_id}: billing connector failed; left for "
                        "reconciliation", failure, txn_id=txn_id)
        return "pending"
    d.addCallbacks(answered, unknown)

    def store_failed(failure):
        log.failure("loyalty reward {txn_id}: could not record the outcome; left for "
                    "reconciliation", failure, txn_id=txn_id)
        return "pending"
    d.addErrback(store_failed)
    return d
