"""The billing simulator's journal: decisions fsynced before the answer, replayed after a crash."""
from __future__ import annotations

from twisted.internet import task

from billing.sim.journal import Journal
from billing.sim.ledger import SimLedger


def test_a_restarted_simulator_knows_every_reference_it_answered(tmp_path):
    path = str(tmp_path / "sim.journal")
    clock = task.Clock()
    clock.advance(1_700_000_000)
    first = SimLedger(clock, journal=Journal(path))
    rec, dup = first.credit("t1", "381641234567", 1000, "EUR", 30)
    assert rec.credited and not dup
    first.credit("t2", "381641234567", 500, "EUR", 30)
    first.void("t3")
    first.credit("t4", "381641234567", 100, "USD", 30)       # account in EUR: refused
    # SIGKILL: the file is all that is left (a torn last line was never answered)
    with open(path, "a") as f:
        f.write('{"key":"t5","sta')
    again = SimLedger(clock, journal=Journal(path))
    assert again.accounts["381641234567"].balance == 1500 and again.applied == 2
    assert again.credit("t1", "381641234567", 1000, "EUR", 30) == (first.records["t1"], True)
    assert again.get("t3").status == "void" and again.get("t4").status == "refused"
    assert again.get("t5") is None
    assert again.credit("t3", "381641234567", 1000, "EUR", 30)[0].status == "void"
    assert again.accounts["381641234567"].balance == 1500
