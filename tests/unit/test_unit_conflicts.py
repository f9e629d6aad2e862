"""Units of work that lose a conflict with a concurrent transaction run again.

Two writers (two nodes, or two writer threads of one node) whose groups credit
the same two ledger accounts in opposite orders wait for each other's row
locks; PostgreSQL breaks the deadlock by failing one of the two statements.
The unit runner runs the loser again in a new transaction once its own group
has committed, so neither caller sees the deadlock (an SMS recharge answered
"retry later" for it before).  SQLite has one writer at a time: the same two
units simply run one after the other.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from core.db import conflict
from core.schema import ledger_account
from core.units import UnitRunner
from gateway.metrics.registry import PrometheusMetrics
from tests.helpers import CallNow, ledger_balances, make_store, open_ledger_account


def _credit(tx, msisdn):
    tx.execute(update(ledger_account).where(ledger_account.c.msisdn == msisdn)
               .values(balance=ledger_account.c.balance + 1))


@pytest.fixture
def store(db_url, tmp_path):
    store, _ = make_store(db_url, str(tmp_path))
    yield store
    store.dispose()


def test_a_deadlocked_unit_runs_again_and_both_commit(store):
    store.run_sync(open_ledger_account, "+381641")
    store.run_sync(open_ledger_account, "+381642")
    crossing = not store.is_sqlite       # SQLite: one writer, the units cannot interleave
    holds = {"+381641": threading.Event(), "+381642": threading.Event()}
    runs = []

    def credit_both(tx, first, second):
        """Credit C{first}, wait until the other unit holds C{second}, credit it."""
        runs.append(first)
        if crossing:
            tx.execute_raw("SET LOCAL deadlock_timeout = '50ms'")
        _credit(tx, first)
        holds[first].set()
        if crossing:
            assert holds[second].wait(10), "the other unit never took its first lock"
        _credit(tx, second)
        return first

    runners = [UnitRunner(store, CallNow(), workers=1, name="conflict-%d" % i) for i in (1, 2)]
    outcomes, finished = [], threading.Event()

    def record(outcome):
        outcomes.append(outcome)
        if len(outcomes) == 2:
            finished.set()
    for runner, (first, second) in zip(runners, [("+381641", "+381642"),
                                                 ("+381642", "+381641")]):
        runner.start()
        runner.submit(credit_both, first, second).addBoth(record)
    assert finished.wait(30)
    for runner in runners:
        runner.stop()
    assert all(isinstance(o, str) for o in outcomes), outcomes     # no Failure delivered
    assert sorted(outcomes) == ["+381641", "+381642"]
    assert store.run_sync(ledger_balances) == {"+381641": 2, "+381642": 2}
    lost = sum(r.conflicts for r in runners)
    assert lost == (1 if crossing else 0)
    assert len(runs) == 2 + lost            # the loser ran once more, from its start


def test_a_unit_that_keeps_losing_fails_after_its_retries(pg_migrated_url, tmp_path):
    """A conflict on every try is delivered as the failure once the retries are spent
    (PostgreSQL only: SQLite's units never overlap, so it reports no conflicts)."""
    store, _ = make_store(pg_migrated_url, str(tmp_path))
    runs = []

    def always_deadlocked(tx):
        runs.append(1)
        # the server's own error, raised as if a deadlock had been detected
        tx.execute_raw("DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")

    runner = UnitRunner(store, CallNow(), workers=1, conflict_retries=2)
    runner.metrics = metrics = PrometheusMetrics(CallNow(), process=False)
    failures, finished = [], threading.Event()
    runner.start()
    runner.submit(always_deadlocked).addErrback(
        lambda f: (failures.append(f), finished.set()))
    assert finished.wait(30)
    runner.stop()
    store.dispose()
    assert len(runs) == 3 and runner.conflicts == 2
    # what an operator sees: the retried units, by reason
    assert metrics.registry.get_sample_value("ivoms_unit_failures_total",
                                             {"reason": "conflict"}) == 2
    assert conflict(failures[0].value) == "deadlock (SQLSTATE 40P01)"


def test_only_deadlocks_and_serialization_failures_are_conflicts():
    import psycopg
    assert conflict(psycopg.errors.DeadlockDetected("deadlock detected")) is not None
    assert conflict(psycopg.errors.SerializationFailure("could not serialize")) is not None
    assert conflict(psycopg.errors.UniqueViolation("duplicate key")) is None
    assert conflict(psycopg.errors.QueryCanceled("canceling statement")) is None
    assert conflict(RuntimeError("deadlock")) is None


def test_units_failed_for_an_unreachable_database_are_counted():
    """A database that cannot be reached fails each unit as unavailable (result 152),
    and the count reaches the metrics endpoint."""
    from core.db import Store, StoreUnavailable
    store = Store("postgresql+psycopg://ivoms@127.0.0.1:1/none?connect_timeout=2")
    runner = UnitRunner(store, CallNow(), workers=1)
    runner.metrics = metrics = PrometheusMetrics(CallNow(), process=False)
    failures, finished = [], threading.Event()
    runner.start()
    for _ in range(3):
        runner.submit(ledger_balances).addErrback(
            lambda f: (failures.append(f), len(failures) == 3 and finished.set()))
    assert finished.wait(30)
    runner.stop()
    store.dispose()
    assert all(f.check(StoreUnavailable) for f in failures)
    assert runner.db_unavailable == 3
    assert metrics.registry.get_sample_value("ivoms_unit_failures_total",
                                             {"reason": "unavailable"}) == 3
