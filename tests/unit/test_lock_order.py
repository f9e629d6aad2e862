"""One group commit's activation units take their subscribers' row locks in one
order on every writer (core.lock_order), so two writers holding the same
subscribers' recharges in opposite orders do not deadlock on PostgreSQL."""
from __future__ import annotations

import threading

from sqlalchemy import update

from core import inbox, saga
from core.activation_audit import audited
from core.lock_order import in_lock_order, lock_key
from core.schema import ledger_account
from core.units import UnitRunner
from tests.helpers import CallNow, ledger_balances, make_store, open_ledger_account


def _item(name, key=None):
    def fn(tx):
        return name
    if key is not None:
        fn.lock_key = lambda args: key
    return (fn, (), {}, name)


def test_keyed_units_are_sorted_in_their_own_places():
    batch = [_item("a", "k3"), _item("plain-1"), _item("b", "k1"), _item("c", "k2"),
             _item("plain-2"), _item("d", "k1")]
    assert [i[3] for i in in_lock_order(batch)] == ["b", "plain-1", "d", "c", "plain-2", "a"]
    plain = [_item("x"), _item("y", "k")]
    assert in_lock_order(plain) is plain                  # fewer than two keyed: untouched
    done = [_item("x", "k1"), _item("y", "k2")]
    assert in_lock_order(done) is done                    # already in order


def test_activation_units_name_their_account_and_msisdn():
    a = saga.Attempt(txn_id="t", msisdn="381641", account="381642", blind_index=b"", channel="sms",
                     channel_ref=None, operator_user=None, source=None, now=0, fraud_scope=None)
    args = (a, None, None, True, None)
    assert lock_key(saga.activate_in_one, args) == ("381642", "381641")
    assert lock_key(saga.reserve, (a, None)) == ("381642", "381641")
    wrapped = (None, "t", 0, 1000, saga.activate_in_one) + args       # the inbox around it
    assert lock_key(inbox.keyed, wrapped) == ("381642", "381641")
    assert lock_key(audited, (None, "t", inbox.keyed) + wrapped) == ("381642", "381641")
    assert lock_key(saga.release, ("t", 1)) is None


RUNS = []


def _credit(tx, msisdn, met):
    """Credit C{msisdn}; the first credit of each group then waits (briefly) for the
    other group's first credit, which is what makes opposite orders deadlock."""
    RUNS.append(msisdn)
    tx.execute_raw("SET LOCAL deadlock_timeout = '50ms'")
    tx.execute(update(ledger_account).where(ledger_account.c.msisdn == msisdn)
               .values(balance=ledger_account.c.balance + 1)
               .returning(ledger_account.c.balance)).first()     # the row is locked now
    if met is not None:
        try:
            met.wait(2)
        except threading.BrokenBarrierError:
            pass
    return msisdn


_credit.lock_key = lambda args: args[0]


def test_opposite_orders_on_two_writers_do_not_deadlock(pg_migrated_url, tmp_path):
    store, _ = make_store(pg_migrated_url, str(tmp_path))
    for m in ("+381641", "+381642"):
        store.run_sync(open_ledger_account, m)
    met = threading.Barrier(2)
    RUNS.clear()
    runners = [UnitRunner(store, CallNow(), workers=1, name="order-%d" % i) for i in (1, 2)]
    outcomes, finished = [], threading.Event()

    def record(o):
        outcomes.append(o)
        if len(outcomes) == 4:
            finished.set()
    # queued before the workers start, so each pair is one group: opposite orders
    for runner, pair in zip(runners, [("+381641", "+381642"), ("+381642", "+381641")]):
        runner.submit(_credit, pair[0], met).addBoth(record)
        runner.submit(_credit, pair[1], None).addBoth(record)
    for runner in runners:
        runner.start()
    assert finished.wait(30)
    for runner in runners:
        runner.stop()
    balances = store.run_sync(ledger_balances)
    store.dispose()
    assert sorted(outcomes) == ["+381641", "+381641", "+381642", "+381642"], outcomes
    assert balances == {"+381641": 2, "+381642": 2}
    # both groups locked +381641 first: one waited for the other, none deadlocked, so no
    # group was rolled back and run again (in opposite orders one is: 5 or more runs)
    assert len(RUNS) == 4 and sum(r.conflicts for r in runners) == 0
