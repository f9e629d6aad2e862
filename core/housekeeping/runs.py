"""Run history: one C{housekeeping_run} row per run of a job (DESIGN §8).

A run's row is written when it starts (C{running}) and closed when it ends
(C{ok}, C{failed} or C{dry-run}) with the rows it touched and a message.
Every function is a unit of work (C{fn(tx, ...)}).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam, desc, func, insert, select, update

from core.schema import housekeeping_run as hr

RUNNING, OK, FAILED, DRY_RUN = "running", "ok", "failed", "dry-run"
OUTCOMES = (RUNNING, OK, FAILED, DRY_RUN)
MESSAGE_MAX = 4000

_START = insert(hr).values(job=bindparam("job"), node=bindparam("node"),
                           started_at=bindparam("now"), rows=0, outcome=RUNNING,
                           message=bindparam("message")).returning(hr.c.id)

_FINISH = update(hr).where(and_(hr.c.id == bindparam("run_id"), hr.c.outcome == RUNNING)) \
    .values(finished_at=bindparam("now"), rows=bindparam("rows"), outcome=bindparam("outcome"),
            message=bindparam("message"))

_INTERRUPTED = update(hr).where(and_(hr.c.job == bindparam("job"), hr.c.outcome == RUNNING)) \
    .values(finished_at=bindparam("now"), outcome=FAILED,
            message="interrupted: the node running it stopped or lost its lease")


@dataclass(frozen=True)
class Run:
    """One row of the run history."""

    id: int
    job: str
    node: str
    started_at: int
    finished_at: int | None
    rows: int
    outcome: str
    message: str | None


def start(tx, job: str, node: str, now: int, message: str | None = None) -> int:
    """Record that C{job} started on C{node}; return the run's id.

    Call it holding the job's lease: any row of the job still C{running}
    is then a run that died without closing its row, and is closed as
    C{failed} first.
    """
    tx.execute(_INTERRUPTED, {"job": job, "now": now})
    return tx.execute(_START, {"job": job, "node": node, "now": now, "message": message}).scalar()


def finish(tx, run_id: int, now: int, outcome: str, rows: int, message: str | None) -> bool:
    """Close the run C{run_id} with its C{outcome}; False if it was already closed."""
    if outcome not in (OK, FAILED, DRY_RUN):
        raise ValueError("unknown run outcome %r" % outcome)
    if message is not None and len(message) > MESSAGE_MAX:
        message = message[:MESSAGE_MAX - 3] + "..."
    return tx.execute(_FINISH, {"run_id": run_id, "now": now, "outcome": outcome, "rows": rows,
                                "message": message}).rowcount == 1


def recent(tx, job: str | None = None, limit: int = 20) -> list[Run]:
    """The newest runs (of C{job}, or of every job), newest first."""
    q = select(hr.c.id, hr.c.job, hr.c.node, hr.c.started_at, hr.c.finished_at, hr.c.rows,
               hr.c.outcome, hr.c.message)
    if job is not None:
        q = q.where(hr.c.job == job)
    q = q.order_by(desc(hr.c.started_at), desc(hr.c.id)).limit(limit)
    return [Run(*r) for r in tx.execute(q).rows]


def last_by_job(tx) -> dict[str, Run]:
    """The newest run of each job that ever ran, by job name."""
    ids = [r[0] for r in tx.execute(select(func.max(hr.c.id)).group_by(hr.c.job)).rows]
    if not ids:
        return {}
    q = select(hr.c.id, hr.c.job, hr.c.node, hr.c.started_at, hr.c.finished_at, hr.c.rows,
               hr.c.outcome, hr.c.message).where(hr.c.id.in_(ids))
    return {r[1]: Run(*r) for r in tx.execute(q).rows}
