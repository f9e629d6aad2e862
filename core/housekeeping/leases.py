"""Job leases in the database: one run of a job at a time across every node (DESIGN §8).

A lease is the C{job_lease} row of a job: who holds it and until when.
Taking it is one conditional UPDATE (or, the first time, an INSERT that
loses quietly to a concurrent one), so on one PostgreSQL database shared by
several nodes exactly one node wins; the holder renews it while the job
runs and, at the end, sets its expiry to the end time instead of deleting
the row.  That end time also stops a second node from running the *same
scheduled firing* again after the first one finished: a scheduled run
takes the lease only if the last run ended before its fire time.

Times are the nodes' clocks in epoch ms; keep the nodes' clocks in sync
(NTP) to well within the lease time.  Every function is a unit of work
(C{fn(tx, ...)}).
"""
from __future__ import annotations

import os

from sqlalchemy import and_, bindparam, select, update

from core.schema import job_lease

_TAKE = update(job_lease).where(and_(
    job_lease.c.job == bindparam("job"),
    job_lease.c.expires_at <= bindparam("now"),
    job_lease.c.expires_at < bindparam("slot"),
)).values(holder=bindparam("holder"), expires_at=bindparam("until"))

_RENEW = update(job_lease).where(and_(
    job_lease.c.job == bindparam("job"), job_lease.c.holder == bindparam("holder"),
)).values(expires_at=bindparam("until"))

_RELEASE = update(job_lease).where(and_(
    job_lease.c.job == bindparam("job"), job_lease.c.holder == bindparam("holder"),
)).values(expires_at=bindparam("now"))

def _reclaim(node: str):
    return update(job_lease).where(and_(
        job_lease.c.holder.startswith(node + ":", autoescape=True),
        job_lease.c.expires_at > bindparam("now"),
    )).values(expires_at=bindparam("now"))


_GET = select(job_lease.c.holder, job_lease.c.expires_at).where(job_lease.c.job == bindparam("job"))


def new_holder(node: str) -> str:
    """A holder name unique to one run: C{<node>:<random hex>}."""
    return "%s:%s" % (node, os.urandom(4).hex())


def acquire(tx, job: str, holder: str, now: int, ttl_ms: int, slot: int | None = None) -> bool:
    """Take the lease of C{job} for C{holder} until C{now + ttl_ms}.

    @param slot: the fire time (epoch ms) of a scheduled run: the lease is
        taken only if the last run ended before it, so one firing runs once
        however many nodes fire it.  None (runs on demand): C{now}.
    @return: True if C{holder} now holds the lease; False if another run
        holds it, or (scheduled) a run of this firing already ended.
    """
    # last end < slot for a scheduled firing; last end <= now on demand
    before = now + 1 if slot is None else min(slot, now + 1)
    params = {"job": job, "holder": holder, "now": now, "slot": before, "until": now + ttl_ms}
    if tx.execute(_TAKE, params).rowcount == 1:
        return True
    # no row yet (the job never ran): the first INSERT wins, a concurrent one does nothing
    return tx.insert_ignore(job_lease, {"job": job, "holder": holder,
                                        "expires_at": now + ttl_ms}) == 1


def reclaim(tx, node: str, now: int) -> int:
    """End at C{now} every lease a previous run of the node C{node} still holds.

    Call it when the node starts, before it runs any job: a node killed
    while running a job left its lease behind, and without this the node
    (restarted at once, under the same name) would skip that job as
    "running elsewhere" until the lease lapsed.  Node names are unique in a
    cluster, so no other node's lease is touched.

    @return: how many leases were ended.
    """
    return tx.execute(_reclaim(node), {"now": now}).rowcount


def renew(tx, job: str, holder: str, now: int, ttl_ms: int) -> bool:
    """Extend C{holder}'s lease of C{job} to C{now + ttl_ms}.

    Holder names are unique per run, so a lease that lapsed but that nobody
    took over meanwhile is still renewed.

    @return: False when the lease is no longer C{holder}'s (it lapsed and
        another run took it): the job must stop.
    """
    return tx.execute(_RENEW, {"job": job, "holder": holder,
                               "until": now + ttl_ms}).rowcount == 1


def release(tx, job: str, holder: str, now: int) -> bool:
    """End C{holder}'s lease of C{job} at C{now} (kept as the last run's end time).

    @return: False when C{holder} no longer held it.
    """
    return tx.execute(_RELEASE, {"job": job, "holder": holder, "now": now}).rowcount == 1


def current(tx, job: str) -> tuple[str, int] | None:
    """(holder, expires_at) of C{job}'s lease row, or None when it never ran."""
    row = tx.execute(_GET, {"job": job}).first()
    return (row[0], row[1]) if row is not None else None
