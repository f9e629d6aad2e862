"""Running one housekeeping job: lease, run-history row, chunked work, outcome (DESIGN §8).

L{Housekeeper} is what the scheduler, the CLI and the GUI call to run
a job, scheduled or on demand.  A run takes the job's database lease and
opens its history row in one unit of work, renews the lease while the job
works, and closes the row (C{ok}, C{failed} or C{dry-run}) and releases
the lease in one more.  If the lease is held elsewhere the run is
C{skipped} and leaves no row.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from twisted.internet import defer, task, threads
from twisted.logger import Logger

from core.housekeeping import leases, runs
from core.housekeeping.jobs import JOBS
from core.housekeeping.pacing import ChunkPacer
from core.timeutil import fmt_ms, now_ms

SKIPPED = "skipped"


class JobStopped(Exception):
    """The node is stopping: the job stopped between two chunks."""


class LeaseLost(Exception):
    """The job's lease was taken over by another run: the job stopped between two chunks."""


class UnknownJob(KeyError):
    """No job has this name."""

    def __str__(self):
        return "unknown housekeeping job %r (jobs: %s)" % (self.args[0], ", ".join(JOBS))


@dataclass(frozen=True)
class RunOutcome:
    """What one call of L{Housekeeper.run} did.

    C{outcome} is C{ok}, C{failed}, C{dry-run} or C{skipped} (the lease
    was held elsewhere; C{run_id} is then None).
    """

    job: str
    outcome: str
    rows: int
    message: str
    run_id: int | None = None


class JobContext:
    """What a job sees while it runs: time, its options, and chunked access to the store."""

    def __init__(self, keeper: "Housekeeper", job: str, dry_run: bool):
        self.keeper = keeper
        self.job = job
        self.dry_run = dry_run
        self.settings = keeper.settings.job(job)
        self.pacer = ChunkPacer(keeper.settings.chunk_size)
        self.chunk_size = self.pacer.size
        self.reconciler = keeper.reconciler
        self.fraud_window_seconds = keeper.fraud_window_seconds
        self.replay_window_seconds = keeper.replay_window_seconds
        self.log = keeper.log
        self.rows = 0
        self.lease_lost = False
        self.renewing: defer.Deferred | None = None

    def path(self, path: str) -> str:
        """C{path} made absolute against the config folder (relative ones only)."""
        return os.path.normpath(os.path.join(self.keeper.base_dir, os.path.expanduser(path)))

    def now(self) -> int:
        """Current time, epoch ms, from the injected clock."""
        return now_ms(self.keeper.clock)

    def progress(self, n: int) -> None:
        """Count C{n} more rows touched (kept if the job fails later)."""
        self.rows += n

    def write(self, fn, *args) -> defer.Deferred:
        """Queue the unit of work C{fn(tx, *args)} on the node's writer, behind the
        activations (the runner's background lane), timed for the chunk size."""
        runner = self.keeper.runner
        submit = getattr(runner, "submit_background", runner.submit)
        return submit(self.pacer.timed(fn), *args).addCallback(self.pacer.took)

    def read(self, fn, *args) -> defer.Deferred:
        """Run C{fn(tx, *args)} in a read transaction on the reactor's thread pool,
        so long scans never hold the writer."""
        k = self.keeper
        return threads.deferToThreadPool(k.reactor, k.reactor.getThreadPool(), k.store.run_sync,
                                         fn, *args, read_only=True)

    def in_thread(self, fn, *args) -> defer.Deferred:
        """Run blocking C{fn(*args)} (file I/O) on the reactor's thread pool."""
        k = self.keeper
        return threads.deferToThreadPool(k.reactor, k.reactor.getThreadPool(), fn, *args)

    async def checkpoint(self) -> None:
        """Between two chunks: stop if the node stops or the lease was lost, size the
        next chunk, then pause (on the injected clock) C{chunk_pause} seconds for
        each C{chunk_size} rows of the last chunk, if configured.

        @raise JobStopped: the node is stopping.
        @raise LeaseLost: another run took the job's lease.
        """
        if self.keeper.stopping:
            raise JobStopped("stopped because the node is stopping")
        if self.lease_lost:
            raise LeaseLost("stopped because the job's lease was taken over")
        pause = self.pacer.pause(self.keeper.settings.chunk_pause)
        self.chunk_size = self.pacer.next_size()
        if pause > 0:
            await task.deferLater(self.keeper.clock, pause, lambda: None)


