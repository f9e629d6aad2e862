"""A SQLite writer in a process of its own (docs/performance.md, "The writer process").

In one interpreter, the reactor thread and a SQLite writer thread hand the
interpreter lock back and forth several times per request (SQLite releases
it around every statement, the reactor around every socket call), which
costs a channel as much CPU as its own protocol work.  L{ProcessUnitRunner}
has the interface of L{core.units.UnitRunner} (C{submit},
C{submit_background}, C{depth}, C{start}, C{stop}, the counters) but runs
the units in a child process (L{core.unit_worker}) with its own
interpreter: each of two cores gets one job.

The contract of a unit is the same, plus one rule: a unit is a message.
Its function must be importable by name (a module-level function, or a
C{functools.partial} of one) and its arguments must pickle; objects that
units use but that hold a runner or a clock (the embedded ledger, the
loyalty service) reduce to what the units need of them.  A unit that
cannot be sent fails at once with C{TypeError} naming it; nothing of it ran.

What a caller is told is what the writer committed: a Deferred fires after
the writer's COMMIT returned, as with threads.  When the writer process
dies, the units it held fail with L{core.db.StoreUnavailable} (whether
their group had committed is unknown: the same as a database connection
lost during COMMIT), and a new writer is started.  When the node dies, the
writer sees its stdin close, finishes the units it already holds (each
commits or not, as a whole) and exits.
"""
from __future__ import annotations

import os
import pickle
import sys

from twisted.internet import defer, protocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from core.db import StoreUnavailable
from core.metrics import NULL_METRICS, replay
from core.unit_frames import FrameReader, encode


