"""The housekeeping scheduler: an IService firing each job on its cron schedule (DESIGN §8).

Times come from an injected C{IReactorTime} (a C{task.Clock} in tests).  A
job fires at each of its schedule's times; if the previous run of that job
on this node is still going, the firing is skipped (and across nodes the
job's database lease does the same).  A run that fails is recorded by the
housekeeper and logged here; it never stops the scheduler.  Missed firings
(the node was down, or the clock jumped) are not caught up: the next
firing is always computed from now.
"""
from __future__ import annotations

from dataclasses import dataclass

from twisted.application import service
from twisted.logger import Logger

from core.housekeeping.cron import Schedule

#: Longest single timer: a timer re-arms itself at least this often, so a
#: wall-clock step (NTP) shifts a firing by at most this much.
MAX_SLEEP = 3600.0


@dataclass(frozen=True)
class Plan:
    """When one job runs on this node: its schedule, and whether also at start-up."""

    schedule: Schedule
    run_at_start: bool = False


class Scheduler(service.Service):
    """Fires the jobs of C{plans} through C{housekeeper.run(job, slot=...)}."""

    log = Logger()
    name = "housekeeping"

    def __init__(self, housekeeper, plans: dict, clock):
        """
        @param housekeeper: has C{run(job, slot=ms) -> Deferred}, C{stop() -> Deferred}
            and C{reclaim() -> Deferred} (called once before the first firing)
            (a L{core.housekeeping.housekeeper.Housekeeper}).
        @param plans: job name -> L{Plan}, for the jobs to schedule.
        @param clock: C{IReactorTime}.
        """
        self.housekeeper = housekeeper
        self.plans = dict(plans)
        self.clock = clock
        self._calls: dict = {}
        self._next: dict = {}
        self._running: dict = {}
        self.fired: dict = {}           # job -> number of firings (runs started) on this node

    # -- IService -----------------------------------------------------------------
    def startService(self):
        super().startService()
        d = self.housekeeper.reclaim()
        d.addErrback(lambda f: self.log.failure(
            "housekeeping: ending a previous run's leases failed", f))
        d.addCallback(lambda _: self._begin() if self.running else None)
        self.armed = d       # fires once the schedules are armed (tests, start-up order)

    def _begin(self):
        now = self.clock.seconds()
        for job, plan in self.plans.items():
            self._arm(job, now)
            if plan.run_at_start:
                self._fire(job, now)
        if self.plans:
            self.log.info("housekeeping scheduler started: {jobs}", jobs=", ".join(
                "%s (%s)" % (j, p.schedule) for j, p in self.plans.items()))

    def stopService(self):
        super().stopService()
        for call in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()
        self._next.clear()
        return self.housekeeper.stop()

    # -- queries ---------------------------------------------------------------------
    def next_fire(self, job: str) -> float | None:
        """The next time (epoch seconds) C{job} fires on this node, or None."""
        return self._next.get(job)

    def is_running(self, job: str) -> bool:
        """Whether a run of C{job} started by this scheduler is in progress."""
        return job in self._running

    # -- timers ------------------------------------------------------------------------
    def _arm(self, job: str, after: float) -> None:
        nxt = self.plans[job].schedule.next_after(after)
        self._next[job] = nxt
        self._sleep(job)

    def _sleep(self, job: str) -> None:
        delay = min(max(0.0, self._next[job] - self.clock.seconds()), MAX_SLEEP)
        self._calls[job] = self.clock.callLater(delay, self._wake, job)

    def _wake(self, job: str) -> None:
        if not self.running:
            return
        now = self.clock.seconds()
        slot = self._next[job]
        if now < slot:                  # a long wait is made of MAX_SLEEP steps
            self._sleep(job)
            return
        self._arm(job, max(now, slot))   # re-arm first: nothing below can stop the schedule
        self._fire(job, slot)

    def _fire(self, job: str, slot: float) -> None:
        if job in self._running:
            self.log.warn("housekeeping {job}: still running from an earlier firing; "
                          "this one is skipped", job=job)
            return
        try:
            d = self.housekeeper.run(job, slot=int(slot * 1000))
        except Exception:  # noqa: BLE001 - never let one job stop the scheduler
            from twisted.python.failure import Failure
            self.log.failure("housekeeping {job}: could not start", Failure(), job=job)
            return
        self.fired[job] = self.fired.get(job, 0) + 1
        self._running[job] = d

        def done(result):
            if self._running.get(job) is d:
                del self._running[job]
            return result
        d.addBoth(done)
        d.addErrback(lambda f: self.log.failure(
            "housekeeping {job}: run could not be recorded", f, job=job))


def schedule_plans(settings, jobs, *, default_interval: int | None = None) -> dict:
    """The L{Plan} of every enabled job in C{jobs} from the C{[housekeeping]} settings.

    @param default_interval: seconds for a job whose schedule is "" (reconcile:
        C{activation.reconcile_interval_seconds}).
    @raise CronError: a schedule does not parse (the config check catches it first).
    """
    from core.housekeeping.cron import parse
    plans = {}
    for name in jobs:
        opts = settings.job(name)
        if not opts.enabled:
            continue
        expr = opts.schedule or "@every %ds" % (default_interval or 60)
        plans[name] = Plan(parse(expr), opts.run_at_start)
    return plans
