"""LoyaltyService: the object ActivationService and the Reconciler count recharges through.

C{after_success} runs on the reactor and decides which plans a recharge
counts toward; the function it returns runs inside the activation's
C{commit_success} unit of work (L{core.saga.commit_success}), updates the
counters and writes the rows of the rewards reached.  C{grant} then credits
those rewards through the billing port, off the activation's reply path.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import bindparam, select
from twisted.internet import defer
from twisted.logger import Logger

from core.interfaces import IInTransactionCredit
from core.loyalty import counters, rewards
from core.loyalty.plans import Plan, parse_snapshot
from core.schema import voucher


@dataclass(frozen=True)
class Counted:
    """One plan a recharge counts toward, with what it adds."""

    plan: Plan
    weight: int
    amount: int


def select_plans(plans, msisdn: str, type_code: str, snapshot_json: str | None, amount: int,
                 currency: str, now: int) -> tuple[Counted, ...]:
    """The plans a recharge of C{type_code} by C{msisdn} at C{now} counts toward (pure).

    A plan counts it when it is active at C{now}, C{msisdn} is eligible and
    the recharge's weight (the batch's loyalty snapshot first, then the
    plan's voucher types) is above 0.
    """
    snapshot = parse_snapshot(snapshot_json)
    out = []
    for p in plans:
        if not p.active(now) or not p.eligible_msisdn(msisdn):
            continue
        w = p.weight(type_code, snapshot)
        if w > 0:
            out.append(Counted(p, w, p.counted_amount(amount, currency, w)))
    return tuple(out)


def count_recharge(tx, counted: tuple[Counted, ...], msisdn: str, txn_id: str, currency: str,
                   now: int, credit_in=None) -> list:
    """Count one recharge in each plan and record the rewards it reaches (in a unit of work).

    A pure function of its arguments and the database: safe to re-run after
    a rollback.

    @param credit_in: the billing connector's in-transaction credit (the
        embedded ledger's), to credit the rewards in this same unit; None
        leaves them C{pending} for L{LoyaltyService.grant}.

    @return: the list of L{rewards.RewardGrant} decided.
    """
    granted = []
    for c in counted:
        state = counters.add(tx, c.plan, msisdn, txn_id, c.weight, c.amount, now)
        due = rewards.due_tiers(c.plan, state, now)
        if not due:
            continue
        rewarded = dict(state.rewarded)
        if c.plan.period.rolling:
            floor = now - c.plan.period.window_ms
            rewarded = {t: at for t, at in rewarded.items() if at * 1000 > floor}
        for tier in due:
            rewarded[tier.id] = max(1, now // 1000) if c.plan.period.rolling else 0
            g = rewards.record(tx, c.plan, tier, state, msisdn, txn_id, currency, now)
            if g is not None:
                if credit_in is not None:
                    g = rewards.credit_in_unit(tx, credit_in, g, now)
                granted.append(g)
        counters.mark_rewarded(tx, c.plan, msisdn,
                               counters.CounterState(state.period_key, state.recharges,
                                                     state.amount, rewarded))
    return granted


def guarded(tx, unit, *args, **kwargs) -> list:
    """Run the loyalty C{unit} inside a SAVEPOINT of the activation's unit of work.

    Loyalty must never keep an activation from concluding: a database error
    in it (a deadlock victim on PostgreSQL, say) is retried once, then that
    recharge's loyalty work is rolled back alone and logged, and the
    activation commits without it.

    @return: what C{unit} returned, or [] when it failed.
    """
    for attempt in (1, 2):
        tx.savepoint("loyalty")
        try:
            out = unit(tx, *args, **kwargs)
        except Exception:
            _recover(tx)
            if attempt == 2:
                LoyaltyService.log.failure(
                    "loyalty counting failed for transaction {txn_id}; the recharge is not "
                    "counted", txn_id=kwargs.get("txn_id"))
                return []
        else:
            tx.release("loyalty")
            return out
    return []


def _recover(tx) -> None:
    """Roll back to the C{loyalty} savepoint after an error, also in PostgreSQL
    pipeline mode (L{core.db.Tx.pipeline}), whose aborted state must first be
    cleared with a sync."""
    pipe = getattr(tx, "_pipe", None)
    if pipe is not None:
        try:
            pipe.sync()
        except Exception:
            pass
    tx.rollback_to("loyalty")


_VOUCHER_BATCH = select(voucher.c.batch_id).where(voucher.c.serial == bindparam("serial"))


def count_reconciled(tx, plans, txn_id: str, serial: int, msisdn: str, now: int,
                     credit_in=None) -> list:
    """L{count_recharge} for an activation concluded by reconciliation, which
    knows the voucher but not its batch's terms (in a unit of work)."""
    from core.saga import batch_terms
    row = tx.execute(_VOUCHER_BATCH, {"serial": serial}).first()
    if row is None:
        return []
    t = batch_terms(tx, row[0])
    counted = select_plans(plans, msisdn, t.type_code, t.loyalty, t.face_value, t.currency, now)
    return count_recharge(tx, counted, msisdn, txn_id, t.currency, now, credit_in) if counted else []