class ProcessUnitRunner:
    """Run C{fn(tx, *args)} units in a writer process and answer on the reactor."""

    log = Logger()

    def __init__(self, store, reactor, *, max_batch: int = 512, name: str = "ivoms-writer",
                 conflict_retries: int = 3, respawn_delay: float = 0.5):
        """
        @param store: the L{core.db.Store} (its URL is what the writer opens).
        @param reactor: provides C{spawnProcess}, C{callLater}.
        @param max_batch: most units sharing one commit.
        @param conflict_retries: as for L{core.units.UnitRunner}.
        @param respawn_delay: seconds before a writer that died is started again
            (doubled, up to 30 s, while writers keep dying within 10 s of their
            start).
        """
        self.store = store
        self.reactor = reactor
        self.workers = 1
        self.max_batch = max_batch
        self.name = name
        self.conflict_retries = conflict_retries
        self.respawn_delay = respawn_delay
        self.metrics = NULL_METRICS
        self.batches = self.units = self.db_unavailable = self.conflicts = 0
        self._base = (0, 0, 0, 0)        # the counters of writers that have exited
        self._last = (0, 0, 0, 0)        # the current writer's counters
        self._pending: dict = {}         # uid -> (Deferred, background), sent or to send
        self._out: list = []             # (uid, background, fn, args, kwargs) not yet sent
        self._next = 0
        self._flush_call = None
        self._proto = None
        self._respawn_call = None
        self._stopping: list | None = None
        #: writers started (1 + how many times one died and was replaced)
        self.spawned = 0
        self._spawned_at = 0.0
        self._delay = respawn_delay / 2    # doubled before the first restart

    # -- life -----------------------------------------------------------------
    def start(self) -> None:
        """Start the writer process (idempotent)."""
        if self._proto is None and self._stopping is None:
            self._spawn()

    def _spawn(self) -> None:
        self._respawn_call = None
        self.spawned += 1
        self._spawned_at = self.reactor.seconds()
        proto = _WriterProtocol(self)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.reactor.spawnProcess(proto, sys.executable,
                                  [sys.executable, "-m", "core.unit_worker"], env=env,
                                  childFDs={0: "w", 1: "r", 2: 2})
        self._proto = proto
        proto.transport.write(encode(("open", self.store.url, self.max_batch,
                                      self.conflict_retries)))
        self._schedule_flush()       # units that waited for this writer

    @property
    def pid(self) -> int | None:
        """The process id of the current writer, or None while there is none."""
        return self._proto.transport.pid if self._proto is not None else None

    def ready(self) -> defer.Deferred:
        """A Deferred firing once the writer has opened the database and run a unit."""
        return self.submit(_nothing)

    def stop(self) -> defer.Deferred:
        """Run what was submitted, stop the writer; the Deferred fires when it exited."""
        if self._respawn_call is not None and self._respawn_call.active():
            self._respawn_call.cancel()
            self._respawn_call = None
        if self._proto is None:
            # no writer (never started, or a dead one not yet replaced): what
            # waited for the next one is refused, never left hanging
            self._stopping = self._stopping or []
            self._out = []
            waiting, self._pending = self._pending, {}
            for d, _ in waiting.values():
                d.errback(Failure(StoreUnavailable("the writer process has stopped")))
            return defer.succeed(None)
        d = defer.Deferred()
        if self._stopping is None:
            self._stopping = []
            self._flush()
            self._proto.transport.write(encode(("stop",)))
        self._stopping.append(d)
        return d

    def depth(self) -> tuple[int, int]:
        """(foreground, background) units submitted and not answered yet."""
        bg = sum(1 for _, b in self._pending.values() if b)
        return len(self._pending) - bg, bg

    # -- units ----------------------------------------------------------------
    def submit(self, fn, *args, **kwargs) -> defer.Deferred:
        """As L{core.units.UnitRunner.submit}; C{fn} and its arguments must pickle."""
        return self._submit(False, fn, args, kwargs)

    def submit_background(self, fn, *args, **kwargs) -> defer.Deferred:
        """As L{core.units.UnitRunner.submit_background}."""
        return self._submit(True, fn, args, kwargs)

    def _submit(self, background: bool, fn, args, kwargs) -> defer.Deferred:
        d = defer.Deferred()
        if self._stopping is not None:
            d.errback(Failure(StoreUnavailable("the writer process is stopping")))
            return d
        uid = self._next = self._next + 1
        self._pending[uid] = (d, background)
        self._out.append((uid, background, fn, args, kwargs))
        self._schedule_flush()
        return d

    def _schedule_flush(self) -> None:
        if self._flush_call is None and self._out and self._proto is not None:
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """Send every unit submitted since the last flush, as one frame."""
        call, self._flush_call = self._flush_call, None
        if call is not None and call.active():
            call.cancel()
        out, self._out = self._out, []
        if not out or self._proto is None:
            self._out = out + self._out
            return
        try:
            frame = _units_frame(out)
        except Exception:
            frame = b"".join(self._sendable(out))
        if frame:
            self._proto.transport.write(frame)

    def _sendable(self, out):
        """The frames of the units of C{out} that pickle; fail the others."""
        for unit in out:
            try:
                yield _units_frame([unit])
            except Exception as e:
                d, _ = self._pending.pop(unit[0])
                d.errback(Failure(TypeError("unit %s cannot be sent to the writer process: %s"
                                            % (getattr(unit[2], "__qualname__", unit[2]), e))))

    # -- answers --------------------------------------------------------------
    def _received(self, msg) -> None:
        kind = msg[0]
        if kind == "done":
            _, results, counters, measured = msg
            self._counted(counters)
            replay(self.metrics, measured)
            pending = self._pending
            for uid, ok, value in results:
                entry = pending.pop(uid, None)
                if entry is None:
                    continue
                if ok:
                    entry[0].callback(value)
                else:
                    entry[0].errback(Failure(value))
        elif kind == "log":
            _, level, text = msg
            self.log.emit(LogLevel.levelWithName(level), "writer: {text}", text=text)

    def _counted(self, counters) -> None:
        self._last = counters
        self.batches, self.units, self.db_unavailable, self.conflicts = (
            b + c for b, c in zip(self._base, counters))

    def _ended(self, proto, reason) -> None:
        """The writer process exited (told to, or not)."""
        if proto is not self._proto:
            return
        self._proto = None
        self._base = tuple(b + c for b, c in zip(self._base, self._last))
        self._last = (0, 0, 0, 0)
        unsent = {u[0] for u in self._out}
        lost = [uid for uid in self._pending if uid not in unsent]
        if lost:
            why = "the writer process exited (%s)" % (reason.getErrorMessage(),)
            self.log.error("{why}: {n} unit(s) fail with result 152, their outcome unknown",
                           why=why, n=len(lost))
            b = self._base
            self._base = (b[0], b[1], b[2] + len(lost), b[3])   # kept across writers
            self._counted((0, 0, 0, 0))
            self.metrics.units_failed("unavailable", len(lost))
            for uid in lost:
                d, _ = self._pending.pop(uid)
                d.errback(Failure(StoreUnavailable(why)))
        if self._stopping is not None:
            waiting, self._stopping = self._stopping, []
            for d in waiting:
                d.callback(None)
            return
        # a writer that dies soon after its start (a database it cannot open, a
        # broken installation) is started again less and less often, up to 30 s
        lived = self.reactor.seconds() - self._spawned_at
        self._delay = self.respawn_delay if lived > 10 else min(30.0, self._delay * 2)
        self.log.info("a new writer process starts in {delay:.1f} s", delay=self._delay)
        self._respawn_call = self.reactor.callLater(self._delay, self._spawn)


def _nothing(tx) -> None:
    """A unit that does nothing (L{ProcessUnitRunner.ready})."""


def _units_frame(out) -> bytes:
    """The frame of the units C{out}: their ids, and the units pickled once more
    inside it, so that a writer that cannot load them (a function it cannot
    import) can still fail each by its id."""
    return encode(("units", [u[0] for u in out], pickle.dumps(out, pickle.HIGHEST_PROTOCOL)))


class _WriterProtocol(protocol.ProcessProtocol):
    """The node's end of the pipe to one writer process."""

    def __init__(self, runner: ProcessUnitRunner):
        self.runner = runner
        self.reader = FrameReader()

    def childDataReceived(self, fd, data) -> None:
        try:
            messages = self.reader.feed(data)
        except Exception:
            self.runner.log.failure("unreadable frame from the writer process; stopping it")
            self.transport.signalProcess("KILL")
            return
        for msg in messages:
            self.runner._received(msg)

    def processEnded(self, reason) -> None:
        self.runner._ended(self, reason)
