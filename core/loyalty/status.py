"""Read-only views of a subscriber's loyalty standing, for the CLI and the admin GUI."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select

from core.loyalty import counters
from core.loyalty.plans import Plan, Tier
from core.schema import txn


@dataclass(frozen=True)
class TierStatus:
    """One tier of a plan for one subscriber in the current period.

    @ivar to_go_recharges: recharges still needed (0 when reached).
    @ivar to_go_amount: amount (minor units) still needed (0 when reached).
    """

    tier: Tier
    reached: bool
    rewarded: bool
    to_go_recharges: int
    to_go_amount: int


@dataclass(frozen=True)
class PlanStatus:
    """A subscriber's standing in one plan at one instant."""

    plan: Plan
    active: bool
    eligible: bool
    period_key: str
    period_start: int
    period_end: int
    recharges: int
    amount: int
    tiers: tuple[TierStatus, ...]

    @property
    def next_tier(self) -> TierStatus | None:
        """The lowest tier not reached yet, or None."""
        for t in self.tiers:
            if not t.reached:
                return t
        return None


@dataclass(frozen=True)
class RewardRow:
    """A loyalty reward transaction as customer care sees it."""

    txn_id: str
    started_at: int
    plan_id: str
    period: str
    tier: str
    amount: int
    currency: str
    validity_days: int
    state: str
    result_code: int
    parent_id: str | None


_REWARDS = select(txn.c.id, txn.c.started_at, txn.c.plan_id, txn.c.channel_ref, txn.c.amount,
                  txn.c.currency, txn.c.validity_days, txn.c.state, txn.c.result_code,
                  txn.c.parent_id) \
    .where(and_(txn.c.kind == "loyalty", txn.c.msisdn == bindparam("m"))) \
    .order_by(txn.c.started_at.desc()).limit(bindparam("limit"))


def plan_status(tx, plan: Plan, msisdn: str, now: int) -> PlanStatus:
    """The standing of C{msisdn} in C{plan} at C{now} (a read-only unit)."""
    st = counters.read(tx, plan, msisdn, now)
    start, end = plan.period.bounds(now)
    floor = now - plan.period.window_ms
    tiers = []
    for t in plan.tiers:
        at = st.rewarded.get(t.id)
        rewarded = at is not None and (not plan.period.rolling or at * 1000 > floor)
        tiers.append(TierStatus(t, t.reached(st.recharges, st.amount), rewarded,
                                max(0, t.recharges - st.recharges), max(0, t.amount - st.amount)))
    return PlanStatus(plan, plan.active(now), plan.eligible_msisdn(msisdn), st.period_key, start,
                      end, st.recharges, st.amount, tuple(tiers))


def subscriber_status(tx, plans, msisdn: str, now: int, limit: int = 20):
    """(C{[PlanStatus]} for every plan, the latest C{limit} L{RewardRow}s) of
    C{msisdn} (a read-only unit)."""
    statuses = [plan_status(tx, p, msisdn, now) for p in plans]
    rows = []
    for r in tx.execute(_REWARDS, {"m": msisdn, "limit": limit}).rows:
        _, period, tier = (r[3] or "::").rsplit(":", 2) if (r[3] or "").count(":") >= 2 \
            else ("", "", r[3] or "")
        rows.append(RewardRow(r[0], r[1], r[2], period, tier, r[4], r[5], r[6], r[7], r[8], r[9]))
    return statuses, rows
