"""Building blocks for tests: migrated stores with keys and voucher batches (fakes: L{tests.fakes})."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

from core import keys, migrate
from core.crypto import VoucherCipher
from core.db import Store, sqlite_path
from core.generation import generate
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


_TEMPLATE: list = []


def sqlite_template() -> str:
    """Path of a SQLite database migrated to head once per test run.

    Copying this file is much cheaper than running the migrations for every
    test; tests/unit/test_migrations.py still runs the real migrations.
    """
    if not _TEMPLATE:
        path = os.path.join(tempfile.mkdtemp(prefix="ivoms-template-"), "ivoms.db")
        store = Store("sqlite:///" + path)
        migrate.upgrade(store)
        store.engine.dispose()
        atexit.register(shutil.rmtree, os.path.dirname(path), True)
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


def _head() -> str:
    if not _HEAD:
        _HEAD.append(migrate.head())
    return _HEAD[0]


_HEAD: list = []


def make_store(url: str, key_dir: str):
    """A migrated store and a cipher over a new key file in C{key_dir}."""
    path = sqlite_path(url)
    if path is not None and not os.path.exists(path):
        shutil.copyfile(sqlite_template(), path)   # already at head: no migration
        store = Store(url)
    else:
        store = Store(url)
        if migrate.current(store) != _head():     # a template-made database is at head
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


class FraudSettings:
    """Fraud settings for tests: 3 failures bar 60 s, 6 bar 600 s, window 1 h."""

    def __init__(self, tiers=((3, 60), (6, 600)), window_seconds=3600, reset_on_success=True):
        from gateway.config import FraudTier
        self.tiers = [FraudTier(f, b) for f, b in tiers]
        self.window_seconds = window_seconds
        self.reset_on_success = reset_on_success


def build_service(store, cipher, *, reactor, clock=None, billing=None, auto_create=True,
                  billing_timeout=5.0, fraud=None, workers=None, allow_beneficiary=True,
                  in_transaction=True, writer_process=False, loyalty=None):
    """(runner, service, ledger): a started UnitRunner (a L{ProcessUnitRunner} with
    C{writer_process}), an ActivationService and the embedded ledger (also
    used as billing unless C{billing} is given)."""
    from billing.ledger import EmbeddedLedger
    from core.activation import ActivationService
    from core.normalise import MsisdnRules
    from core.unit_process import ProcessUnitRunner
    from core.units import UnitRunner
    clock = clock or reactor
    if writer_process:
        runner = ProcessUnitRunner(store, reactor)
    else:
        runner = UnitRunner(store, reactor, workers=workers or (1 if store.is_sqlite else 4))
    runner.start()
    ledger = EmbeddedLedger(runner, clock=clock, auto_create=auto_create,
                            in_transaction=in_transaction)
    service = ActivationService(
        runner, billing or ledger, cipher, clock=clock,
        msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]), hrn_lengths={14},
        fraud_settings=fraud or FraudSettings(), billing_timeout=billing_timeout,
        allow_beneficiary=allow_beneficiary, loyalty=loyalty)
    return runner, service, ledger


def voucher_row(store, serial):
    """(state, used_by, txn_id) of a voucher."""
    from sqlalchemy import select

    from core.schema import voucher
    return store.run_sync(lambda tx: tx.execute(
        select(voucher.c.state, voucher.c.used_by, voucher.c.txn_id)
        .where(voucher.c.serial == serial)).first())


def credited_entries(store):
    """Ledger entries that credited money: [(key, msisdn, amount)]."""
    from sqlalchemy import select

    from core.schema import ledger_entry as e
    return store.run_sync(lambda tx: tx.execute(
        select(e.c.idempotency_key, e.c.msisdn, e.c.amount).where(e.c.outcome == "credited")).rows)


def txn_rows(store):
    """All transaction rows as dicts, oldest first."""
    from sqlalchemy import select

    from core.schema import txn
    return store.run_sync(lambda tx: [dict(zip(txn.c.keys(), r)) for r in tx.execute(
        select(txn).order_by(txn.c.started_at)).rows])


def with_loopback_peer(settings):
    """C{settings} (a C{[ussd]} or C{[ivr]} table) with a peer on loopback when
    it names no peer of its own."""
    import dataclasses

    from protocols.common.peers import PeerSettings
    if settings.peers or getattr(settings, "allowed_addresses", None):
        return settings
    return dataclasses.replace(settings, peers=[PeerSettings(name="local",
                                                             networks=["127.0.0.1", "::1"])])


class CallNow:
    """A reactor stand-in whose C{callFromThread} runs at once, on the calling
    thread (for a L{core.units.UnitRunner} driven without a reactor)."""

    def callFromThread(self, fn, *args, **kw):
        fn(*args, **kw)


def open_ledger_account(tx, msisdn):
    """A unit: an empty EUR ledger account for C{msisdn}."""
    from core.schema import ledger_account
    tx.insert(ledger_account, {"msisdn": msisdn, "balance": 0, "currency": "EUR",
                               "expires_at": 0, "created_at": 0, "updated_at": 0})


def ledger_balances(tx) -> dict:
    """A unit: {MSISDN: balance} of every ledger account."""
    from sqlalchemy import select

    from core.schema import ledger_account
    return dict(tx.execute(select(ledger_account.c.msisdn, ledger_account.c.balance)).rows)