class LoyaltyService:
    """Counts recharges toward the configured plans and grants their rewards."""

    log = Logger()

    def __init__(self, plans, runner, billing, *, clock, billing_timeout: float = 10.0):
        """
        @param plans: the configured L{Plan}s (any order; ids unique).
        @param runner: the L{core.units.UnitRunner} of the store.
        @param billing: the L{core.billing.IBillingPort} rewards are credited through.
        @param clock: an C{IReactorTime}.
        @param billing_timeout: seconds to wait for billing per reward.
        """
        self.plans = tuple(plans)
        self.runner = runner
        self.billing = billing
        self.clock = clock
        self.billing_timeout = billing_timeout
        self._inflight: set = set()

    def __reduce__(self):
        """Travels to a writer process (L{core.unit_process}) as what the unit
        hooks use of it there: the plans and the in-transaction credit."""
        return _in_writer, (self.plans, self.billing if self._credit_in() is not None else None)

    def plan(self, plan_id: str) -> Plan | None:
        for p in self.plans:
            if p.id == plan_id:
                return p
        return None

    # -- the activation's hooks ------------------------------------------------
    def after_success(self, reservation, attempt, now: int):
        """The unit hook for one successful activation, or None when no plan counts it.

        @param reservation: the L{core.saga.Reservation} (voucher terms and the
            batch's loyalty snapshot).
        @param attempt: the L{core.saga.Attempt}; its C{account} (the credited
            subscriber) is the one whose counters move.
        @return: C{after(tx)} returning a list of L{rewards.RewardGrant}, or None.
        """
        counted = select_plans(self.plans, attempt.account, reservation.type_code,
                               reservation.loyalty, reservation.amount, reservation.currency, now)
        if not counted:
            return None
        return partial(guarded, unit=count_recharge, counted=counted, msisdn=attempt.account,
                       txn_id=reservation.txn_id, currency=reservation.currency, now=now,
                       credit_in=self._credit_in())

    def after_reconciled(self, txn_id: str, serial: int, account: str, now: int):
        """The unit hook for an activation that reconciliation commits."""
        if not self.plans:
            return None
        return partial(guarded, unit=count_reconciled, plans=self.plans, txn_id=txn_id,
                       serial=serial, msisdn=account, now=now, credit_in=self._credit_in())

    def _credit_in(self):
        """The billing port's in-transaction credit, when it has one and uses it."""
        if IInTransactionCredit.providedBy(self.billing):
            return self.billing.credit_in
        return None

    def grant(self, grants) -> defer.Deferred:
        """Credit each decided reward (on the reactor; never fails).

        @return: a Deferred firing with the list of outcomes
            (C{success}/C{failed}/C{pending}), in order.
        """
        ds = []
        for g in grants:
            if g.state != "pending":          # already credited in the activation's unit
                ds.append(defer.succeed(g.state))
                continue
            d = rewards.credit(self.billing, self.runner, self.clock, self.billing_timeout,
                               g.txn_id, g.msisdn, g.amount, g.currency, g.validity_days)
            self._inflight.add(d)
            d.addBoth(self._landed, d)
            ds.append(d)
        return defer.gatherResults(ds)

    def _landed(self, result, d):
        self._inflight.discard(d)
        return result

    def drain(self) -> defer.Deferred:
        """A Deferred firing once every reward credit in flight has concluded."""
        pending = list(self._inflight)
        if not pending:
            return defer.succeed(None)
        return defer.DeferredList(pending).addCallback(lambda _: None)

    def retry(self, txn_id: str, account: str, amount: int, currency: str,
              validity_days: int) -> defer.Deferred:
        """Credit a pending reward again with its own key (reconciliation)."""
        return rewards.credit(self.billing, self.runner, self.clock, self.billing_timeout,
                              txn_id, account, amount, currency, validity_days, reconciled=True)


def _in_writer(plans, billing) -> LoyaltyService:
    """A L{LoyaltyService} for unit hooks in a writer process (no runner, no clock)."""
    return LoyaltyService(plans, None, billing, clock=None)
