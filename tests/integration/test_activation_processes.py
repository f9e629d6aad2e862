"""Exactly-once activation across processes: kill -9 at each saga step, and a two-process race."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import pytest_twisted

from core.reconcile import Reconciler
from tests.helpers import build_service, credited_entries, make_batch, make_store, txn_rows, voucher_row

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _worker(url, keyfile, mode, hrn, n=1, wait=True):
    cmd = [sys.executable, "-m", "tests.integration.activation_worker", url, keyfile, mode, hrn, str(n)]
    p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


@pytest.mark.parametrize("step", ["before-reserve-commit", "after-reserve", "after-credit",
                                  "before-final-commit"])
@pytest_twisted.ensureDeferred
async def test_kill_at_each_step_then_reconcile(step, db_url, tmp_path, reactor):
    store, cipher = make_store(db_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    code, out, err = _worker(db_url, str(tmp_path / "keys.json"), "crash:" + step, hrn)
    assert code == -9, (code, out, err)
    assert "survived" not in out
    # restart: a new service in this process reconciles what the dead one left
    runner, svc, ledger = build_service(store, cipher, reactor=reactor)
    try:
        await Reconciler(runner, ledger, clock=reactor, older_than_seconds=0).run()
        credited = credited_entries(store)
        state = voucher_row(store, serial)[0]
        assert state in ("used", "available")
        assert (state == "used") == (len(credited) == 1), (step, state, credited)
        assert len(credited) <= 1
        expected_used = step in ("after-credit", "before-final-commit")
        assert (state == "used") is expected_used
        assert all(t["state"] != "pending" for t in txn_rows(store))
        # a released voucher can still be used, exactly once
        from core.requests import ActivationRequest
        res = await svc.activate(ActivationRequest(msisdn="381641234567", hrn=hrn, channel="sms"))
        assert res.code == (107 if expected_used else 0)
        assert len(credited_entries(store)) == 1
    finally:
        await runner.stop()
        store.dispose()


@pytest.mark.parametrize("step", ["before-reserve-commit", "before-final-commit"])
def test_kill_inside_the_one_unit_ledger_path(step, db_url, tmp_path):
    """Embedded ledger in the activation's transaction: a kill before its commit
    leaves nothing at all — no reservation, no credit, nothing to reconcile."""
    store, cipher = make_store(db_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    code, out, err = _worker(db_url, str(tmp_path / "keys.json"), "crash-local:" + step, hrn)
    assert code == -9, (code, out, err)
    assert voucher_row(store, serial)[0] == "available"
    assert credited_entries(store) == [] and txn_rows(store) == []
    store.dispose()


def test_two_processes_race_one_voucher(pg_url, tmp_path):
    store, cipher = make_store(pg_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    keyfile = str(tmp_path / "keys.json")
    procs = [_worker(pg_url, keyfile, "race", hrn, 25, wait=False) for _ in range(2)]
    codes = []
    for p in procs:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        codes += [int(x) for x in out.split()]
    assert len(codes) == 50
    assert codes.count(0) == 1, codes
    assert set(codes) <= {0, 108, 113}
    assert len(credited_entries(store)) == 1
    assert voucher_row(store, serial)[0] == "used"
    store.dispose()
