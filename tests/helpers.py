"""Building blocks for tests: migrated stores with keys, voucher batches, and a fake billing port."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from twisted.internet import defer
from zope.interface import implementer

from core import keys, migrate
from core.billing import BillingUnavailable, CreditOutcome, IBillingPort
from core.crypto import VoucherCipher
from core.db import Store
from core.generation import generate
from core.results import ResultCode
from core.timeutil import DAY_MS
from core.vouchers import Selection, set_state


@dataclass(frozen=True)
class VType:
    code: str = "T10"
    name: str = "Test 10"
    face_value: int = 1000
    currency: str = "EUR"
    validity_days: int = 365
    account_validity_days: int = 30
    hrn_length: int = 14
    loyalty: dict = None


def make_store(url: str, key_dir: str):
    """A migrated store and a cipher over a new key file in ``key_dir``."""
    store = Store(url)
    migrate.upgrade(store)
    ring = keys.init(os.path.join(key_dir, "keys.json"))
    return store, VoucherCipher(ring)


def make_batch(store, cipher, count=10, vt=VType(), available=True, expires_in_days=30):
    """Generate a batch; return (batch info, {serial: hrn})."""
    info = generate(store, cipher, vt, count, int(time.time() * 1000) + expires_in_days * DAY_MS,
                    requested_by="test", serial_start=1000, chunk_size=max(1, count))
    if available:
        store.run_sync(set_state, Selection.of_batch(info.batch_id), "available",
                       actor="test", reason=None, now=int(time.time() * 1000))
    return info, reveal_all(store, cipher, info)


def reveal_all(store, cipher, info) -> dict:
    from sqlalchemy import select

    from core.schema import voucher
    rows = store.run_sync(lambda tx: tx.execute(
        select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
        .where(voucher.c.batch_id == info.batch_id)).rows)
    return {s: cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows}


@implementer(IBillingPort)
class FakeBilling:
    """A billing port for unit tests: accepts, rejects, times out, hangs or is down.

    ``mode`` is one of 'accept', 'reject', 'unknown-subscriber', 'down'
    (never reached: BillingUnavailable(sent=False)), 'lost' (sent, no answer:
    BillingUnavailable), 'hang' (a Deferred that never fires).
    """

    def __init__(self, mode: str = "accept"):
        self.mode = mode
        self.credits: dict = {}       # key -> (account, amount, currency, days)
        self.calls = 0
        self.lookup_answer = "record"  # 'record' | 'error'

    def credit(self, account, amount, currency, validity_days, idempotency_key):
        self.calls += 1
        if self.mode == "accept":
            self.credits.setdefault(idempotency_key, (account, amount, currency, validity_days))
            return defer.succeed(CreditOutcome(True, ResultCode.SUCCESS, balance=amount))
        if self.mode == "reject":
            return defer.succeed(CreditOutcome(False, ResultCode.BILLING_REJECTED))
        if self.mode == "unknown-subscriber":
            return defer.succeed(CreditOutcome(False, ResultCode.SUBSCRIBER_UNKNOWN))
        if self.mode == "down":
            return defer.fail(BillingUnavailable("connection refused", sent=False))
        if self.mode == "lost":
            return defer.fail(BillingUnavailable("connection lost"))
        if self.mode == "hang":
            return defer.Deferred()
        raise AssertionError(self.mode)

    def lookup(self, idempotency_key):
        if self.lookup_answer == "error":
            return defer.fail(BillingUnavailable("still down"))
        if idempotency_key in self.credits:
            return defer.succeed(CreditOutcome(True, ResultCode.SUCCESS))
        return defer.succeed(None)
