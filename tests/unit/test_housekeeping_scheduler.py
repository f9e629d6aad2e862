"""The housekeeping scheduler on a task.Clock: firing times, no overlap, failures, stop;
and the housekeeper's run rows and leases for runs that fail or overlap."""
from __future__ import annotations

import pytest
import pytest_twisted
from sqlalchemy import update
from twisted.internet import defer

from core.housekeeping.cron import parse
from core.housekeeping.housekeeper import UnknownJob
from core.housekeeping.jobs import Job, JobReport
from core.housekeeping.scheduler import MAX_SLEEP, Plan, Scheduler, schedule_plans
from core.schema import job_lease
from tests.helpers import make_store
from tests.housekeeping_helpers import clock_at, lease_row, make_keeper, run_rows, settings
from tests.unit.test_housekeeping_cron import ts

START = ts("2026-03-02 10:00")


class FakeKeeper:
    """Records run(job, slot) calls; each returns a Deferred the test fires."""

    def __init__(self, auto=False):
        self.calls = []
        self.stopped = False
        self.auto = auto            # True: every run ends at once

    def run(self, job, *, slot=None, dry_run=False):
        d = defer.succeed(None) if self.auto else defer.Deferred()
        self.calls.append((job, slot, d))
        return d

    def stop(self):
        self.stopped = True
        return defer.succeed(None)

    def reclaim(self):
        self.reclaimed = True
        return defer.succeed(0)


def _sched(plans, start=START, auto=False):
    clock = clock_at(start)
    keeper = FakeKeeper(auto)
    s = Scheduler(keeper, {j: Plan(parse(e), st) for j, (e, st) in plans.items()}, clock)
    return s, keeper, clock


