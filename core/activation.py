"""ActivationService: the one entry point every channel calls (DESIGN §4).

Normalise, check bars, reserve, credit through the billing port under a
timeout, then commit or release.  It never raises to a channel: every
outcome, expected or not, is an L{ActivationResult}.
"""
from __future__ import annotations

import dataclasses
import functools

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from core import activation_audit, db_activate, fraud, inbox, saga
from core.billing import BillingUnavailable
from core.db import StoreUnavailable
from core.ids import new_txn_id
from core.interfaces import IActivationService, IInTransactionCredit
from core.metrics import NULL_METRICS
from core.normalise import MsisdnRules, normalise_hrn
from core.requests import ActivationRequest, ActivationResult, Channel
from core.results import FRAUD_COUNTED, ResultCode as R
from core.throttle import SourceGate
from core.timeutil import now_ms

CHANNELS = frozenset(c.value for c in Channel)


@implementer(IActivationService)
class ActivationService:
    """Consumes vouchers exactly once and credits accounts through billing."""

    log = Logger()

    def __init__(self, runner, billing, cipher, *, clock, msisdn_rules: MsisdnRules,
                 hrn_lengths, fraud_settings, billing_timeout: float = 10.0,
                 allow_beneficiary: bool = True, node: str = "node1", loyalty=None,
                 replay_window: float = 3600.0, metrics=None, source_gate=None):
        """
        @param runner: a L{core.units.UnitRunner} for the store.
        @param billing: an L{core.billing.IBillingPort}.
        @param cipher: a L{core.crypto.VoucherCipher} (for the blind index).
        @param clock: an C{IReactorTime}; all times and timeouts use it.
        @param hrn_lengths: HRN lengths of the configured voucher types.
        @param loyalty: optional object with C{after_success(reservation, attempt, now)}
            returning a unit hook, and C{grant(rewards)} (loyalty plans).
        @param replay_window: seconds after a success during which a request
            with the same idempotency key gets the original answer again.
        @param metrics: an L{core.metrics.IMetrics} told of every answer
            (default: L{core.metrics.NULL_METRICS}).
        @param source_gate: an L{ISourceGate}; by default failed attempts
            per source per minute limited by C{fraud_settings}
            (C{source_failures_per_minute}, C{sources}).
        """
        self.runner = runner
        self.billing = billing
        self.cipher = cipher
        self.clock = clock
        self.rules = msisdn_rules
        self.hrn_lengths = frozenset(hrn_lengths)
        self.fraud_settings = fraud_settings
        self.billing_timeout = billing_timeout
        self.allow_beneficiary = allow_beneficiary
        self.node = node
        self.loyalty = loyalty
        self.replay_window_ms = int(replay_window * 1000)
        self.metrics = metrics if metrics is not None else NULL_METRICS
        self.in_flight = 0
        self.running: set[str] = set()     # transaction ids of activations under way
        self._throttled_logged: dict = {}   # (channel, source) -> end of the logged window
        self.source_gate = source_gate if source_gate is not None else SourceGate(
            clock, lambda source: fraud.source_limit(fraud_settings, source))

    def activate(self, req: ActivationRequest, durable=None, audit=None) -> defer.Deferred:
        """Run one activation.

        @param durable: optional C{durable(ok)}, called once the request is
            durable (C{ok} True: its first unit of work committed, or it
            needed none) or certainly lost (C{ok} False: that unit failed,
            nothing of it was kept); before the result is delivered.
        @param audit: optional L{core.queries.AuditEntry}: the channel's audit
            row for this request, written with the answer's C{code},
            C{txn_id} and C{serial} added to its detail
            (L{core.activation_audit}): in the activation's unit of work when
            that unit concludes it (the embedded ledger) and commits, else as
            a unit of its own; before the result is delivered.  A row that
            cannot be written is logged, and the answer still delivered.
        @return: a Deferred that always fires with an L{ActivationResult}.
        """
        durable = _Once(durable)
        note = _AuditNote(audit)
        d = defer.maybeDeferred(self._activate, req, durable, note)
        d.addErrback(self._unexpected, req)
        d.addBoth(durable.settle)
        if audit is not None:
            d.addCallback(self._audit_after, note)
        d.addCallback(self._measured, req.channel, self.clock.seconds())
        return d

    def _audit_after(self, result, note):
        """Write the audit row as a unit of its own unless the activation's unit wrote it."""
        if note.written:
            return result
        d = self.runner.submit(activation_audit.write, note.entry, result.code, result.txn_id,
                               result.serial)
        d.addErrback(lambda f: self.log.failure("audit row of an activation not written", f))
        d.addCallback(lambda _: result)
        return d

    def request_key(self, idempotency_key: str) -> bytes:
        """The inbox key (L{core.inbox.Entry.key}) of a request with this idempotency key."""
        return self.cipher.request_digest(idempotency_key)

    def _measured(self, result, channel, started):
        self.metrics.activation_done(str(getattr(channel, "value", channel)), result.code,
                                     self.clock.seconds() - started)
        return result

    def _unexpected(self, failure, req):
        if failure.check(StoreUnavailable):
            # counted and logged once by the unit runner; the unit left nothing half-done
            return ActivationResult(R.DATABASE_UNAVAILABLE)
        self.log.failure("activation failed unexpectedly ({request})", failure, request=req)
        return ActivationResult(R.SYSTEM_ERROR)

    def _activate(self, req: ActivationRequest, durable, note=None):
        channel = str(getattr(req.channel, "value", req.channel))
        if channel not in CHANNELS:
            raise ValueError("unknown channel %r" % (channel,))
        msisdn = self.rules.normalise(req.msisdn)
        if msisdn is None:
            durable(True)
            return ActivationResult(R.INVALID_MSISDN)
        account = msisdn
        if req.beneficiary:
            account = self.rules.normalise(req.beneficiary) if self.allow_beneficiary else None
            if account is None:
                durable(True)
                return ActivationResult(R.INVALID_MSISDN, msisdn=msisdn)
        hrn = normalise_hrn(req.hrn, self.hrn_lengths)
        if hrn is None:
            durable(True)
            return ActivationResult(R.INVALID_HRN, msisdn=msisdn)
        if not req.source:
            return self._admitted(None, req, durable, channel, msisdn, account, hrn, note)
        gate = self.source_gate.admit(channel, req.source)
        if isinstance(gate, defer.Deferred):
            return gate.addCallback(self._admitted, req, durable, channel, msisdn, account, hrn,
                                    note)
        return self._admitted(gate, req, durable, channel, msisdn, account, hrn, note)

    def _admitted(self, refused_until, req, durable, channel, msisdn, account, hrn, note=None):
        """Go on with an activation its source's gate let through (or refuse it)."""
        if refused_until is not None:     # before any lookup, and without a store write
            durable(True)
            self._throttled(channel, req.source, refused_until)
            return ActivationResult(R.SOURCE_THROTTLED, msisdn=msisdn, account=account)
        attempt = saga.Attempt(
            txn_id=new_txn_id(), msisdn=msisdn, account=account,
            blind_index=self.cipher.blind_index(hrn), channel=channel,
            channel_ref=req.channel_ref, operator_user=req.operator_user, source=req.source,
            now=now_ms(self.clock),
            fraud_scope=fraud.bar_scope(self.fraud_settings, channel, req.source))
        self.in_flight += 1
        self.running.add(attempt.txn_id)
        in_one = IInTransactionCredit.providedBy(self.billing)
        if in_one:
            unit = (db_activate.activate_in_one, attempt, self.fraud_settings, self.billing.credit_in,
                    self.fraud_settings.reset_on_success, self._after_factory(attempt))
            then = self._concluded_in_one
        else:
            unit = (saga.reserve, attempt, self.fraud_settings)
            then = self._reserved
        entry = inbox.entry_for(self.cipher, req, channel)
        if entry is not None:
            unit = (inbox.keyed, entry, attempt.txn_id, attempt.now,
                    self.replay_window_ms) + unit
        if in_one and note is not None and note.entry is not None:
            unit = (activation_audit.audited, note.entry, attempt.txn_id) + unit
            d = self.runner.submit(*unit)
            d.addCallback(note.unwrap)
        else:
            d = self.runner.submit(*unit)
        if req.source:
            d.addBoth(self._source_done, channel, req.source)
        d.addBoth(_durable, durable)
        d.addCallback(_unless_replay, then, attempt)
        d.addBoth(self._done, attempt.txn_id)
        return d

    def _after_factory(self, a: saga.Attempt):
        if self.loyalty is None:
            return None
        return functools.partial(loyalty_hook, self.loyalty, a)

    def _concluded_in_one(self, done: saga.ConcludedInOne, a: saga.Attempt):
        """The answer of L{saga.activate_in_one} (embedded ledger, one unit of work)."""
        outcome = done.outcome
        if outcome is None:
            return self._reserved(done.reserved, a)
        if not outcome.credited:
            return self._result(outcome.code, a, done.reserved)
        rewards = done.rewards
        if rewards and self.loyalty is not None:
            self.loyalty.grant(rewards)
        return self._result(R.SUCCESS, a, done.reserved, new_expiry=outcome.new_expiry,
                            balance=outcome.balance, rewards=tuple(rewards or ()))

    def _done(self, result, txn_id=None):
        self.in_flight -= 1
        self.running.discard(txn_id)
        return result

    def _throttled(self, channel: str, source: str, until: float) -> None:
        """Log a throttled source once per throttled window (not once per refusal)."""
        key = (channel, source)
        if self._throttled_logged.get(key) == until:
            return
        if len(self._throttled_logged) >= 10_000:
            self._throttled_logged.clear()
        self._throttled_logged[key] = until
        self.log.warn("source {source} on {channel} throttled: too many failed attempts "
                      "this minute; refused with 153 for {seconds:.0f} s", source=source,
                      channel=channel, seconds=max(0.0, until - self.clock.seconds()))

    def _source_done(self, result, channel: str, source: str):
        """Tell the source gate how the first unit of work judged the HRN; pass C{result} on."""
        out = result.reserved if isinstance(result, saga.ConcludedInOne) else result
        failed = isinstance(out, saga.Refusal) and out.code in FRAUD_COUNTED
        self.source_gate.done(channel, source, failed)
        return result

    def _reserved(self, outcome, a: saga.Attempt):
        if isinstance(outcome, saga.Refusal):
            return ActivationResult(outcome.code, txn_id=a.txn_id, msisdn=a.msisdn,
                                    account=a.account, serial=outcome.serial,
                                    unbar_at=outcome.unbar_at)
        r: saga.Reservation = outcome
        started = self.clock.seconds()
        d = defer.maybeDeferred(self.billing.credit, a.account, r.amount, r.currency,
                                r.validity_days, r.txn_id, voucher_type=r.type_code)
        d.addTimeout(self.billing_timeout, self.clock)
        d.addCallbacks(self._credited, self._not_credited,
                       callbackArgs=(a, r, started), errbackArgs=(a, r, started))
        return d

    def _billing_ms(self, started) -> int:
        return int((self.clock.seconds() - started) * 1000)

    def _result(self, code, a, r, **kw) -> ActivationResult:
        return ActivationResult(code, txn_id=a.txn_id, msisdn=a.msisdn, account=a.account,
                                serial=r.serial, amount=r.amount, currency=r.currency,
                                validity_days=r.validity_days, **kw)

    def _credited(self, outcome, a, r, started):
        ms = self._billing_ms(started)
        now = now_ms(self.clock)
        actor = "%s:%s" % (a.channel, a.msisdn)
        if not outcome.credited:
            d = self.runner.submit(saga.release, a.txn_id, r.serial, outcome.code, now, ms,
                                   outcome.detail or "billing refused", actor)
            d.addCallback(lambda _: self._result(outcome.code, a, r))
            return d
        after = self.loyalty.after_success(r, a, now) if self.loyalty is not None else None
        detail = {"balance": outcome.balance, "new_expiry": outcome.new_expiry}
        d = self.runner.submit(
            saga.commit_success, txn_id=a.txn_id, serial=r.serial, msisdn=a.msisdn, now=now,
            billing_ms=ms, detail=detail,
            reset_fraud=self.fraud_settings.reset_on_success and r.has_failures,
            actor=actor, after=after, fraud_subject=a.fraud_subject)

        def committed(done: saga.Committed):
            rewards = done.after
            if rewards and self.loyalty is not None:
                self.loyalty.grant(rewards)
            return self._result(R.SUCCESS, a, r, new_expiry=outcome.new_expiry,
                                balance=outcome.balance, rewards=tuple(rewards or ()))
        d.addCallback(committed)
        return d

    def _not_credited(self, failure, a, r, started):
        exc = failure.value
        if isinstance(exc, BillingUnavailable) and not exc.sent:
            # Billing never saw the request: release now, nothing was consumed.
            d = self.runner.submit(saga.release, a.txn_id, r.serial, R.BILLING_UNAVAILABLE,
                                   now_ms(self.clock), self._billing_ms(started),
                                   "billing not reached: %s" % exc, "%s:%s" % (a.channel, a.msisdn))
            d.addCallback(lambda _: self._result(R.BILLING_UNAVAILABLE, a, r))
            return d
        if not isinstance(exc, (BillingUnavailable, defer.TimeoutError, defer.CancelledError)):
            self.log.failure("billing connector failed; transaction {txn_id} left for reconciliation",
                             failure, txn_id=a.txn_id)
        else:
            self.log.warn("billing outcome unknown for transaction {txn_id} ({why}); "
                          "left for reconciliation", txn_id=a.txn_id, why=type(exc).__name__)
        return self._result(R.BILLING_UNAVAILABLE, a, r)


