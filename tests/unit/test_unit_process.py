"""ProcessUnitRunner's bookkeeping with a fake reactor: restarts, backoff, units in flight."""
from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
from twisted.internet import task
from twisted.python.failure import Failure

from core.db import StoreUnavailable
from core.unit_frames import FrameReader, encode
from core.unit_process import ProcessUnitRunner


def unit(tx, n):
    return n


class Reactor(task.Clock):
    """A clock whose spawnProcess records each writer (its protocol and what it was sent)."""

    def __init__(self):
        super().__init__()
        self.writers = []

    def spawnProcess(self, proto, executable, args, env=None, childFDs=None):
        sent = []
        proto.transport = SimpleNamespace(write=sent.append, pid=1000 + len(self.writers),
                                          signalProcess=lambda sig: None)
        self.writers.append((proto, sent))
        return proto.transport


def frames(sent) -> list:
    msgs = FrameReader().feed(b"".join(sent))
    return [m if m[0] != "units" else ("units", [u[0] for u in pickle.loads(m[2])])
            for m in msgs]


def died(runner, reactor, index=-1):
    proto, _ = reactor.writers[index]
    runner._ended(proto, Failure(OSError("killed")))


def test_the_writer_is_told_its_database_then_units_in_one_frame_per_turn():
    reactor = Reactor()
    runner = ProcessUnitRunner(SimpleNamespace(url="sqlite:///x.db"), reactor)
    runner.start()
    a, b = runner.submit(unit, 1), runner.submit(unit, 2)
    reactor.advance(0)
    (proto, sent), = reactor.writers
    assert frames(sent) == [("open", "sqlite:///x.db", 512, 3), ("units", [1, 2])]
    assert runner.depth() == (2, 0)
    proto.childDataReceived(1, encode(
        ("done", [(1, True, "one"), (2, False, ValueError("no"))], (1, 2, 0, 0),
         [("unit_batch", (2,))])))
    assert a.result == "one" and runner.units == 2 and runner.batches == 1
    with pytest.raises(ValueError):
        b.result.raiseException()
    b.addErrback(lambda f: None)
    assert runner.depth() == (0, 0)


def test_units_held_by_a_dead_writer_fail_with_152_and_later_ones_go_to_the_next():
    reactor = Reactor()
    runner = ProcessUnitRunner(SimpleNamespace(url="sqlite:///x.db"), reactor)
    runner.start()
    held = runner.submit(unit, 1)
    reactor.advance(0)
    died(runner, reactor)
    assert isinstance(held.result.value, StoreUnavailable) and runner.db_unavailable == 1
    held.addErrback(lambda f: None)
    waiting = runner.submit(unit, 2)                  # no writer now: kept for the next
    reactor.advance(0.5)
    assert len(reactor.writers) == 2 and runner.spawned == 2
    reactor.advance(0)
    assert frames(reactor.writers[1][1])[1] == ("units", [2])
    assert not waiting.called
    reactor.writers[1][0].childDataReceived(1, encode(("done", [(2, True, 2)], (1, 1, 0, 0), [])))
    assert waiting.result == 2
    assert (runner.batches, runner.units, runner.db_unavailable) == (1, 1, 1)   # across writers


def test_writers_that_keep_dying_at_start_are_restarted_less_and_less_often():
    reactor = Reactor()
    runner = ProcessUnitRunner(SimpleNamespace(url="sqlite:///x.db"), reactor, respawn_delay=0.5)
    runner.start()
    delays = []
    for _ in range(8):
        died(runner, reactor)
        before, t0 = len(reactor.writers), reactor.seconds()
        while len(reactor.writers) == before:
            reactor.advance(0.25)
        delays.append(reactor.seconds() - t0)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    reactor.advance(11)                               # this one lived: back to the first delay
    died(runner, reactor)
    assert runner._respawn_call.getTime() - reactor.seconds() == 0.5


def test_after_stop_units_are_refused_at_once_and_no_writer_is_restarted():
    reactor = Reactor()
    runner = ProcessUnitRunner(SimpleNamespace(url="sqlite:///x.db"), reactor)
    runner.start()
    queued = runner.submit(unit, 1)
    stopped = runner.stop()
    assert frames(reactor.writers[0][1])[-2:] == [("units", [1]), ("stop",)]
    late = runner.submit(unit, 2)
    assert isinstance(late.result.value, StoreUnavailable)
    late.addErrback(lambda f: None)
    died(runner, reactor)                             # it exited
    assert stopped.called and isinstance(queued.result.value, StoreUnavailable)
    queued.addErrback(lambda f: None)
    reactor.advance(60)
    assert len(reactor.writers) == 1


def test_stop_while_a_dead_writer_awaits_its_replacement_refuses_what_waited():
    reactor = Reactor()
    runner = ProcessUnitRunner(SimpleNamespace(url="sqlite:///x.db"), reactor)
    runner.start()
    died(runner, reactor)
    waiting = runner.submit(unit, 1)
    stopped = runner.stop()
    assert stopped.called and isinstance(waiting.result.value, StoreUnavailable)
    waiting.addErrback(lambda f: None)
    reactor.advance(60)
    assert len(reactor.writers) == 1 and runner.depth() == (0, 0)
