"""The activation saga's units of work: reserve, commit, release (DESIGN §4 steps 3-6).

Each function is one unit of work run by a L{core.units.UnitRunner}.
The reservation is one conditional C{UPDATE ... RETURNING}; the final
steps are conditional on the voucher still being reserved for this very
transaction and the transaction still pending, so a late answer and
reconciliation can never both apply.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, select, update

from core import fraud
from core.results import FRAUD_COUNTED, ResultCode as R
from core.schema import batch, txn, voucher, voucher_history
from core.states import VoucherState as S


@dataclass(frozen=True)
class Reservation:
    """A voucher reserved for one pending transaction."""

    txn_id: str
    serial: int
    batch_id: int
    amount: int
    currency: str
    validity_days: int
    type_code: str
    loyalty: str
    has_failures: bool = False     # failures were counted for the MSISDN before


@dataclass(frozen=True)
class Refusal:
    """Why no voucher was reserved."""

    code: R
    serial: int | None = None
    unbar_at: int | None = None


@dataclass(frozen=True)
class Attempt:
    """Everything the reserve unit needs, decided on the reactor thread."""

    txn_id: str
    msisdn: str
    account: str
    blind_index: bytes
    channel: str
    channel_ref: str | None
    operator_user: str | None
    source: str | None
    now: int
    #: where failures bar the MSISDN: None everywhere, else L{fraud.bar_scope}
    fraud_scope: str | None = None

    @property
    def fraud_subject(self) -> str:
        """The fraud counter this attempt takes its slot on."""
        return fraud.msisdn_subject(self.msisdn, self.fraud_scope)


@dataclass(frozen=True, slots=True)
class BatchTerms:
    """The terms a batch gives each of its vouchers (they never change once the batch exists).

    @ivar face_value: the credit in minor units of C{currency}.
    @ivar currency: ISO 4217 code.
    @ivar validity_days: account validity granted.
    @ivar type_code: the voucher type.
    @ivar loyalty: the batch's loyalty snapshot (JSON text), or None.
    """

    face_value: int
    currency: str
    validity_days: int
    type_code: str
    loyalty: str | None


@dataclass(frozen=True, slots=True)
class Committed:
    """What L{commit_success} did.

    @ivar changed: True when this call concluded the transaction; False when
        it was no longer pending (someone else already concluded it).
    @ivar after: what the C{after} hook returned (the loyalty rewards
        decided, a list of L{core.loyalty.rewards.RewardGrant}), or None when
        no hook ran.
    """

    changed: bool
    after: object = None


@dataclass(frozen=True, slots=True)
class ConcludedInOne:
    """What L{activate_in_one} did.

    @ivar reserved: the L{Reservation}, or the L{Refusal} when no voucher was
        reserved (then C{outcome} and C{rewards} are None).
    @ivar outcome: billing's L{core.billing.CreditOutcome}: credited (the
        voucher is C{used}) or refused (the voucher was released).
    @ivar rewards: the loyalty rewards the commit decided (a list of
        L{core.loyalty.rewards.RewardGrant}), or None.
    """

    reserved: Reservation | Refusal
    outcome: object = None
    rewards: list | None = None


@dataclass(frozen=True, slots=True)
class PendingTxn:
    """A transaction still C{pending}, as reconciliation reads it.

    @ivar kind: C{activation} or C{loyalty} (a reward, which has no serial).
    @ivar voucher_type: the type code of the voucher (connectors may credit
        per type, e.g. UCIP dedicated accounts); None for a reward.
    """

    txn_id: str
    serial: int | None
    account: str
    msisdn: str
    amount: int
    currency: str
    validity_days: int
    kind: str
    voucher_type: str | None       # the voucher's type code; None for a reward


_RESERVE = update(voucher).where(and_(
    voucher.c.blind_index == bindparam("bi"),
    voucher.c.state == S.AVAILABLE.value,
    voucher.c.expires_at > bindparam("now"),
)).values(state=S.RESERVED.value, txn_id=bindparam("txn_id"), used_by=bindparam("msisdn"),
          used_at=bindparam("now")).returning(voucher.c.serial, voucher.c.batch_id)

_WHY = select(voucher.c.serial, voucher.c.state, voucher.c.used_by, voucher.c.expires_at) \
    .where(voucher.c.blind_index == bindparam("bi"))

_BATCH_TERMS = select(batch.c.face_value, batch.c.currency, batch.c.account_validity_days,
                      batch.c.type_code, batch.c.loyalty).where(batch.c.id == bindparam("id"))

_HISTORY_COLS = ("serial", "at", "actor", "from_state", "to_state", "reason")

# Batch terms never change once a batch exists: cache them per process.
_terms_cache: dict = {}


def batch_terms(tx, batch_id: int) -> BatchTerms:
    """The L{BatchTerms} of batch C{batch_id} (cached per process and database)."""
    key = (tx.store.url, batch_id)
    t = _terms_cache.get(key)
    if t is None:
        t = BatchTerms(*tx.execute(_BATCH_TERMS, {"id": batch_id}).first())
        _terms_cache[key] = t
    return t


def forget_batch_terms() -> None:
    """Empty the per-process cache of L{batch_terms} (for a process that
    reaches a new database under a URL it used before, as tests do)."""
    _terms_cache.clear()


def _history(tx, serial, at, actor, frm, to, reason=None) -> None:
    tx.insert(voucher_history, {"serial": serial, "at": at, "actor": actor, "from_state": frm,
                                "to_state": to, "reason": reason})


def _txn_row(a: Attempt, state: str, code: int, **extra) -> dict:
    row = {"id": a.txn_id, "kind": "activation", "msisdn": a.msisdn, "account": a.account,
           "channel": a.channel, "channel_ref": a.channel_ref, "operator_user": a.operator_user,
           "source": a.source, "state": state, "result_code": int(code), "started_at": a.now,
           "serial": None, "amount": None, "currency": None, "validity_days": None,
           "reserved_at": None, "finished_at": None}
    row.update(extra)
    return row


def reserve(tx, a: Attempt, fraud_settings):
    """Bar check, reservation and the transaction row, in one unit of work.

    The attempt takes its fraud slot first (L{fraud.claim}): a barred
    MSISDN, or one whose tier is reached by attempts already under way, is
    refused before its HRN is looked up.  On SQLite, whose units of work
    never overlap, it only reads the counter first (L{fraud.peek}) and
    counts the failure once it is one: the same decisions, and a success
    writes nothing to the counter.  On a self-asserted channel the
    slot is on the MSISDN's counter for that source only (C{a.fraud_scope}),
    and a bar of the MSISDN everywhere refuses the attempt too.  (Sources are throttled before the
    unit of work, by the service's L{core.interfaces.ISourceGate}.)

    @return: a L{Reservation} (voucher now C{reserved}, transaction
        C{pending}) or a L{Refusal} (a C{failed} transaction row written and
        the failure counted when it is one fraud control counts).
    """
    if a.fraud_scope is not None:        # a bar everywhere holds on self-asserted channels too
        everywhere = fraud.barred_until(tx, fraud.msisdn_subject(a.msisdn), a.now)
        if everywhere is not None:
            tx.insert(txn, _txn_row(a, "failed", R.SUBSCRIBER_BARRED, finished_at=a.now))
            return Refusal(R.SUBSCRIBER_BARRED, unbar_at=everywhere)
    subject = a.fraud_subject
    serialised = tx.is_sqlite       # units never overlap: check now, count a failure once known
    slot = (fraud.peek if serialised else fraud.claim)(tx, subject, a.now, fraud_settings)
    if slot.barred_until is not None:
        tx.insert(txn, _txn_row(a, "failed", R.SUBSCRIBER_BARRED, finished_at=a.now))
        return Refusal(R.SUBSCRIBER_BARRED, unbar_at=slot.barred_until)
    row = tx.execute(_RESERVE, {"bi": a.blind_index, "now": a.now, "txn_id": a.txn_id,
                                "msisdn": a.msisdn}).first()
    if row is not None:
        if not serialised:
            fraud.refund(tx, subject, slot, a.now)
        serial, batch_id = row
        t = batch_terms(tx, batch_id)
        tx.insert(txn, _txn_row(a, "pending", R.BILLING_UNAVAILABLE, serial=serial,
                                amount=t.face_value, currency=t.currency,
                                validity_days=t.validity_days, reserved_at=a.now))
        _history(tx, serial, a.now, a.channel + ":" + a.msisdn, S.AVAILABLE.value, S.RESERVED.value,
                 a.txn_id)
        return Reservation(a.txn_id, serial, batch_id, t.face_value, t.currency, t.validity_days,
                           t.type_code, t.loyalty, slot.had_failures)
    code, serial = _why(tx, a)
    unbar = None
    if code in FRAUD_COUNTED:
        if serialised:
            slot = fraud.claim(tx, subject, a.now, fraud_settings)
        unbar = slot.planted
        if a.source:
            fraud.record_source_failure(tx, fraud.source_subject(a.channel, a.source), a.now)
    elif not serialised:
        fraud.refund(tx, subject, slot, a.now)
    tx.insert(txn, _txn_row(a, "failed", code, serial=serial, finished_at=a.now))
    return Refusal(code, serial, unbar_at=unbar)


def _why(tx, a: Attempt) -> tuple[R, int | None]:
    """The precise reason the reservation found no available voucher."""
    row = tx.execute(_WHY, {"bi": a.blind_index}).first()
    if row is None:
        return R.INVALID_HRN, None
    serial, state, used_by, expires_at = row
    if state == S.USED.value:
        return (R.VOUCHER_ALREADY_USED_BY_YOU if used_by == a.msisdn else R.VOUCHER_USED_BY_OTHER), serial
    if state == S.RESERVED.value:
        return R.VOUCHER_PENDING, serial
    if state == S.BLOCKED.value:
        return R.VOUCHER_BLOCKED, serial
    if state == S.EXPIRED.value or expires_at <= a.now:
        return R.VOUCHER_EXPIRED, serial
    if state == S.GENERATED.value:
        return R.VOUCHER_NOT_AVAILABLE, serial
    return R.SYSTEM_ERROR, serial


_USE = update(voucher).where(and_(voucher.c.serial == bindparam("serial"),
                                  voucher.c.state == S.RESERVED.value,
                                  voucher.c.txn_id == bindparam("tid"))) \
    .values(state=S.USED.value, used_at=bindparam("now"))

_RELEASE = update(voucher).where(and_(voucher.c.serial == bindparam("serial"),
                                      voucher.c.state == S.RESERVED.value,
                                      voucher.c.txn_id == bindparam("tid"))) \
    .values(state=S.AVAILABLE.value, txn_id=None, used_by=None, used_at=None)

_CLOSE = update(txn).where(and_(txn.c.id == bindparam("txn_id"), txn.c.state == "pending")) \
    .values(state=bindparam("state"), result_code=bindparam("code"), finished_at=bindparam("now"),
            billing_ms=bindparam("billing_ms"), detail=bindparam("detail"))


_NOT_CHANGED = Committed(False)


def commit_success(tx, txn_id: str, serial: int, msisdn: str, now: int, billing_ms: int | None,
                   detail: dict | None, reset_fraud: bool, actor: str, after=None,
                   fraud_subject: str | None = None) -> Committed:
    """Billing credited: the voucher becomes C{used} and the transaction C{success}.

    @param reset_fraud: forget the failures of C{fraud_subject} (by default
        the MSISDN's counter everywhere).
    @param after: optional C{after(tx)} run in the same unit when this call
        made the change (loyalty counters); its return value is returned.
    @return: a L{Committed}: whether this call concluded the transaction, and
        what C{after} returned.
    """
    n = tx.execute(_CLOSE, {"txn_id": txn_id, "state": "success", "code": int(R.SUCCESS),
                            "now": now, "billing_ms": billing_ms,
                            "detail": json.dumps(detail) if detail else None}).rowcount
    if n != 1:
        return _NOT_CHANGED
    tx.execute(_USE, {"serial": serial, "tid": txn_id, "now": now}, wait=False)
    _history(tx, serial, now, actor, S.RESERVED.value, S.USED.value, txn_id)
    if reset_fraud:
        fraud.reset(tx, fraud_subject or fraud.msisdn_subject(msisdn))
    return Committed(True, after(tx) if after is not None else None)


def release(tx, txn_id: str, serial: int, code: R, now: int, billing_ms: int | None,
            detail: str | None, actor: str) -> bool:
    """Billing definitely did not credit: the voucher is C{available} again and
    the transaction C{failed} with C{code}.

    @return: False when the transaction was no longer pending.
    """
    n = tx.execute(_CLOSE, {"txn_id": txn_id, "state": "failed", "code": int(code), "now": now,
                            "billing_ms": billing_ms, "detail": detail}).rowcount
    if n != 1:
        return False
    tx.execute(_RELEASE, {"serial": serial, "tid": txn_id}, wait=False)
    _history(tx, serial, now, actor, S.RESERVED.value, S.AVAILABLE.value, "%s: %s" % (txn_id, detail or code.name))
    return True


def activate_in_one(tx, a: Attempt, fraud_settings, credit_in, reset_on_success: bool,
                    after_factory=None) -> ConcludedInOne:
    """Reserve, credit and conclude in ONE unit of work, for a billing connector that
    lives in this database (the embedded ledger): the voucher is used if and only
    if the credit commits, atomically, so nothing is left to reconcile.

    @param credit_in: C{credit_in(tx, account, amount, currency, days, key, now)}
        returning a L{core.billing.CreditOutcome}, run inside this transaction.
    @param after_factory: C{after_factory(reservation)} giving the loyalty hook
        for L{commit_success}, or None.
    @return: a L{ConcludedInOne}.
    """
    out = reserve(tx, a, fraud_settings)
    if isinstance(out, Refusal):
        return ConcludedInOne(out)
    outcome = credit_in(tx, a.account, out.amount, out.currency, out.validity_days, a.txn_id, a.now)
    actor = "%s:%s" % (a.channel, a.msisdn)
    if not outcome.credited:
        release(tx, a.txn_id, out.serial, outcome.code, a.now, 0,
                outcome.detail or "billing refused", actor)
        return ConcludedInOne(out, outcome)
    after = after_factory(out) if after_factory is not None else None
    committed = commit_success(
        tx, txn_id=a.txn_id, serial=out.serial, msisdn=a.msisdn, now=a.now, billing_ms=0,
        detail={"balance": outcome.balance, "new_expiry": outcome.new_expiry},
        reset_fraud=reset_on_success and out.has_failures, actor=actor, after=after,
        fraud_subject=a.fraud_subject)
    return ConcludedInOne(out, outcome, committed.after)


_PENDING = select(txn.c.id, txn.c.serial, txn.c.account, txn.c.msisdn, txn.c.amount,
                  txn.c.currency, txn.c.validity_days, txn.c.kind, batch.c.type_code) \
    .select_from(txn.outerjoin(voucher, voucher.c.serial == txn.c.serial)
                 .outerjoin(batch, batch.c.id == voucher.c.batch_id)) \
    .where(and_(txn.c.state == "pending",        # every kind: activation and loyalty
                txn.c.started_at < bindparam("cutoff"))) \
    .order_by(txn.c.started_at).limit(bindparam("limit"))


def pending_older_than(tx, cutoff: int, limit: int = 500) -> list[PendingTxn]:
    """Pending transactions started before C{cutoff} (oldest first): activations
    and loyalty rewards (C{kind} tells them apart; a reward has no serial).

    @return: at most C{limit} L{PendingTxn}s.
    """
    return [PendingTxn(*r) for r in tx.execute(_PENDING, {"cutoff": cutoff, "limit": limit}).rows]


def attempt_lock_key(args) -> tuple:
    """The lock key (L{core.lock_order}) of a unit whose first argument is an
    L{Attempt}: the account it credits, then the MSISDN whose fraud counter it reads."""
    a = args[0]
    return a.account or "", a.msisdn or ""


reserve.lock_key = attempt_lock_key
activate_in_one.lock_key = attempt_lock_key

