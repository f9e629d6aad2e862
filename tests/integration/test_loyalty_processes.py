"""Loyalty across processes: two nodes on one PostgreSQL database count one subscriber's
concurrent recharges without losing any and reward each tier once (issue 9)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import pytest_twisted
from sqlalchemy import select

from core import saga
from core.requests import ActivationRequest
from core.schema import loyalty_counter
from tests.helpers import FraudSettings, build_service, credited_entries, make_batch, make_store, txn_rows
from tests.integration.loyalty_worker import race_plan

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MSISDN = "381641234567"


@pytest_twisted.ensureDeferred
async def test_two_processes_count_every_recharge_and_reward_each_tier_once(pg_url, tmp_path,
                                                                             reactor):
    saga.forget_batch_terms()
    store, cipher = make_store(pg_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 31)
    hrns = list(hrns.values())
    # this process recharges first (creating the ledger account), then two nodes race
    from core.loyalty.service import LoyaltyService
    runner, svc, ledger = build_service(store, cipher, reactor=reactor,
                                        fraud=FraudSettings(tiers=((10_000, 1),)))
    svc.loyalty = LoyaltyService([race_plan()], runner, ledger, clock=reactor)
    try:
        first = await svc.activate(ActivationRequest(msisdn=MSISDN, hrn=hrns[0], channel="sms"))
        assert first.code == 0 and first.rewards == ()
    finally:
        await runner.stop()
    keyfile = str(tmp_path / "keys.json")
    procs = []
    for i, part in enumerate((hrns[1:16], hrns[16:])):
        path = tmp_path / ("hrns-%d.txt" % i)
        path.write_text("\n".join(part) + "\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.integration.loyalty_worker", pg_url, keyfile, MSISDN,
             str(path)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    lines = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        lines += out.splitlines()
    assert len(lines) == 30
    assert all(line.split()[0] == "0" for line in lines), lines
    tiers = sorted(t for line in lines for t in line.split()[1:])
    assert tiers == ["r10", "r20", "r30"]
    (count,) = store.run_sync(lambda tx: tx.execute(select(loyalty_counter.c.recharges)).rows)
    assert count[0] == 31                                         # no lost update
    rewards = [t for t in txn_rows(store) if t["kind"] == "loyalty"]
    assert sorted((t["amount"], t["state"]) for t in rewards) == \
        [(1000, "success"), (2000, "success"), (3000, "success")]
    keys = {t["id"] for t in rewards}
    assert sorted(a for k, _, a in credited_entries(store) if k in keys) == [1000, 2000, 3000]
    store.dispose()
