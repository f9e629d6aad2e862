"""Reconciliation of reservations whose billing outcome is unknown (DESIGN §4 step 6).

For every transaction pending longer than the configured age, billing is
asked by idempotency key: credited → the voucher becomes C{used}; no
record (which a connector only answers when the credit can no longer
apply) or refused → the voucher is released.  Unanswered lookups are left
for the next run.

A pending loyalty reward (kind C{loyalty}) has no voucher: its credit is
repeated with its own idempotency key, which billing answers without
crediting twice, and only its transaction row is concluded.  An activation
committed here counts toward loyalty plans like one committed on the spot.
"""
from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer
from twisted.logger import Logger

from core import saga
from core.results import ResultCode as R
from core.timeutil import now_ms


@dataclass
class ReconcileReport:
    """What one reconciliation run did."""

    examined: int = 0
    committed: int = 0
    released: int = 0
    left: int = 0
    rewards_credited: int = 0
    rewards_failed: int = 0


class Reconciler:
    """Concludes pending activations by asking billing."""

    log = Logger()

    def __init__(self, runner, billing, *, clock, older_than_seconds: float,
                 lookup_timeout: float = 10.0, batch: int = 500, loyalty=None):
        """
        @param loyalty: the L{core.loyalty.service.LoyaltyService}, or None.
        """
        self.runner = runner
        self.loyalty = loyalty
        self.billing = billing
        self.clock = clock
        self.older_than = older_than_seconds
        self.lookup_timeout = lookup_timeout
        self.batch = batch
        self._running = None

    def run(self, older_than_seconds: float | None = None) -> defer.Deferred:
        """Reconcile once; concurrent calls share the run in progress.

        @return: a Deferred firing with a L{ReconcileReport}.
        """
        if self._running is None:
            age = self.older_than if older_than_seconds is None else older_than_seconds
            self._running = defer.ensureDeferred(self._run(age))

            def clear(result):
                self._running = None
                return result
            self._running.addBoth(clear)
        d = defer.Deferred()
        self._running.addBoth(lambda r: (d.callback(r), r)[1])
        return d

    async def _run(self, age: float) -> ReconcileReport:
        report = ReconcileReport()
        cutoff = now_ms(self.clock) - int(age * 1000)
        seen = set()
        while True:
            rows = await self.runner.submit(saga.pending_older_than, cutoff, self.batch)
            rows = [r for r in rows if r.txn_id not in seen]
            if not rows:
                break
            for p in rows:
                txn_id = p.txn_id
                seen.add(txn_id)
                report.examined += 1
                if p.kind == "loyalty":
                    await self._reward(report, p)
                    continue
                try:
                    d = defer.maybeDeferred(self.billing.lookup, txn_id, account=p.account,
                                            amount=p.amount, currency=p.currency,
                                            validity_days=p.validity_days, voucher_type=p.voucher_type)
                    d.addTimeout(self.lookup_timeout, self.clock)
                    outcome = await d
                except Exception as e:
                    self.log.warn("reconciliation: billing lookup for {txn_id} failed ({why}); "
                                  "left pending", txn_id=txn_id, why=type(e).__name__)
                    report.left += 1
                    continue
                now = now_ms(self.clock)
                if outcome is not None and outcome.credited:
                    after = (self.loyalty.after_reconciled(txn_id, p.serial, p.account, now)
                             if self.loyalty is not None else None)
                    done = await self.runner.submit(
                        saga.commit_success, txn_id=txn_id, serial=p.serial, msisdn=p.msisdn,
                        now=now, billing_ms=None,
                        detail={"reconciled": True, "balance": outcome.balance,
                                "new_expiry": outcome.new_expiry},
                        reset_fraud=False, actor="reconcile", after=after)
                    report.committed += int(done.changed)
                    if done.after:
                        self.loyalty.grant(done.after)
                else:
                    code = outcome.code if outcome is not None else R.BILLING_UNAVAILABLE
                    why = "reconciled: not credited" if outcome is None else "reconciled: refused"
                    changed = await self.runner.submit(saga.release, txn_id, p.serial, code, now,
                                                       None, why, "reconcile")
                    report.released += int(changed)
        if report.examined:
            self.log.info("reconciliation: {examined} examined, {committed} committed, "
                          "{released} released, {left} left pending; loyalty rewards "
                          "{rewards_credited} credited, {rewards_failed} refused",
                          examined=report.examined, committed=report.committed,
                          released=report.released, left=report.left,
                          rewards_credited=report.rewards_credited,
                          rewards_failed=report.rewards_failed)
        return report

    async def _reward(self, report: ReconcileReport, p: saga.PendingTxn) -> None:
        from core.loyalty import rewards
        got = await rewards.credit(self.billing, self.runner, self.clock, self.lookup_timeout,
                                   p.txn_id, p.account, p.amount, p.currency, p.validity_days,
                                   reconciled=True)
        if got == "success":
            report.rewards_credited += 1
        elif got == "failed":
            report.rewards_failed += 1
        else:
            report.left += 1