@dataclass(frozen=True, slots=True)
class Begun:
    """What L{_begin} found.

    @ivar run_id: the new run's id, or None when the lease was not taken.
    @ivar lease: when not taken, the lease row (holder, expires_at) that
        kept it (None if the job never ran).
    """

    run_id: int | None
    lease: tuple | None = None


def _begin(tx, job, holder, node, now, ttl_ms, slot) -> Begun:
    """Take the lease and open the run row together."""
    if not leases.acquire(tx, job, holder, now, ttl_ms, slot):
        return Begun(None, leases.current(tx, job))
    return Begun(runs.start(tx, job, node, now))


def _end(tx, run_id, job, holder, now, outcome, rows, message):
    """Close the run row and release the lease together."""
    runs.finish(tx, run_id, now, outcome, rows, message)
    leases.release(tx, job, holder, now)


class Housekeeper:
    """Runs housekeeping jobs by name, one at a time per job across all nodes."""

    log = Logger()

    def __init__(self, *, settings, node: str, runner, store, reactor, clock=None,
                 reconciler=None, fraud_window_seconds: int = 86400, jobs=None,
                 base_dir: str | None = None, replay_window_seconds: int = 3600):
        """
        @param settings: the C{[housekeeping]} settings (chunk size, lease time,
            each job's table).
        @param node: this node's name, recorded in run rows and lease holders.
        @param runner: the node's L{core.units.UnitRunner} (writes).
        @param store: the L{core.db.Store} (reads on the reactor's thread pool).
        @param reactor: the reactor owning the thread pool.
        @param clock: C{IReactorTime} for timestamps, lease renewal and pauses
            (default: C{reactor}).
        @param jobs: job registry (default: L{core.housekeeping.jobs.JOBS}).
        @param base_dir: folder that relative file paths of jobs resolve against
            (the config folder; default: the working directory).
        @param replay_window_seconds: how long a request's idempotency key
            answers a repeat (C{[activation] replay_window_seconds}); the
            C{forget_requests} job keeps keys at least this long.
        """
        self.settings = settings
        self.node = node
        self.runner = runner
        self.store = store
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.reconciler = reconciler
        self.fraud_window_seconds = fraud_window_seconds
        self.replay_window_seconds = replay_window_seconds
        self.jobs = dict(JOBS if jobs is None else jobs)
        self.base_dir = base_dir or os.getcwd()
        self.stopping = False
        self._running: set = set()

    @classmethod
    def from_node(cls, node) -> "Housekeeper":
        """The housekeeper of a C{gateway.node.Node} (its runner, store, clock, reconciler)."""
        cfg = node.config
        return cls(settings=cfg.housekeeping, node=cfg.node.name, runner=node.runner,
                   store=node.store, reactor=node.reactor, clock=getattr(node, "clock", None),
                   reconciler=node.reconciler, fraud_window_seconds=cfg.fraud.window_seconds,
                   replay_window_seconds=cfg.activation.replay_window_seconds,
                   base_dir=cfg.base_dir)

    def run(self, job: str, *, dry_run: bool = False, slot: int | None = None) -> defer.Deferred:
        """Run C{job} once.

        @param dry_run: only count what the job would do; the run row says
            C{dry-run}.
        @param slot: the fire time (epoch ms) of a scheduled run, so that
            several nodes firing the same schedule run it once; None on demand.
        @return: a Deferred firing with a L{RunOutcome}; it fails only when
            the store cannot record the run at all.
        @raise UnknownJob: no job is called C{job}.
        """
        if job not in self.jobs:
            raise UnknownJob(job)
        d = defer.ensureDeferred(self._run(job, dry_run, slot))
        self._running.add(d)
        d.addBoth(lambda r: (self._running.discard(d), r)[1])
        return d

    def reclaim(self) -> defer.Deferred:
        """End the leases a previous run of this node left behind (see L{leases.reclaim}).

        Call it once at start-up, before any job runs.

        @return: a Deferred firing with how many leases were ended.
        """
        def said(count):
            if count:
                self.log.info("housekeeping: {count} lease(s) of a previous run of {node} ended",
                              count=count, node=self.node)
            return count
        return self.runner.submit(leases.reclaim, self.node, now_ms(self.clock)).addCallback(said)

    def stop(self) -> defer.Deferred:
        """Ask running jobs to stop at their next chunk; fire when they all ended."""
        self.stopping = True
        waits = [_quiet(d) for d in list(self._running)]
        return defer.gatherResults(waits).addCallback(lambda _: None)

    async def _run(self, job: str, dry_run: bool, slot: int | None) -> RunOutcome:
        ttl = self.settings.lease_seconds * 1000
        holder = leases.new_holder(self.node)
        start = now_ms(self.clock)
        begun = await self.runner.submit(_begin, job, holder, self.node, start, ttl, slot)
        run_id, lease = begun.run_id, begun.lease
        if run_id is None:
            if lease is not None and lease[1] > start:
                why = "running elsewhere (%s, lease until %s)" % (lease[0], fmt_ms(lease[1]))
            else:
                why = "already ran for this schedule (%s, ended %s)" % (
                    lease[0] if lease else "?", fmt_ms(lease[1]) if lease else "-")
            self.log.info("housekeeping {job}: skipped, {why}", job=job, why=why)
            return RunOutcome(job, SKIPPED, 0, why)
        ctx = JobContext(self, job, dry_run)
        renewal = task.LoopingCall(self._renew, ctx, holder, ttl)
        renewal.clock = self.clock
        renewal.start(max(1.0, self.settings.lease_seconds / 3.0), now=False)
        self.log.info("housekeeping {job}: started{dry} (run {run_id})", job=job,
                      dry=" (dry run)" if dry_run else "", run_id=run_id)
        try:
            report = await self.jobs[job].run(ctx)
        except Exception as e:  # noqa: BLE001 - a job's failure is recorded, never raised
            from twisted.python.failure import Failure
            self.log.failure("housekeeping {job}: failed (run {run_id})", Failure(),
                             job=job, run_id=run_id)
            outcome, rows = runs.FAILED, ctx.rows
            message = "%s: %s" % (type(e).__name__, e)
        else:
            outcome = runs.DRY_RUN if dry_run else runs.OK
            rows, message = report.rows, report.message
        finally:
            renewal.stop()
        if ctx.renewing is not None:
            await _quiet(ctx.renewing)      # never release before an in-flight renewal
        await self.runner.submit(_end, run_id, job, holder, now_ms(self.clock), outcome, rows,
                                 message)
        self.log.info("housekeeping {job}: {outcome}, {rows} row(s): {message}", job=job,
                      outcome=outcome, rows=rows, message=message)
        return RunOutcome(job, outcome, rows, message, run_id)

    def _renew(self, ctx: JobContext, holder: str, ttl: int):
        d = self.runner.submit(leases.renew, ctx.job, holder, now_ms(self.clock), ttl)

        def done(ok):
            if not ok and not ctx.lease_lost:
                ctx.lease_lost = True
                self.log.error("housekeeping {job}: lease lost to another run; stopping",
                               job=ctx.job)
        d.addCallback(done)
        d.addErrback(lambda f: self.log.failure("housekeeping {job}: lease renewal failed", f,
                                                job=ctx.job))
        ctx.renewing = d
        return None     # never wait: a slow renewal must not stop the loop


def _quiet(d: defer.Deferred) -> defer.Deferred:
    """A Deferred firing (with None) when C{d} fires, whatever its result; C{d} unchanged."""
    out = defer.Deferred()

    def fire(r):
        if not out.called:
            out.callback(None)
        return r
    d.addBoth(fire)
    return out
