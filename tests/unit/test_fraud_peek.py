"""On SQLite, whose units of work never overlap, an attempt reads its fraud
counter first (L{fraud.peek}) and counts a failure only once it is one; on
PostgreSQL it takes its slot first (L{fraud.claim}) and gives it back on a
success.  Both must decide the same for every sequence of attempts: the same
bars, the same C{had_failures}, the same counts; and a success of a clean
subscriber writes no counter row on either."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from core import fraud
from tests.helpers import FraudSettings, make_store

SUBJECT = "msisdn:381641234567"
TIERS = ((3, 60), (5, 600))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s, _ = make_store("sqlite:///%s/peek.db" % tmp_path_factory.mktemp("peek"),
                      str(tmp_path_factory.mktemp("keys")))
    yield s
    s.dispose()


def taken_first(tx, now, failed, settings):
    """The slot-first rule (PostgreSQL's): claim, then refund unless it failed."""
    slot = fraud.claim(tx, SUBJECT, now, settings)
    if slot.barred_until is None and not failed:
        fraud.refund(tx, SUBJECT, slot, now)
    return slot.barred_until, slot.had_failures


def read_first(tx, now, failed, settings):
    """The read-first rule (SQLite's): peek, and claim only once it failed."""
    slot = fraud.peek(tx, SUBJECT, now, settings)
    if slot.barred_until is None and failed:
        after = fraud.claim(tx, SUBJECT, now, settings)
        assert after.barred_until is None and after.had_failures == slot.had_failures
    return slot.barred_until, slot.had_failures


def counter(tx, now=0, window_ms=0):
    """What the counter means at C{now}: (failures still in the window, window
    start, bar still running), or nothing when neither is left.  (The rules
    may leave different dead values: the slot-first refund writes 0 over an
    ended bar and deletes a counter it empties; reading first writes nothing.)"""
    out = []
    for c in fraud.list_counters(tx, SUBJECT):
        live = c["window_start"] > now - window_ms
        bar = c["barred_until"] if c["barred_until"] > now else 0
        if live or bar:
            out.append((c["failures"] if live else 0, c["window_start"] if live else 0, bar))
    return out


attempts = st.lists(st.tuples(st.integers(0, 400_000), st.booleans()), max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attempts)
def test_reading_first_decides_as_taking_the_slot_first(store, steps):
    """Every attempt gets the same answer under both rules, and the counter ends the same."""
    s = FraudSettings(tiers=TIERS, window_seconds=120)

    def run(tx, rule):
        fraud.reset(tx, SUBJECT)
        now, seen = 1_000_000, []
        for gap, failed in steps:
            now += gap
            seen.append(rule(tx, now, failed, s))
        return seen, counter(tx, now, s.window_seconds * 1000)

    assert store.run_sync(run, read_first) == store.run_sync(run, taken_first)


def test_a_clean_success_writes_no_counter(store):
    s = FraudSettings(tiers=TIERS)

    def success(tx):
        fraud.reset(tx, SUBJECT)
        read_first(tx, 5_000, False, s)
        return counter(tx)
    assert store.run_sync(success) == []