def _advance(clock, seconds, step=60):
    for _ in range(int(seconds // step)):
        clock.advance(step)


def test_fires_at_the_cron_times_with_the_slot():
    s, keeper, clock = _sched({"a": ("*/15 * * * *", False), "b": ("5 11 * * *", False)}, auto=True)
    s.startService()
    assert s.next_fire("a") == ts("2026-03-02 10:15") and s.next_fire("b") == ts("2026-03-02 11:05")
    _advance(clock, 3600)
    got = [(j, slot) for j, slot, d in keeper.calls]
    assert got == [("a", ts("2026-03-02 10:15") * 1000), ("a", ts("2026-03-02 10:30") * 1000),
                   ("a", ts("2026-03-02 10:45") * 1000), ("a", ts("2026-03-02 11:00") * 1000)]
    _advance(clock, 300)
    assert keeper.calls[-1][:2] == ("b", ts("2026-03-02 11:05") * 1000)
    s.stopService()
    assert keeper.stopped and not clock.getDelayedCalls()


def test_a_late_timer_fires_once_and_skips_missed_times():
    s, keeper, clock = _sched({"a": ("* * * * *", False)})
    s.startService()
    clock.advance(10 * 60 + 1)          # one big jump, ten missed minutes
    assert len(keeper.calls) == 1
    assert keeper.calls[0][1] == ts("2026-03-02 10:01") * 1000
    keeper.calls[0][2].callback(None)
    assert s.next_fire("a") == ts("2026-03-02 10:11")
    s.stopService()


def test_never_runs_a_job_twice_at_once():
    s, keeper, clock = _sched({"a": ("* * * * *", False)})
    s.startService()
    clock.advance(60)
    assert len(keeper.calls) == 1 and s.is_running("a")
    clock.advance(60)
    clock.advance(60)
    assert len(keeper.calls) == 1          # still running: two firings skipped
    keeper.calls[0][2].callback(None)
    assert not s.is_running("a")
    clock.advance(60)
    assert len(keeper.calls) == 2 and s.fired["a"] == 2
    keeper.calls[1][2].callback(None)
    s.stopService()
    assert not clock.getDelayedCalls()


def test_a_failing_job_never_stops_the_scheduler():
    s, keeper, clock = _sched({"a": ("* * * * *", False)})
    s.startService()
    for i in range(3):
        clock.advance(60)
        keeper.calls[-1][2].errback(RuntimeError("boom %d" % i))
    assert len(keeper.calls) == 3 and not s.is_running("a")
    s.stopService()
    assert not clock.getDelayedCalls()


def test_a_run_that_raises_at_once_is_logged_and_the_schedule_goes_on():
    clock = clock_at(START)

    class Raising(FakeKeeper):
        def run(self, job, *, slot=None, dry_run=False):
            self.calls.append((job, slot, None))
            raise RuntimeError("cannot even start")
    keeper = Raising()
    s = Scheduler(keeper, {"a": Plan(parse("* * * * *"))}, clock)
    s.startService()
    clock.advance(60)
    clock.advance(60)
    assert len(keeper.calls) == 2 and not s.is_running("a")
    s.stopService()
    assert not clock.getDelayedCalls()


def test_run_at_start():
    s, keeper, clock = _sched({"a": ("@daily", True), "b": ("@daily", False)})
    s.startService()
    assert [(j, slot) for j, slot, _ in keeper.calls] == [("a", START * 1000)]
    s.stopService()


def test_long_waits_are_made_of_bounded_sleeps():
    s, keeper, clock = _sched({"a": ("@yearly", False)})
    s.startService()
    (call,) = clock.getDelayedCalls()
    assert call.getTime() - clock.seconds() <= MAX_SLEEP
    _advance(clock, ts("2027-01-01 00:00") - START - 3600, step=3600)
    assert keeper.calls == []
    _advance(clock, 3600, step=3600)
    assert [(j, slot) for j, slot, _ in keeper.calls] == [("a", ts("2027-01-01 00:00") * 1000)]
    s.stopService()
    assert not clock.getDelayedCalls()


def test_stop_cancels_timers_and_nothing_fires_after():
    s, keeper, clock = _sched({"a": ("* * * * *", False)})
    s.startService()
    s.stopService()
    clock.advance(3600)
    assert keeper.calls == [] and not clock.getDelayedCalls()


def test_schedule_plans_from_settings():
    hk = settings(expire={"schedule": "0 3 * * *"}, purge={"enabled": False})
    plans = schedule_plans(hk, ["expire", "reconcile", "purge"], default_interval=30)
    assert set(plans) == {"expire", "reconcile"}
    assert str(plans["expire"].schedule) == "0 3 * * *" and not plans["expire"].run_at_start
    assert str(plans["reconcile"].schedule) == "@every 30s" and plans["reconcile"].run_at_start


# -- with the real housekeeper, on SQLite ------------------------------------------------
@pytest.fixture
def sqlite_env(sqlite_url, tmp_path):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    yield store
    store.dispose()


def _jobs(**fns):
    return {name: Job(name, name, fn) for name, fn in fns.items()}


@pytest_twisted.ensureDeferred
async def test_failing_job_records_a_failed_run_and_the_next_firing_runs(sqlite_env, reactor):
    store = sqlite_env
    clock = clock_at(START)
    attempts = []

    async def flaky(ctx):
        attempts.append(ctx.now())
        ctx.progress(7)
        if len(attempts) == 1:
            raise ValueError("disk on fire")
        return JobReport(3, "fine")
    keeper, runner = make_keeper(store, reactor, clock, jobs=_jobs(expire=flaky))
    runs_started = []
    real_run = keeper.run
    keeper.run = lambda job, **kw: runs_started.append(real_run(job, **kw)) or runs_started[-1]
    s = Scheduler(keeper, {"expire": Plan(parse("* * * * *"))}, clock)
    s.startService()
    await s.armed
    try:
        clock.advance(60)
        first = await runs_started[0]
        assert (first.outcome, first.rows) == ("failed", 7)
        assert first.message == "ValueError: disk on fire"
        clock.advance(60)
        second = await runs_started[1]
        assert (second.outcome, second.rows, second.message) == ("ok", 3, "fine")
        rows = run_rows(store, "expire")
        assert [(r["outcome"], r["rows"], r["node"]) for r in rows] == [("failed", 7, "n1"),
                                                                      ("ok", 3, "n1")]
        assert rows[0]["started_at"] == (START + 60) * 1000
        assert rows[0]["finished_at"] == (START + 60) * 1000
        assert "disk on fire" in rows[0]["message"]
        # the lease was released at the end of each run
        holder, until = lease_row(store, "expire")
        assert holder.startswith("n1:") and until == (START + 120) * 1000
    finally:
        await s.stopService()
        await runner.stop()
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_on_demand_run_while_running_is_skipped_and_lease_is_renewed(sqlite_env, reactor):
    store = sqlite_env
    clock = clock_at(START)
    gate = defer.Deferred()

    async def slow(ctx):
        await gate
        await ctx.checkpoint()
        return JobReport(1, "done")
    keeper, runner = make_keeper(store, reactor, clock, hk=settings(lease_seconds=90),
                                 jobs=_jobs(expire=slow))
    try:
        d1 = keeper.run("expire")
        await runner.submit(lambda tx: None)       # FIFO writer: the run has begun
        assert run_rows(store)[0]["outcome"] == "running"
        second = await keeper.run("expire")
        assert second.outcome == "skipped" and second.run_id is None
        assert "running elsewhere (n1:" in second.message
        assert len(run_rows(store)) == 1           # a skipped run leaves no row
        # the lease is renewed every third of lease_seconds while the job runs
        assert lease_row(store, "expire")[1] == (START + 90) * 1000
        clock.advance(30)
        await runner.submit(lambda tx: None)       # the renewal queued before it is done
        assert lease_row(store, "expire")[1] == (START + 120) * 1000
        gate.callback(None)
        res = await d1
        assert (res.outcome, res.rows) == ("ok", 1)
        assert lease_row(store, "expire")[1] == (START + 30) * 1000     # released: end time
        again = await keeper.run("expire", dry_run=True)
        assert again.outcome == "dry-run"
    finally:
        await runner.stop()
    assert not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_a_lost_lease_stops_the_job_at_its_next_chunk(sqlite_env, reactor):
    store = sqlite_env
    clock = clock_at(START)
    gate = defer.Deferred()

    async def chunked(ctx):
        ctx.progress(5)
        await gate
        await ctx.checkpoint()
        return JobReport(10, "not reached")
    keeper, runner = make_keeper(store, reactor, clock, hk=settings(lease_seconds=30),
                                 jobs=_jobs(purge=chunked))
    try:
        d = keeper.run("purge")
        await runner.submit(lambda tx: None)       # FIFO writer: the run has begun
        # this node stalled: its lease lapsed and another node took it
        store.run_sync(lambda tx: tx.execute(update(job_lease).values(holder="n2:other")))
        clock.advance(10)                          # the next renewal finds it gone
        await runner.submit(lambda tx: None)       # the single SQLite writer is FIFO
        gate.callback(None)
        res = await d
        assert (res.outcome, res.rows) == ("failed", 5)
        assert "LeaseLost" in res.message
        assert lease_row(store, "purge")[0] == "n2:other"      # not released by the loser
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_stop_interrupts_a_job_between_chunks(sqlite_env, reactor):
    store = sqlite_env
    clock = clock_at(START)
    gate = defer.Deferred()

    async def chunked(ctx):
        await gate
        await ctx.checkpoint()
        return JobReport(1, "not reached")
    keeper, runner = make_keeper(store, reactor, clock, jobs=_jobs(expire=chunked))
    try:
        d = keeper.run("expire")
        stopped = keeper.stop()
        assert not stopped.called
        gate.callback(None)
        res = await d
        await stopped
        assert res.outcome == "failed" and "JobStopped" in res.message
    finally:
        await runner.stop()


def test_unknown_job(sqlite_env, reactor):
    keeper, runner = make_keeper(sqlite_env, reactor, clock_at())
    try:
        with pytest.raises(UnknownJob) as ei:
            keeper.run("nope")
        assert "unknown housekeeping job 'nope'" in str(ei.value)
    finally:
        runner.stop()



def test_nothing_fires_before_the_previous_runs_leases_are_ended():
    s, keeper, clock = _sched({"reconcile": ("@every 2s", True)}, auto=True)
    gate = defer.Deferred()
    keeper.reclaim = lambda: gate
    s.startService()
    clock.advance(10)
    assert keeper.calls == []                # start-up run waits for the leases
    gate.callback(0)
    assert [c[0] for c in keeper.calls] == ["reconcile"]
    clock.advance(2)
    assert len(keeper.calls) == 2
    s.stopService()
