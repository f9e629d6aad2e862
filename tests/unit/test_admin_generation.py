"""Admin GUI: generation off the reactor with live progress, batch list and detail."""
from __future__ import annotations

import datetime as dt
import json

import pytest_twisted
from sqlalchemy import func, select
from twisted.internet import task

from core.schema import audit_log, batch, voucher
from tests.admin_helpers import admin_node  # noqa: F401


async def wait_job(client, job_url, timeout=60.0):
    """Poll the job's JSON until it finishes; return the progress values seen and the last state."""
    from twisted.internet import reactor
    seen = []
    for _ in range(int(timeout / 0.05)):
        r = await client.get(job_url + ".json")
        assert r.status == 200 and r.header("content-type") == "application/json"
        j = json.loads(r.body)
        seen.append(j["done"])
        if j["finished"]:
            return seen, j
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("generation job did not finish")


@pytest_twisted.ensureDeferred
async def test_generate_a_batch_with_progress(admin_node):
    c = await admin_node.logged_in("vm")
    r = await c.get("/generation")
    assert r.status == 200 and "EUR10" in r.text
    expires = (dt.date.today() + dt.timedelta(days=100)).isoformat()
    r = await c.post("/generation", {"type": "EUR10", "count": "3000", "expires": expires})
    assert r.status == 303
    job_url = r.header("location")
    assert job_url.startswith("/generation/jobs/")
    page = await c.get(job_url)
    assert page.status == 200 and "<progress" in page.text and "progress.js" in page.text
    seen, last = await wait_job(c, job_url)
    assert last["done"] == 3000 and last["error"] is None and last["percent"] == 100
    assert seen == sorted(seen)
    bid = last["batch_id"]
    n = admin_node.store.run_sync(lambda tx: tx.execute(
        select(func.count()).select_from(voucher).where(voucher.c.batch_id == bid)).scalar())
    assert n == 3000
    row = admin_node.store.run_sync(lambda tx: tx.execute(
        select(batch.c.state, batch.c.requested_by, batch.c.type_code).where(batch.c.id == bid)).first())
    assert tuple(row) == ("ready", "vm", "EUR10")
    # finished job page links the batch; the no-JS refresh is gone
    page = await c.get(job_url)
    assert "/batches/%d" % bid in page.text and "http-equiv" not in page.text
    # batch list and detail
    r = await c.get("/batches")
    assert r.status == 200 and "/batches/%d" % bid in r.text
    r = await c.get("/batches/%d" % bid)
    assert r.status == 200 and "3000" in r.text and "generated" in r.text and expires in r.text
    assert (await c.get("/batches/99999")).status == 404
    actions = admin_node.store.run_sync(lambda tx: [a for (a,) in tx.execute(
        select(audit_log.c.action).where(audit_log.c.actor == "vm")).rows])
    assert "batch.generate" in actions and "batch.generated" in actions


@pytest_twisted.ensureDeferred
async def test_running_job_page_refreshes_without_javascript(admin_node):
    job = admin_node.ctx.jobs.new("EUR5", 10, "vm")
    c = await admin_node.logged_in("vm")
    r = await c.get("/generation/jobs/%d" % job.id)
    assert '<noscript><meta http-equiv="refresh"' in r.text
    assert (await c.get("/generation/jobs/999")).status == 404
    assert (await c.get("/generation/jobs/999.json")).status == 404


@pytest_twisted.ensureDeferred
async def test_generation_form_is_validated(admin_node):
    c = await admin_node.logged_in("vm")
    await c.get("/generation")
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    cases = [
        ({"type": "NOPE", "count": "10"}, "voucher type"),
        ({"type": "EUR5", "count": "0"}, "at least 1"),
        ({"type": "EUR5", "count": "ten"}, "whole number"),
        ({"type": "EUR5", "count": ""}, "required"),
        ({"type": "EUR5", "count": "99999999999"}, "maximum"),
        ({"type": "EUR5", "count": "5", "expires": past}, "past"),
        ({"type": "EUR5", "count": "5", "expires": "tomorrow"}, "date"),
    ]
    for form, text in cases:
        r = await c.post("/generation", form)
        assert r.status == 400 and text in r.text, (form, r.text[-400:])
    assert admin_node.store.run_sync(lambda tx: tx.execute(
        select(func.count()).select_from(batch)).scalar()) == 0


@pytest_twisted.ensureDeferred
async def test_default_expiry_is_the_types_validity(admin_node):
    c = await admin_node.logged_in("admin")
    await c.get("/generation")
    r = await c.post("/generation", {"type": "EUR5", "count": "5"})
    _, last = await wait_job(c, r.header("location"))
    exp = admin_node.store.run_sync(lambda tx: tx.execute(
        select(batch.c.expires_at).where(batch.c.id == last["batch_id"])).scalar())
    days = (exp / 1000 - dt.datetime.now(dt.timezone.utc).timestamp()) / 86400
    assert 364 < days < 367


@pytest_twisted.ensureDeferred
async def test_generation_job_limit(admin_node):
    for _ in range(admin_node.config.admin.max_generation_jobs):
        admin_node.ctx.jobs.new("EUR5", 10, "x")          # pretend they are running
    c = await admin_node.logged_in("vm")
    await c.get("/generation")
    r = await c.post("/generation", {"type": "EUR5", "count": "5"})
    assert r.status == 400 and "already running" in r.text
