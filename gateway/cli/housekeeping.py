"""C{ivoms housekeeping list | run JOB [--dry-run] | history}: housekeeping jobs on demand (DESIGN §8)."""
from __future__ import annotations

import time

from gateway.cli.runtime import CliError, open_node, run_with_reactor

#: Exit statuses of C{housekeeping run}.
EXIT_FAILED, EXIT_SKIPPED = 3, 4


def register(sub) -> None:
    """Add the C{housekeeping} sub-command to the argparse C{sub} parsers."""
    h = sub.add_parser("housekeeping", help="housekeeping jobs: schedules, runs on demand, history") \
        .add_subparsers(metavar="ACTION")
    h.add_parser("list", help="every job: schedule (UTC), next firing, last run") \
        .set_defaults(func=cmd_housekeeping_list)
    r = h.add_parser("run", help="run a job now (exit 0 ok, 3 failed, 4 running elsewhere)")
    r.add_argument("job", help="job name, as listed by 'ivoms housekeeping list'")
    r.add_argument("--dry-run", action="store_true", help="only count what the job would do")
    r.set_defaults(func=cmd_housekeeping_run)
    hi = h.add_parser("history", help="recent runs, newest first")
    hi.add_argument("--job", default=None, help="only runs of this job")
    hi.add_argument("--limit", type=int, default=20,
                    help="runs listed (default: %(default)s)")
    hi.set_defaults(func=cmd_housekeeping_history)


def _schedule_text(cfg, name) -> str:
    opts = cfg.housekeeping.job(name)
    if opts.schedule:
        return opts.schedule
    return "@every %ds" % cfg.activation.reconcile_interval_seconds


def list_rows(cfg, last: dict, leases: dict, now: float) -> list[tuple]:
    """(job, enabled, schedule, next firing, last run, title) for every job (pure)."""
    from core.housekeeping.cron import parse
    from core.housekeeping.jobs import JOBS
    from core.timeutil import fmt_ms
    hk = cfg.housekeeping
    rows = []
    for name, job in JOBS.items():
        opts = hk.job(name)
        sched = _schedule_text(cfg, name)
        scheduled = hk.enabled and opts.enabled
        nxt = fmt_ms(parse(sched).next_after(now) * 1000) if scheduled else "-"
        if opts.run_at_start and scheduled:
            sched += " +start"
        run = last.get(name)
        if run is None:
            last_text = "never"
        else:
            last_text = "%s %s, %d row(s)" % (fmt_ms(run.started_at), run.outcome, run.rows)
        lease = leases.get(name)
        if lease is not None and lease[1] > now * 1000:
            last_text += "; running on %s" % lease[0]
        rows.append((name, "yes" if scheduled else "no", sched, nxt, last_text, job.title))
    return rows


def cmd_housekeeping_list(args):
    from core.housekeeping import leases, runs
    from core.housekeeping.jobs import JOBS
    node = open_node(args, keys=False)
    cfg = node.config

    def unit(tx):
        return runs.last_by_job(tx), {j: leases.current(tx, j) for j in JOBS}
    last, held = node.store.run_sync(unit, read_only=True)
    node.store.dispose()
    print("schedules are UTC%s" % ("" if cfg.housekeeping.enabled else
                                   "; housekeeping.enabled = false: nothing is scheduled on this node"))
    print("%-13s %-5s %-18s %-20s %s" % ("job", "sched", "schedule", "next (UTC)", "last run"))
    for name, on, sched, nxt, last_text, title in list_rows(cfg, last, held, time.time()):
        print("%-13s %-5s %-18s %-20s %s" % (name, on, sched, nxt, last_text))
        print("%-13s %s" % ("", title))


def cmd_housekeeping_run(args):
    from core.housekeeping.housekeeper import Housekeeper, UnknownJob
    from core.housekeeping.jobs import JOBS
    if args.job not in JOBS:
        raise CliError(str(UnknownJob(args.job)))

    def go(node):
        return Housekeeper.from_node(node).run(args.job, dry_run=args.dry_run)
    res = run_with_reactor(args, go)
    print("%s: %s, %d row(s)%s" % (res.job, res.outcome, res.rows,
                                   "" if res.run_id is None else " (run %d)" % res.run_id))
    print(res.message)
    if res.outcome == "failed":
        return EXIT_FAILED
    if res.outcome == "skipped":
        return EXIT_SKIPPED
    return 0


def cmd_housekeeping_history(args):
    from core.housekeeping import runs
    from core.timeutil import fmt_ms
    node = open_node(args, keys=False)
    rows = node.store.run_sync(runs.recent, args.job, args.limit, read_only=True)
    node.store.dispose()
    print("%6s %-13s %-20s %8s %-8s %8s %s" % ("run", "job", "started (UTC)", "seconds", "outcome",
                                              "rows", "node / message"))
    for r in rows:
        secs = "-" if r.finished_at is None else "%.1f" % ((r.finished_at - r.started_at) / 1000)
        print("%6d %-13s %-20s %8s %-8s %8d %s: %s" % (r.id, r.job, fmt_ms(r.started_at), secs,
                                                      r.outcome, r.rows, r.node, r.message or ""))
    if not rows:
        print("(no runs)")
