"""Building blocks for the housekeeping tests: a housekeeper over a test store, row helpers."""
from __future__ import annotations

import dataclasses
import time

from sqlalchemy import func, select, update
from twisted.internet import task

from core.housekeeping.housekeeper import Housekeeper
from core.schema import housekeeping_run, job_lease, voucher, voucher_history
from core.units import UnitRunner
from gateway.config_housekeeping import HousekeepingSettings

T0 = time.time()


def clock_at(seconds: float | None = None) -> task.Clock:
    """A task.Clock set to C{seconds} (default: the wall clock when the tests started)."""
    c = task.Clock()
    c.advance(T0 if seconds is None else seconds)
    return c


def settings(**kw) -> HousekeepingSettings:
    """Housekeeping settings with top-level fields and C{job=dict(...)} tables replaced."""
    base = dataclasses.replace(HousekeepingSettings(), chunk_pause=0.0)   # task.Clock: no pauses
    top = {}
    for k, v in kw.items():
        if isinstance(v, dict):
            top[k] = dataclasses.replace(getattr(base, k), **v)
        else:
            top[k] = v
    return dataclasses.replace(base, **top)


def make_keeper(store, reactor, clock, *, hk=None, node="n1", reconciler=None, jobs=None,
                base_dir=None, runner=None, fraud_window_seconds=3600):
    """(housekeeper, runner): a started UnitRunner and a Housekeeper over C{store}."""
    if runner is None:
        runner = UnitRunner(store, reactor, workers=1 if store.is_sqlite else 4)
        runner.start()
    keeper = Housekeeper(settings=hk or settings(), node=node, runner=runner, store=store,
                         reactor=reactor, clock=clock, reconciler=reconciler,
                         fraud_window_seconds=fraud_window_seconds, jobs=jobs,
                         base_dir=base_dir)
    return keeper, runner


def states(store) -> dict:
    """{serial: state} of every voucher."""
    return dict(store.run_sync(lambda tx: tx.execute(
        select(voucher.c.serial, voucher.c.state)).rows, read_only=True))


def history_count(store, actor=None) -> int:
    q = select(func.count()).select_from(voucher_history)
    if actor is not None:
        q = q.where(voucher_history.c.actor == actor)
    return store.run_sync(lambda tx: tx.execute(q).scalar(), read_only=True)


def run_rows(store, job=None) -> list[dict]:
    """Every housekeeping_run row (as dicts), oldest first."""
    q = select(housekeeping_run).order_by(housekeeping_run.c.id)
    if job is not None:
        q = q.where(housekeeping_run.c.job == job)
    return store.run_sync(lambda tx: [dict(zip(housekeeping_run.c.keys(), r))
                                      for r in tx.execute(q).rows], read_only=True)


def lease_row(store, job):
    return store.run_sync(lambda tx: tx.execute(
        select(job_lease.c.holder, job_lease.c.expires_at).where(job_lease.c.job == job)).first(),
        read_only=True)


def set_vouchers(store, first, last, **values):
    """UPDATE the vouchers with serials first..last to C{values} (test set-up)."""
    store.run_sync(lambda tx: tx.execute(update(voucher).where(
        voucher.c.serial.between(first, last)).values(**values)))
