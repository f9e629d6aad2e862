"""The SQLite writer in a process of its own (core.unit_process): real child processes.

What a caller is told is what the writer committed; a unit that fails fails
alone; a unit that cannot travel fails at once; a writer killed with
SIGKILL fails what it held with 152 and is replaced; a node killed with
SIGKILL leaves a writer that finishes what it held and exits.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import types
from types import SimpleNamespace

import pytest
import pytest_twisted
from twisted.internet import defer

from core.db import StoreUnavailable
from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.unit_process import ProcessUnitRunner
from tests.helpers import build_service, credited_entries, make_batch, make_store, voucher_row

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- units (module-level functions: they travel to the writer by name) -------------
def note(tx, value):
    """Insert C{value} into the scratch table; answer the writer's pid."""
    tx.execute_raw("INSERT INTO scratch (v) VALUES (?)", (value,))
    return os.getpid()


def fail(tx, value):
    tx.execute_raw("INSERT INTO scratch (v) VALUES (?)", (value,))
    raise ValueError("unit %s refused" % value)


def slow(tx, seconds):
    time.sleep(seconds)
    return os.getpid()


def scratch(store) -> list:
    return sorted(r[0] for r in store.run_sync(
        lambda tx: tx.execute_raw("SELECT v FROM scratch").rows))


@pytest.fixture
def store(sqlite_url, tmp_path):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    store.run_sync(lambda tx: tx.execute_raw("CREATE TABLE scratch (v TEXT)"))
    store.cipher = cipher
    yield store
    store.dispose()


