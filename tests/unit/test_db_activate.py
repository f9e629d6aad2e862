"""PostgreSQL's one-statement activation (ivoms_activate) against the portable path.

Each case activates one voucher through L{core.saga.activate_in_one} and
another through L{core.db_activate.activate_in_one} on the same database,
then compares what both returned and every row they left (with the
transaction id, serial and MSISDNs put in neutral form).
"""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from billing.ledger import EmbeddedLedger
from core import db_activate, fraud, saga
from core.schema import fraud_counter, ledger_account, ledger_entry, txn, voucher, voucher_history
from tests.helpers import FraudSettings, make_batch, make_store


@pytest.fixture
def env(pg_migrated_url, tmp_path):
    store, cipher = make_store(pg_migrated_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 40)
    yield store, cipher, sorted(hrns.items())
    store.dispose()


def _attempt(cipher, hrn, msisdn, now, scope=None):
    return saga.Attempt(txn_id=uuid.uuid4().hex, msisdn=msisdn, account=msisdn,
                        blind_index=cipher.blind_index(hrn), channel="web" if scope else "sms",
                        channel_ref="r", operator_user=None, source="src", now=now,
                        fraud_scope=scope)


def _snapshot(store, a, serial):
    def unit(tx):
        out = {}
        out["voucher"] = tx.execute(select(voucher.c.state, voucher.c.used_by, voucher.c.used_at,
                                           voucher.c.txn_id).where(voucher.c.serial == serial)).rows
        out["txn"] = [dict(zip(txn.c.keys(), r)) for r in
                      tx.execute(select(txn).where(txn.c.id == a.txn_id)).rows]
        for t in out["txn"]:
            t["serial"] = "S" if t["serial"] == serial else t["serial"]
        out["history"] = [r[1:] for r in tx.execute(
            select(voucher_history).where(voucher_history.c.serial == serial)
            .order_by(voucher_history.c.id)).rows]
        out["history"] = [("S",) + r[1:] for r in out["history"]]
        out["entry"] = tx.execute(select(ledger_entry).where(
            ledger_entry.c.idempotency_key == a.txn_id)).rows
        out["account"] = tx.execute(select(ledger_account).where(
            ledger_account.c.msisdn == a.account)).rows
        out["fraud"] = tx.execute(select(fraud_counter).where(
            fraud_counter.c.subject.startswith(fraud.msisdn_subject(a.msisdn)))
            .order_by(fraud_counter.c.subject)).rows
        return out
    text = repr(store.run_sync(unit))
    return text.replace(a.txn_id, "T").replace(a.msisdn, "M")


def _returned(value, a):
    text = repr(value)
    return text.replace(a.txn_id, "T")


def _both(store, cipher, hrns, setup=None, auto_create=True, reset=True, msisdns=None,
          scope=None):
    """Run one activation per path; return the two (returned, snapshot) pairs."""
    fs = FraudSettings()
    ledger = EmbeddedLedger(None, clock=None, auto_create=auto_create)
    now = int(time.time() * 1000)
    results = []
    for k, path in enumerate((saga.activate_in_one, db_activate.activate_in_one)):
        serial, hrn = hrns[k]
        msisdn = (msisdns or ("381640000001", "381640000002"))[k]
        if setup is not None:
            store.run_sync(setup, msisdn, now, serial)
        a = _attempt(cipher, hrn, msisdn, now, scope)
        got = store.run_sync(path, a, fs, ledger.credit_in, reset, None)
        ret = _returned(got, a).replace("serial=%d" % serial, "serial=S").replace(msisdn, "M")
        results.append((ret, _snapshot(store, a, serial)))
    return results


def test_the_function_is_installed_and_used(env):
    store, cipher, hrns = env
    assert store.run_sync(lambda tx: db_activate.usable(tx, EmbeddedLedger(None, clock=None).credit_in))
    # an external billing connector is never credited in the server
    assert not store.run_sync(lambda tx: db_activate.usable(tx, lambda *a: None))


def test_success_on_a_new_account_writes_the_same_rows(env):
    store, cipher, hrns = env
    py, pg = _both(store, cipher, hrns)
    assert "'success'" in pg[1] and "credited=True" in pg[0]
    assert py == pg


def test_success_on_an_existing_account_with_a_counter_reset(env):
    store, cipher, hrns = env

    def setup(tx, msisdn, now, serial):
        tx.insert(ledger_account, {"msisdn": msisdn, "balance": 500, "currency": "EUR",
                                   "expires_at": now + 10 ** 12, "created_at": 1, "updated_at": 1})
        fraud.claim(tx, fraud.msisdn_subject(msisdn), now, FraudSettings())   # one failure counted
    py, pg = _both(store, cipher, hrns, setup=setup)
    assert "balance=1500" in pg[0] and "has_failures=True" in pg[0]
    assert py == pg


def test_counter_kept_without_reset(env):
    store, cipher, hrns = env

    def setup(tx, msisdn, now, serial):
        fraud.claim(tx, fraud.msisdn_subject(msisdn), now, FraudSettings())   # one failure counted
    py, pg = _both(store, cipher, hrns, setup=setup, reset=False)
    assert "'fraud': [('msisdn:M', 1," in pg[1]
    assert py == pg


def test_account_in_another_currency_is_refused_and_the_voucher_kept(env):
    store, cipher, hrns = env

    def setup(tx, msisdn, now, serial):
        tx.insert(ledger_account, {"msisdn": msisdn, "balance": 500, "currency": "USD",
                                   "expires_at": now, "created_at": 1, "updated_at": 1})
    py, pg = _both(store, cipher, hrns, setup=setup)
    assert "BILLING_REJECTED" in pg[0] and "'available'" in pg[1]
    assert py == pg


