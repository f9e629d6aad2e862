"""A channel's audit row for an activation: written with the answer, in the activation's
unit of work when there is one unit (the embedded ledger), else as a unit of its own."""
from __future__ import annotations

import json

import pytest_twisted
from sqlalchemy import select
from twisted.internet import defer

from core.queries import AuditEntry
from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.schema import audit_log
from tests.helpers import build_service, make_batch

MSISDN = "0641234567"


def _req(hrn, msisdn=MSISDN, **kw):
    return ActivationRequest(msisdn=msisdn, hrn=hrn, channel="soap", source="shop", **kw)


def _entry(ref):
    return AuditEntry(at=1_795_000_000_000, actor="soap:shop", action="soap.ActivateVoucher",
                      target=MSISDN, origin="127.0.0.1", detail={"channel_ref": ref})


def _rows(store):
    rows = store.run_sync(lambda tx: tx.execute(
        select(audit_log.c.actor, audit_log.c.action, audit_log.c.target, audit_log.c.origin,
               audit_log.c.detail).order_by(audit_log.c.id)).rows)
    return [(a, b, c, d, json.loads(e)) for a, b, c, d, e in rows]


@pytest_twisted.ensureDeferred
async def test_the_row_is_written_in_the_activation_unit(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    (serial, hrn), (serial2, hrn2) = list(hrns.items())
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        res = await svc.activate(_req(hrn, idempotency_key="k1"), audit=_entry("r-1"))
        assert res.code == R.SUCCESS
        assert runner.units == 1                # the activation and its row: one unit
        used = await svc.activate(_req(hrn2, msisdn="0641111111"), audit=_entry(None))
        assert used.code == R.SUCCESS and runner.units == 2
        refused = await svc.activate(_req(hrn), audit=_entry("r-3"))
        assert refused.code == R.VOUCHER_ALREADY_USED_BY_YOU and runner.units == 3
        replay = await svc.activate(_req(hrn, idempotency_key="k1"), audit=_entry("r-1"))
        assert replay.replay == "answered" and runner.units == 4
        rows = _rows(store)
        assert [r[:4] for r in rows] == [("soap:shop", "soap.ActivateVoucher", MSISDN,
                                          "127.0.0.1")] * 4
        assert [r[4] for r in rows] == [
            {"channel_ref": "r-1", "code": 0, "txn_id": res.txn_id, "serial": serial},
            {"channel_ref": None, "code": 0, "txn_id": used.txn_id, "serial": serial2},
            {"channel_ref": "r-3", "code": 107, "txn_id": refused.txn_id, "serial": serial},
            {"channel_ref": "r-1", "code": 0, "txn_id": res.txn_id, "serial": serial}]
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_concurrent_activations_each_write_their_row(env, reactor):
    """Units of one group commit (the PostgreSQL path runs them as one statement)."""
    store, cipher = env
    _, hrns = make_batch(store, cipher, 12)
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        results = await defer.gatherResults([
            svc.activate(_req(hrn, msisdn="06411111%02d" % i), audit=_entry("c-%d" % i))
            for i, hrn in enumerate(hrns.values())])
        assert [r.code for r in results] == [R.SUCCESS] * 12 and runner.units == 12
        rows = {r[4]["channel_ref"]: r[4] for r in _rows(store)}
        assert rows == {"c-%d" % i: {"channel_ref": "c-%d" % i, "code": 0,
                                     "txn_id": r.txn_id, "serial": r.serial}
                        for i, r in enumerate(results)}
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_without_one_unit_the_row_is_a_unit_of_its_own(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    serial, hrn = next(iter(hrns.items()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor, in_transaction=False)
    try:
        res = await svc.activate(_req(hrn), audit=_entry("s-1"))
        assert res.code == R.SUCCESS
        assert runner.units == 4                # reserve, credit, conclude; then the row
        bad = await svc.activate(_req(hrn, msisdn="12"), audit=_entry("s-2"))
        assert bad.code == R.INVALID_MSISDN and runner.units == 5
        assert [r[4] for r in _rows(store)] == [
            {"channel_ref": "s-1", "code": 0, "txn_id": res.txn_id, "serial": serial},
            {"channel_ref": "s-2", "code": 150, "txn_id": None, "serial": None}]
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_a_failed_unit_leaves_the_row_to_a_unit_of_its_own(env, reactor, monkeypatch):
    from core import db_activate, saga
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor)

    def broken(*a, **kw):
        raise RuntimeError("boom")
    monkeypatch.setattr(saga, "reserve", broken)
    # PostgreSQL's one-statement path fails in the server instead
    monkeypatch.setattr(db_activate, "CALL",
                        db_activate.CALL.replace("ivoms_activate", "ivoms_broken"))
    try:
        res = await svc.activate(_req(hrn), audit=_entry("f-1"))
        assert res.code == R.SYSTEM_ERROR
        assert [r[4] for r in _rows(store)] == [
            {"channel_ref": "f-1", "code": 100, "txn_id": None, "serial": None}]
    finally:
        await runner.stop()
