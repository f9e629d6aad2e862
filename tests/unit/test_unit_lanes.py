"""Activations before housekeeping on the writer: the runner's two lanes (foreground
first, at most one background unit per batch) and the chunk pacer, with fakes."""
from __future__ import annotations

import queue
import threading
from types import SimpleNamespace

import pytest
from twisted.internet import defer

from core.housekeeping.pacing import ChunkPacer
from core.unit_lanes import Lanes
from core.units import UnitRunner


def batch_of(lanes):
    """What one worker batch takes: get() then get_nowait() until empty."""
    items = [lanes.get()]
    while True:
        try:
            items.append(lanes.get_nowait())
        except queue.Empty:
            return items


def test_foreground_units_come_first_and_a_batch_takes_one_background_unit():
    lanes = Lanes()
    lanes.put("a1")
    with lanes.background():
        lanes.put("h1")
        lanes.put("h2")
    lanes.put("a2")
    lanes.put("a3")
    assert lanes.depth() == (3, 2)
    assert batch_of(lanes) == ["a1", "a2", "a3", "h1"]
    assert batch_of(lanes) == ["h2"]            # alone: nothing else waits
    assert lanes.depth() == (0, 0)


def test_a_background_batch_still_takes_the_foreground_units_that_wait():
    lanes = Lanes()
    with lanes.background():
        lanes.put("h1")
    assert lanes.get() == "h1"
    lanes.put("a1")
    with lanes.background():
        lanes.put("h2")
    assert lanes.get_nowait() == "a1"
    with pytest.raises(queue.Empty):            # one background unit per batch
        lanes.get_nowait()
    assert batch_of(lanes) == ["h2"]


def test_background_units_run_before_the_workers_stop():
    lanes = Lanes()
    with lanes.background():
        lanes.put("h1")
    lanes.promote_background()
    lanes.put("stop")
    assert batch_of(lanes) == ["h1", "stop"]


def test_get_waits_for_a_unit():
    lanes = Lanes()
    got = []
    t = threading.Thread(target=lambda: got.append(lanes.get()))
    t.start()
    with lanes.background():
        lanes.put("h1")
    t.join(5)
    assert got == ["h1"]


class FakeTx:
    """Records what each transaction ran."""

    def __init__(self, log):
        self.log = log
        self.current = None

    def begin(self):
        self.current = []

    begin_read = begin

    def pipeline(self):
        from contextlib import nullcontext
        return nullcontext()

    def commit(self):
        self.log.append(self.current)

    def rollback(self):
        self.current = None

    def close(self):
        pass


class Now:
    """A reactor stand-in whose callFromThread runs at once (results are recorded)."""

    def callFromThread(self, fn, *args):
        fn(*args)


def test_the_runner_commits_activations_with_at_most_one_housekeeping_chunk():
    log = []
    store = SimpleNamespace(tx=lambda: FakeTx(log))
    runner = UnitRunner(store, Now(), workers=1)

    def unit(name):
        def fn(tx):
            tx.current.append(name)
            return name
        return fn
    results = []
    for name in ("h1", "h2"):
        runner.submit_background(unit(name)).addCallback(results.append)
    for name in ("a1", "a2", "a3"):
        runner.submit(unit(name)).addCallback(results.append)
    runner.start()                              # everything is already queued
    done = []
    runner.stop().addCallback(done.append)
    for t in list(threading.enumerate()):
        if t.name.startswith("ivoms-db"):
            t.join(5)
    assert log == [["a1", "a2", "a3", "h1"], ["h2"]]
    assert sorted(results) == ["a1", "a2", "a3", "h1", "h2"] and done


class FakeTimer:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_pacer_shrinks_long_chunks_at_once_and_grows_slowly():
    timer = FakeTimer()
    pacer = ChunkPacer(1000, target=0.004, smallest=20, first=100, timer=timer)
    assert pacer.size == 100

    def chunk(seconds):
        def fn(tx, rows):
            timer.now += seconds
            return rows
        return pacer.took(pacer.timed(fn)(None, pacer.size))
    chunk(0.040)                                # 100 rows took 40 ms: 10x the target
    assert pacer.next_size() == 20              # ideal 10, never below the smallest
    chunk(0.001)                                # 20 rows in 1 ms: ideal 80
    assert pacer.next_size() == 50              # half-way there
    chunk(0.0001)
    assert pacer.next_size() == 1000            # capped at the configured chunk size
    assert pacer.pause(0.05) == pytest.approx(0.05)
    chunk(0.008)
    assert pacer.next_size() == 500
    assert pacer.pause(0.05) == pytest.approx(0.025)


def test_a_small_configured_chunk_is_kept():
    pacer = ChunkPacer(4, timer=FakeTimer())
    assert (pacer.size, pacer.smallest, pacer.next_size()) == (4, 4, 4)


def test_job_writes_go_to_the_background_lane_timed():
    from core.housekeeping.housekeeper import JobContext
    calls = []
    runner = SimpleNamespace(
        submit=lambda fn, *a: calls.append(("fore", fn, a)) or defer.succeed(fn(None, *a)),
        submit_background=lambda fn, *a: calls.append(("back", fn, a)) or defer.succeed(
            fn(None, *a)))
    keeper = SimpleNamespace(settings=SimpleNamespace(chunk_size=1000, job=lambda name: None),
                             reconciler=None, fraud_window_seconds=60, replay_window_seconds=60, log=None,
                             runner=runner)
    ctx = JobContext(keeper, "expire", dry_run=False)
    got = []
    ctx.write(lambda tx, n: n * 2, 21).addCallback(got.append)
    (lane, fn, args), = calls
    assert lane == "back" and got == [42] and ctx.pacer.elapsed > 0