def test_unknown_account_without_auto_create(env):
    store, cipher, hrns = env
    py, pg = _both(store, cipher, hrns, auto_create=False)
    assert "SUBSCRIBER_UNKNOWN" in pg[0]
    assert py == pg


def test_refusals_take_the_portable_path(env):
    store, cipher, hrns = env

    def use_it(tx, msisdn, now, serial):
        tx.execute(voucher.update().where(voucher.c.serial == serial).values(
            state="used", used_by=msisdn))
    py, pg = _both(store, cipher, hrns, setup=use_it)
    assert "VOUCHER_ALREADY_USED_BY_YOU" in pg[0]
    assert py == pg

    def bar(tx, msisdn, now, serial):
        tx.insert(fraud_counter, {"subject": fraud.msisdn_subject(msisdn), "failures": 3,
                                  "window_start": now, "barred_until": now + 60_000,
                                  "last_failure_at": now})
    py, pg = _both(store, cipher, hrns[2:], setup=bar, msisdns=("381640000003", "381640000004"))
    assert "SUBSCRIBER_BARRED" in pg[0]
    assert py == pg


def test_a_scoped_attempt_checks_and_resets_its_own_counter(env):
    """A self-asserted attempt (Web/WAP, SOAP): the function reads the counter of its
    scope and the MSISDN's bar everywhere, and resets only its own counter."""
    store, cipher, hrns = env
    scope = "web:203.0.113.9"

    def counted(tx, msisdn, now, serial):
        fraud.claim(tx, fraud.msisdn_subject(msisdn), now, FraudSettings())
        fraud.claim(tx, fraud.msisdn_subject(msisdn, scope), now, FraudSettings())
    py, pg = _both(store, cipher, hrns, setup=counted, scope=scope)
    assert "credited=True" in pg[0] and "has_failures=True" in pg[0]
    assert "'fraud': [('msisdn:M', 1," in pg[1] and "@web" not in pg[1]
    assert py == pg

    def scoped_bar(tx, msisdn, now, serial):
        tx.insert(fraud_counter, {"subject": fraud.msisdn_subject(msisdn, scope), "failures": 3,
                                  "window_start": now, "barred_until": now + 60_000,
                                  "last_failure_at": now})
    py, pg = _both(store, cipher, hrns[2:], setup=scoped_bar, scope=scope,
                   msisdns=("381640000005", "381640000006"))
    assert "SUBSCRIBER_BARRED" in pg[0]
    assert py == pg

    def bar_everywhere(tx, msisdn, now, serial):
        tx.insert(fraud_counter, {"subject": fraud.msisdn_subject(msisdn), "failures": 3,
                                  "window_start": now, "barred_until": now + 60_000,
                                  "last_failure_at": now})
    py, pg = _both(store, cipher, hrns[4:], setup=bar_everywhere, scope=scope,
                   msisdns=("381640000007", "381640000008"))
    assert "SUBSCRIBER_BARRED" in pg[0]
    assert py == pg


def test_a_failing_hook_after_the_function_leaves_nothing(env):
    store, cipher, hrns = env
    serial, hrn = hrns[0]
    a = _attempt(cipher, hrn, "381640000009", int(time.time() * 1000))
    ledger = EmbeddedLedger(None, clock=None)

    def after_factory(reservation):
        def after(tx):
            raise RuntimeError("loyalty broke")
        return after
    with pytest.raises(RuntimeError):
        store.run_sync(db_activate.activate_in_one, a, FraudSettings(), ledger.credit_in, True,
                       after_factory)
    snap = _snapshot(store, a, serial)
    assert "'available'" in snap and "'txn': []" in snap and "'entry': []" in snap
    assert "'account': []" in snap and "'reserved'" not in snap


def test_a_group_runs_in_order_and_resumes_after_a_refusal(env):
    store, cipher, hrns = env
    fs = FraudSettings()
    ledger = EmbeddedLedger(None, clock=None)
    now = int(time.time() * 1000)
    store.run_sync(lambda tx: tx.execute(voucher.update().where(voucher.c.serial == hrns[1][0])
                                         .values(state="used", used_by="381649999999")))
    same = "381640000011"
    attempts = [_attempt(cipher, hrns[0][1], same, now), _attempt(cipher, hrns[1][1], same, now),
                _attempt(cipher, hrns[2][1], same, now), _attempt(cipher, hrns[0][1], same, now)]
    sent = []

    def unit(tx):
        real = tx.execute_raw

        def counting(sql, args=()):
            sent.append(sql.split("(")[0])
            return real(sql, args)
        tx.execute_raw = counting
        return db_activate.activate_many(tx, [((a, fs, ledger.credit_in, True), {})
                                              for a in attempts])
    got = store.run_sync(unit)
    outcomes = [(type(r.reserved).__name__,
                 r.outcome.balance if r.outcome is not None else r.reserved.code) for r in got]
    # the second voucher was used by someone else; the fourth is the first again
    assert outcomes == [("Reservation", 1000), ("Refusal", 108), ("Reservation", 2000),
                        ("Refusal", 107)]
    # one statement for units 1-2 (stopped at the refusal), one for 3-4; the
    # refusals' own statements go through tx.execute
    assert [q for q in sent if "ivoms_" in q] == ["SELECT * FROM ivoms_activate_many"] * 2
    # effects in unit order: the 108 counted a failure (per MSISDN and per
    # source), the success after it found the MSISDN's counter and reset it,
    # the 107 counts nothing
    assert store.run_sync(lambda tx: tx.execute(
        select(fraud_counter.c.subject, fraud_counter.c.failures)).rows) == [("source:sms:src", 1)]