@contextlib.asynccontextmanager
async def writer(store, reactor, **kw):
    """A started L{ProcessUnitRunner} over C{store}, stopped afterwards."""
    runner = ProcessUnitRunner(store, reactor, **kw)
    runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def task_sleep(reactor, seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@pytest_twisted.ensureDeferred
async def test_units_run_in_the_writer_and_answer_after_their_commit(store, reactor):
    async with writer(store, reactor) as runner:
        pids = await defer.gatherResults([runner.submit(note, "v%02d" % i) for i in range(40)])
        assert set(pids) != {os.getpid()} and len(set(pids)) == 1
        # answered only after the commit: every row is there for another connection
        assert scratch(store) == ["v%02d" % i for i in range(40)]
        assert runner.units == 40 and 1 <= runner.batches <= 40
        assert runner.depth() == (0, 0)


@pytest_twisted.ensureDeferred
async def test_a_deep_queue_is_split_so_the_node_overlaps_with_the_writer(store, reactor):
    """100 units at once: the first group takes half of them, not all, so the node
    handles its answers while the writer runs the next group; the group sizes
    reach the node's metrics."""
    sizes = []
    async with writer(store, reactor) as runner:
        runner.metrics = SimpleNamespace(unit_batch=sizes.append, units_failed=lambda *a: None)
        await runner.ready()
        sizes.clear()
        await defer.gatherResults([runner.submit(note, "u%03d" % i) for i in range(100)])
        assert sum(sizes) == 100 and sizes[0] == 50 and max(sizes) == 50, sizes
        assert len(scratch(store)) == 100


@pytest_twisted.ensureDeferred
async def test_a_failing_unit_fails_alone_with_the_writers_traceback(store, reactor):
    async with writer(store, reactor) as runner:
        ok1, bad, ok2 = runner.submit(note, "a"), runner.submit(fail, "b"), runner.submit(note, "c")
        await ok1
        await ok2
        with pytest.raises(ValueError, match="unit b refused") as e:
            await bad
        assert any("in the writer process" in n and "fail" in n
                   for n in getattr(e.value, "__notes__", []))
        assert scratch(store) == ["a", "c"]          # b's insert was rolled back alone


@pytest_twisted.ensureDeferred
async def test_a_unit_that_cannot_travel_fails_at_once_and_the_others_run(store, reactor):
    async with writer(store, reactor) as runner:
        good = runner.submit(note, "kept")
        local = runner.submit(lambda tx: None)
        with pytest.raises(TypeError, match="cannot be sent to the writer process"):
            await local
        await good
        assert scratch(store) == ["kept"]


@pytest_twisted.ensureDeferred
async def test_a_unit_the_writer_cannot_load_fails_by_its_id(store, reactor):
    """A function of a module only the node has: the writer fails the units of that
    frame and keeps serving."""
    mod = types.ModuleType("ivoms_only_in_this_process")
    exec("def unit(tx):\n    return 1\n", mod.__dict__)
    sys.modules[mod.__name__] = mod
    try:
        async with writer(store, reactor) as runner:
            with pytest.raises(RuntimeError, match="cannot be loaded in the writer process"):
                await runner.submit(mod.unit)
            await task_sleep(reactor, 0)            # a later frame
            assert await runner.submit(note, "after") != os.getpid()
            assert runner.spawned == 1
    finally:
        del sys.modules[mod.__name__]


@pytest_twisted.ensureDeferred
async def test_a_killed_writer_fails_what_it_held_with_152_and_is_replaced(store, reactor):
    async with writer(store, reactor, respawn_delay=0.1) as runner:
        first = await runner.submit(note, "before")
        held = runner.submit(slow, 30)
        await task_sleep(reactor, 0.5)           # the writer is inside the slow unit
        os.kill(first, signal.SIGKILL)
        with pytest.raises(StoreUnavailable, match="writer process exited"):
            await held
        assert runner.db_unavailable == 1
        second = await runner.submit(note, "after")
        assert second != first and runner.spawned == 2
        assert scratch(store) == ["after", "before"]


@pytest_twisted.ensureDeferred
async def test_sigterm_and_sigint_to_the_process_group_leave_the_writer_to_the_node(
        store, reactor):
    """A service manager's SIGTERM (or a terminal's Ctrl-C) reaches the writer too;
    it keeps serving, so the node's graceful stop can run what it queued."""
    async with writer(store, reactor) as runner:
        pid = await runner.submit(note, "a")
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
        await task_sleep(reactor, 0.2)
        assert await runner.submit(note, "b") == pid and runner.spawned == 1
    assert scratch(store) == ["a", "b"]


@pytest_twisted.ensureDeferred
async def test_stop_runs_everything_submitted_first(store, reactor):
    runner = ProcessUnitRunner(store, reactor)
    runner.start()
    fore = [runner.submit(note, "f%03d" % i) for i in range(100)]
    back = [runner.submit_background(note, "b%03d" % i) for i in range(5)]
    stopped = runner.stop()
    with pytest.raises(StoreUnavailable, match="stopping"):
        await runner.submit(note, "late")        # refused at once, never lost
    await stopped
    results = await defer.gatherResults(fore + back)
    assert len(results) == 105
    assert len(scratch(store)) == 105
    with pytest.raises(StoreUnavailable):
        await runner.submit(note, "later")


@pytest_twisted.ensureDeferred
async def test_activations_through_the_writer_process_credit_exactly_once(store, reactor):
    _, hrns = make_batch(store, store.cipher, 30)
    runner, svc, _ = build_service(store, store.cipher, reactor=reactor, writer_process=True)
    try:
        reqs = [ActivationRequest(msisdn="3816412%05d" % i, hrn=h, channel="sms")
                for i, h in enumerate(hrns.values())]
        # every voucher twice at once: one success each, one "already used"
        results = await defer.gatherResults([svc.activate(r) for r in reqs + reqs])
        codes = [r.code for r in results]
        assert codes.count(R.SUCCESS) == 30
        assert len(credited_entries(store)) == 30
        assert all(voucher_row(store, s)[0] == "used" for s in hrns)
    finally:
        await runner.stop()


_NODE = r"""
import os, sys
sys.path.insert(0, %(repo)r)
from twisted.internet import reactor
from core.db import Store
from core.unit_process import ProcessUnitRunner
from tests.integration.test_writer_process import note, slow
runner = ProcessUnitRunner(Store(%(url)r), reactor)
def go():
    runner.start()
    runner.submit(slow, 1.0).addCallback(lambda pid: None)
    for i in range(200):
        runner.submit(note, "n%%03d" %% i)
    def sent():
        print("writer", runner._proto.transport.pid, flush=True)
    reactor.callLater(0.3, sent)
reactor.callWhenRunning(go)
reactor.run()
"""


def test_a_node_killed_with_sigkill_leaves_a_writer_that_finishes_and_exits(store, sqlite_url):
    """Everything the writer held commits (each group whole), then it exits by itself."""
    node = subprocess.Popen([sys.executable, "-c", _NODE % {"repo": REPO, "url": sqlite_url}],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = node.stdout.readline().split()
        assert line[0] == "writer", line
        writer = int(line[1])
        node.kill()                               # SIGKILL: the writer is inside the slow unit
        node.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and os.path.exists("/proc/%d" % writer) \
                and "Z" not in _state(writer):
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d" % writer) or "Z" in _state(writer)
    finally:
        if node.poll() is None:
            node.kill()
    assert scratch(store) == ["n%03d" % i for i in range(200)]


def _state(pid: int) -> str:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0]
    except OSError:
        return "Z"
