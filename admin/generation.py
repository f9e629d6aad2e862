"""Generation: the form starting a batch off the reactor, its live progress, batch list and detail."""
from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass

from twisted.logger import Logger

from admin import web
from admin.web import FormError
from core.audit import audit
from core.batches import batch_detail, list_batches
from core.generation import GenerationError, generate
from core.timeutil import end_of_day_ms

log = Logger()
PAGE = 50


@dataclass
class Job:
    """One generation started from the GUI on this node."""

    id: int
    type_code: str
    count: int
    requested_by: str
    done: int = 0
    batch_id: int | None = None
    error: str | None = None
    finished: bool = False

    def as_json(self) -> dict:
        return {"id": self.id, "type": self.type_code, "count": self.count, "done": self.done,
                "batch_id": self.batch_id, "error": self.error, "finished": self.finished,
                "percent": 100 * self.done // self.count if self.count else 100}


class Jobs:
    """The generation jobs of this node, newest first; progress arrives on the reactor."""

    KEEP = 50

    def __init__(self):
        self._ids = itertools.count(1)
        self.jobs: dict[int, Job] = {}

    def new(self, type_code, count, requested_by) -> Job:
        job = Job(next(self._ids), type_code, count, requested_by)
        self.jobs[job.id] = job
        for old in sorted(self.jobs)[:-self.KEEP]:
            if self.jobs[old].finished:
                del self.jobs[old]
        return job

    def running(self) -> int:
        return sum(1 for j in self.jobs.values() if not j.finished)


def register(app, ctx) -> None:
    ctx.jobs = jobs = Jobs()

    @app.route("/generation", methods=["GET"])
    @ctx.page("generation")
    async def form(request, session):
        types = list(ctx.voucher_types.values())
        today = dt.date.fromtimestamp(ctx.now() / 1000)
        defaults = {t.code: (today + dt.timedelta(days=t.validity_days)).isoformat() for t in types}
        return ctx.render(request, "generation.html", session, title="Generation", types=types,
                          defaults=defaults, jobs=sorted(jobs.jobs.values(), key=lambda j: -j.id),
                          max_count=ctx.generation.max_count)

    @app.route("/generation", methods=["POST"])
    @ctx.page("generation")
    async def start(request, session):
        code = web.arg(request, "type")
        if code not in ctx.voucher_types:
            raise FormError("choose a voucher type")
        vt = ctx.voucher_types[code]
        count = web.req_int(request, "count", minimum=1, label="count")
        if count > ctx.generation.max_count:
            raise FormError("count %d is above the configured maximum (%d)"
                            % (count, ctx.generation.max_count))
        today = dt.date.fromtimestamp(ctx.now() / 1000)
        day = web.opt_day(request, "expires", "expiry") or today + dt.timedelta(days=vt.validity_days)
        if day < today:
            raise FormError("the expiry date %s is in the past" % day.isoformat())
        if jobs.running() >= ctx.settings.max_generation_jobs:
            raise FormError("%d generation jobs are already running on this node; wait for one "
                            "to finish" % jobs.running())
        job = jobs.new(code, count, session.name)
        origin = web.client_origin(request)
        await ctx.write(_audit, ctx.now(), session.name, "batch.generate", code, origin,
                        {"count": count, "expires": day.isoformat(), "job": job.id})
        _run(ctx, job, vt, end_of_day_ms(day), origin)
        return web.redirect(request, "/generation/jobs/%d" % job.id)

    @app.route("/generation/jobs/<int:job_id>", methods=["GET"])
    @ctx.page("generation")
    async def job_page(request, session, job_id):
        job = jobs.jobs.get(job_id)
        if job is None:
            return ctx.error(request, session, 404, "No such generation job on this node.")
        return ctx.render(request, "job.html", session, title="Generation job %d" % job.id, job=job)

    @app.route("/generation/jobs/<int:job_id>.json", methods=["GET"])
    @ctx.page("generation")
    async def job_json(request, session, job_id):
        job = jobs.jobs.get(job_id)
        request.setHeader(b"content-type", b"application/json")
        web.secure_headers(request)
        if job is None:
            request.setResponseCode(404)
            return b'{"error": "no such job"}'
        return json.dumps(job.as_json()).encode()

    @app.route("/batches", methods=["GET"])
    @ctx.page("batches")
    async def batches(request, session):
        before = web.opt_int(request, "before")
        rows = await ctx.read(list_batches, before, PAGE)
        return ctx.render(request, "batches.html", session, title="Batches", batches=rows,
                          next_before=rows[-1]["id"] if len(rows) == PAGE else None)

    @app.route("/batches/<int:batch_id>", methods=["GET"])
    @ctx.page("batches")
    async def batch_page(request, session, batch_id):
        b = await ctx.read(batch_detail, batch_id)
        if b is None:
            return ctx.error(request, session, 404, "No batch %d." % batch_id)
        return ctx.render(request, "batch.html", session, title="Batch %d" % batch_id, b=b)


def _run(ctx, job: Job, vt, expires_at: int, origin: str) -> None:
    """Start C{job} on the thread pool; progress and the outcome come back to the reactor."""
    reactor = ctx.reactor

    def progress(done, count):
        reactor.callFromThread(setattr, job, "done", done)

    d = ctx.blocking(generate, ctx.store, ctx.cipher, vt, job.count, expires_at,
                     requested_by=job.requested_by, serial_start=ctx.generation.serial_start,
                     chunk_size=ctx.generation.chunk_size, workers=ctx.generation.workers,
                     progress=progress)

    def ok(info):
        job.batch_id, job.done, job.finished = info.batch_id, job.count, True
        return ctx.write(_audit, ctx.now(), job.requested_by, "batch.generated",
                         "batch %d" % info.batch_id, origin,
                         {"count": info.count, "first": info.first_serial, "last": info.last_serial})

    def failed(f):
        job.finished = True
        job.error = str(f.value) if f.check(GenerationError) else "unexpected error (logged)"
        if not f.check(GenerationError):
            log.failure("generation job {job} failed", f, job=job.id)
        return ctx.write(_audit, ctx.now(), job.requested_by, "batch.failed", job.type_code,
                         origin, {"job": job.id, "error": job.error})

    d.addCallbacks(ok, failed)
    d.addErrback(lambda f: log.failure("recording generation job {job}", f, job=job.id))


def _audit(tx, now, actor, action, target, origin, detail):
    audit(tx, at=now, actor=actor, action=action, target=target, origin=origin, detail=detail)