class _AuditNote:
    """A channel's audit entry for one activation, and whether its unit wrote it."""

    __slots__ = ("entry", "written")

    def __init__(self, entry):
        self.entry = entry
        self.written = False

    def unwrap(self, value):
        """Take L{activation_audit.audited}'s C{(value, written)}; pass C{value} on."""
        value, self.written = value
        return value


class _Once:
    """Calls a channel's C{durable(ok)} at most once (C{settle}: False if never called)."""

    def __init__(self, fn):
        self.fn = fn
        self.called = fn is None

    def __call__(self, ok: bool) -> None:
        if not self.called:
            self.called = True
            self.fn(ok)

    def settle(self, result):
        self(False)
        return result


def loyalty_hook(loyalty, a, reservation):
    """The loyalty unit hook of the attempt C{a} once C{reservation} is made
    (a module-level function: a unit's arguments travel to a writer process)."""
    return loyalty.after_success(reservation, a, a.now)


def _durable(result, durable):
    """Tell the channel whether the first unit of work committed; pass C{result} on."""
    durable(not isinstance(result, Failure))
    return result


def _unless_replay(result, then, attempt):
    """A repeated request (L{inbox.Replay}) is answered as first; else go on with C{then}."""
    if isinstance(result, inbox.Replay):
        return dataclasses.replace(result.result,
                                   replay="pending" if result.pending else "answered")
    return then(result, attempt)
