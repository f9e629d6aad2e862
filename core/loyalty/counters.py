"""Loyalty counters, updated inside the activation's unit of work (DESIGN §7).

Calendar periods keep one C{loyalty_counter} row per (subscriber, plan,
period) and add to it with one atomic C{UPDATE ... SET recharges =
recharges + :w ... RETURNING}; the row is created on first use with an
insert that ignores a concurrent creator.  The UPDATE holds the row's lock
until the unit commits, so concurrent recharges of one subscriber (other
threads, other nodes) are serialised on it and none is lost: each sees the
counts including every recharge committed before it.

Rolling windows record one C{loyalty_event} per counted recharge and sum
the window; their single counter row (period key C{rolling}) is locked
first the same way, so the sum is taken in the same order.

C{rewarded_tiers} (on the counter row) lists the tiers already rewarded in
the period: C{r5,a5000} for calendar periods; C{r5@<epoch seconds>} for
rolling windows, where a tier may be rewarded again once a full window has
passed since its last reward.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, select, update

from core.loyalty.plans import Plan
from core.schema import loyalty_counter as lc, loyalty_event as ev

_KEY = and_(lc.c.msisdn == bindparam("m"), lc.c.plan_id == bindparam("p"),
            lc.c.period_key == bindparam("k"))

_BUMP = update(lc).where(_KEY).values(
    recharges=lc.c.recharges + bindparam("w"), amount=lc.c.amount + bindparam("amt"),
    updated_at=bindparam("ts")).returning(lc.c.recharges, lc.c.amount, lc.c.rewarded_tiers)

_LOCK = update(lc).where(_KEY).values(updated_at=bindparam("ts")).returning(lc.c.rewarded_tiers)

_SET = update(lc).where(_KEY).values(recharges=bindparam("r"), amount=bindparam("amt"))

_MARK = update(lc).where(_KEY).values(rewarded_tiers=bindparam("rt"))

_SUM = select(func.coalesce(func.sum(ev.c.weight), 0), func.coalesce(func.sum(ev.c.amount), 0)) \
    .where(and_(ev.c.msisdn == bindparam("m"), ev.c.plan_id == bindparam("p"),
                ev.c.at > bindparam("since")))

_PRUNE = delete(ev).where(and_(ev.c.msisdn == bindparam("m"), ev.c.plan_id == bindparam("p"),
                               ev.c.at <= bindparam("since")))

_READ = select(lc.c.recharges, lc.c.amount, lc.c.rewarded_tiers, lc.c.updated_at).where(_KEY)


@dataclass(frozen=True)
class CounterState:
    """A subscriber's counts in one plan's period after a recharge.

    @ivar rewarded: tier id -> when it was last rewarded (epoch seconds;
        0 for calendar periods, where the time is not kept).
    """

    period_key: str
    recharges: int
    amount: int
    rewarded: dict


def parse_rewarded(text: str | None) -> dict:
    """C{"r5,a5000@1735689600"} -> C{{"r5": 0, "a5000": 1735689600}}."""
    out = {}
    for item in (text or "").split(","):
        if not item:
            continue
        tier, _, at = item.partition("@")
        out[tier] = int(at) if at.isdigit() else 0
    return out


def format_rewarded(rewarded: dict) -> str:
    """The inverse of L{parse_rewarded}, in a stable order."""
    return ",".join(("%s@%d" % (t, at)) if at else t for t, at in sorted(rewarded.items()))


def _ensure(tx, msisdn: str, plan_id: str, key: str, now: int) -> None:
    tx.insert_ignore(lc, {"msisdn": msisdn, "plan_id": plan_id, "period_key": key,
                          "recharges": 0, "amount": 0, "rewarded_tiers": "", "updated_at": now})


def add(tx, plan: Plan, msisdn: str, txn_id: str, weight: int, amount: int,
        now: int) -> CounterState:
    """Count one recharge of C{msisdn} in C{plan} (inside a unit of work).

    @param weight: added to the recharge count.
    @param amount: added to the amount count (minor units, already weighted).
    @return: the L{CounterState} including this recharge; the counter row
        stays locked by this transaction until it ends.
    """
    key = plan.period.key(now)
    p = {"m": msisdn, "p": plan.id, "k": key, "ts": now}
    if not plan.period.rolling:
        bump = dict(p, w=weight, amt=amount)
        row = tx.execute(_BUMP, bump).first()
        if row is None:
            _ensure(tx, msisdn, plan.id, key, now)
            row = tx.execute(_BUMP, bump).first()
        return CounterState(key, int(row[0]), int(row[1]), parse_rewarded(row[2]))
    row = tx.execute(_LOCK, p).first()
    if row is None:
        _ensure(tx, msisdn, plan.id, key, now)
        row = tx.execute(_LOCK, p).first()
    since = now - plan.period.window_ms
    tx.execute(_PRUNE, {"m": msisdn, "p": plan.id, "since": since})
    tx.insert(ev, {"msisdn": msisdn, "plan_id": plan.id, "txn_id": txn_id, "at": now,
                   "weight": weight, "amount": amount})
    recharges, total = tx.execute(_SUM, {"m": msisdn, "p": plan.id, "since": since}).first()
    recharges, total = int(recharges), int(total)
    tx.execute(_SET, {"m": msisdn, "p": plan.id, "k": key, "r": recharges, "amt": total})
    return CounterState(key, recharges, total, parse_rewarded(row[0]))


def mark_rewarded(tx, plan: Plan, msisdn: str, state: CounterState) -> None:
    """Store C{state.rewarded} on the counter row (the row is locked by L{add})."""
    tx.execute(_MARK, {"m": msisdn, "p": plan.id, "k": state.period_key,
                       "rt": format_rewarded(state.rewarded)})


def read(tx, plan: Plan, msisdn: str, now: int) -> CounterState:
    """The counts of C{msisdn} in C{plan}'s period holding C{now} (read only).

    A rolling window is summed at C{now}, so recharges that have left the
    window no longer count.
    """
    key = plan.period.key(now)
    row = tx.execute(_READ, {"m": msisdn, "p": plan.id, "k": key}).first()
    rewarded = parse_rewarded(row[2]) if row is not None else {}
    if plan.period.rolling:
        r, a = tx.execute(_SUM, {"m": msisdn, "p": plan.id,
                                 "since": now - plan.period.window_ms}).first()
        return CounterState(key, int(r), int(a), rewarded)
    if row is None:
        return CounterState(key, 0, 0, {})
    return CounterState(key, int(row[0]), int(row[1]), rewarded)
