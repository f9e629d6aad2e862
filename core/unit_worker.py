"""The writer process: runs a node's units of work on its own interpreter.

Started by L{core.unit_process.ProcessUnitRunner} as
C{python -m core.unit_worker}; the first frame it reads says which
database to open (not the command line: a URL may hold a password).  It reads
frames (L{core.unit_frames}) from its stdin, runs their units with a
L{core.units.UnitRunner} (one worker thread, the same group commit, lanes,
conflict retries and savepoints as in a node), and writes back, per group
commit, the results of its units, the runner's counters and what its
metrics were told.  Log events are sent back as text for the node to log.

Messages in: C{("open", url, max_batch, conflict_retries)} first, then
C{("units", uids, pickle of [(uid, background, fn, args, kwargs), ...])}
and C{("stop",)}.  Messages out: C{("done", [(uid, ok, value), ...], counters,
measurements)}, C{("log", level, text)}, C{("stopped",)}.

It ends when told to stop, and when its stdin closes (the node died): it
then finishes the units it already holds and exits.  It ignores SIGINT and
SIGTERM, which a terminal or a service manager sends to the node's whole
process group: the node's own stop decides.  Its stdout is the
frame channel only: anything printed goes to stderr.
"""
from __future__ import annotations

import importlib
import os
import pickle
import queue
import select
import signal
import sys
import threading
import traceback

from sqlalchemy.sql.base import Executable
from twisted.logger import formatEvent, globalLogBeginner
from twisted.python.failure import Failure

from core.db import Store
from core.metrics import RecordedMetrics, set_process_metrics
from core.unit_frames import FrameReader, encode
from core.unit_lanes import Lanes
from core.units import STOP, UnitRunner, deliver


#: the modules of the activation's units, imported before the first unit is
#: read: the first requests after a start do not wait for their imports
WARM = ("core.saga", "core.inbox", "core.db_activate", "core.activation_audit",
        "core.activation", "core.fraud", "billing.ledger", "core.loyalty.service",
        "core.housekeeping.pacing")


def _warm(store) -> None:
    """Import the modules of L{WARM} and compile their statements for C{store}, so
    that the first requests after a start wait for neither."""
    for name in WARM:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, Executable):
                try:
                    store.compiled(value)
                except Exception:         # a statement only some databases take
                    pass


class _Relay:
    """The runner's reactor stand-in: results go back to the node as frames,
    with what was measured meanwhile (the runner's group commits, the units'
    own measurements: L{core.metrics.RecordedMetrics})."""

    def __init__(self, out, metrics):
        self.out = out
        self.metrics = metrics
        self.runner = None

    def callFromThread(self, f, *args, **kwargs) -> None:
        if f is deliver:
            self._send_results(args[0])
        else:
            f(*args, **kwargs)           # log calls: the observer sends them on

    def refuse(self, uids, exc) -> None:
        """Fail the units C{uids}, which could not be loaded here (nothing of them ran)."""
        err = RuntimeError("units cannot be loaded in the writer process: %s: %s"
                           % (type(exc).__name__, exc))
        self._send_results([(uid, False, Failure(err)) for uid in uids])

    def _send_results(self, results) -> None:
        r = self.runner
        counters = (r.batches, r.units, r.db_unavailable, r.conflicts) if r else (0, 0, 0, 0)
        out = []
        for uid, ok, value in results:
            if not ok:
                value = _portable(value)
            out.append((uid, ok, value))
        self.out(("done", out, counters, self.metrics.take()))


def _portable(failure):
    """The exception of C{failure}, as something that survives pickling, with
    the writer's traceback as a note."""
    exc = failure.value
    try:
        exc.add_note("in the writer process:\n" + failure.getTraceback())
    except Exception:
        pass
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError("%s: %s" % (type(exc).__name__, exc))


class _Out:
    """Writes frames to the node, from any thread, one at a time.  Once the node
    is gone (the pipe broke) frames are dropped: the units the writer still
    holds run and commit all the same."""

    def __init__(self, fd: int):
        self.fd = fd
        self.lock = threading.Lock()
        self.gone = False

    def __call__(self, message) -> None:
        data = memoryview(encode(message))
        with self.lock:
            while data and not self.gone:
                try:
                    n = os.write(self.fd, data)
                except OSError:           # EPIPE: nobody reads any more
                    self.gone = True
                    return
                data = data[n:]


def _log_forwarder(out):

    def observe(event):
        try:
            text = formatEvent(event)
            if event.get("log_failure") is not None:
                text += "\n" + event["log_failure"].getTraceback()
            out(("log", event["log_level"].name, text))
        except Exception:
            pass
    return observe


#: a group takes every unit waiting up to this many; above it, half of them
SPLIT_BELOW = 32


class _Inbound:
    """The runner's queue, fed from the node's frames on the runner's own thread.

    The writer has one thread: it reads what the node sent only when its
    queue runs dry (blocking) or between two units of a batch (whatever has
    arrived, without waiting), so reading never competes with the units for
    the interpreter lock.
    """

    def __init__(self, fd: int, relay, lanes):
        self.fd = fd
        self.relay = relay
        self.lanes = lanes
        self.reader = FrameReader()
        self.ended = False          # stdin closed or "stop" read: no more units
        self.limit = self.taken = 0

    def read(self, block: bool) -> None:
        """Queue the units of what has arrived (waiting for some when C{block})."""
        if self.ended or (not block and not select.select([self.fd], [], [], 0)[0]):
            return
        data = os.read(self.fd, 1 << 20)
        if not data:
            self.ended = True           # the node is gone
            return
        for msg in self.reader.feed(data):
            self._take(msg)

    def _take(self, msg) -> None:
        if msg[0] == "stop":
            self.ended = True
            return
        try:
            units = pickle.loads(msg[2])
        except Exception as e:
            self.relay.refuse(msg[1], e)
            return
        q = self.lanes
        for uid, background, fn, args, kwargs in units:
            if background:
                with q.background():
                    q.put((fn, args, kwargs, uid))
            else:
                q.put((fn, args, kwargs, uid))

    # the interface UnitRunner's worker uses
    def get(self):
        """The first unit of a group; the group takes at most half of the units
        waiting now (at least L{SPLIT_BELOW}), so that the node handles the
        answers of one group while the writer runs the next."""
        while not any(self.lanes.depth()):
            if self.ended:
                return STOP
            self.read(block=True)
        self.read(block=False)
        self.limit = max(SPLIT_BELOW, (sum(self.lanes.depth()) + 1) // 2)
        self.taken = 1
        return self.lanes.get()

    def get_nowait(self):
        if self.taken >= self.limit:
            raise queue.Empty
        if not self.lanes.depth()[0]:
            self.read(block=False)      # what arrived since joins this batch
        item = self.lanes.get_nowait()
        self.taken += 1
        return item

    def first(self):
        """The first message (C{("open", ...)}), or None when stdin closed first."""
        while True:
            data = os.read(self.fd, 1 << 20)
            if not data:
                return None
            msgs = self.reader.feed(data)
            if msgs:
                for msg in msgs[1:]:
                    self._take(msg)
                return msgs[0]


def main() -> int:
    # The node decides when the writer ends (a stop frame, or its death closing
    # stdin): a Ctrl-C in a terminal or a service manager's SIGTERM reaches
    # the whole process group, and the node's graceful stop still needs the
    # writer to run what it queued.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the frame channel is a private copy of stdout; fd 1 now goes to stderr
    out = _Out(os.dup(1))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    globalLogBeginner.beginLoggingTo([_log_forwarder(out)], redirectStandardIO=False,
                                     discardBuffer=True)
    metrics = RecordedMetrics()
    set_process_metrics(metrics)
    relay = _Relay(out, metrics)
    inbound = _Inbound(0, relay, Lanes())
    first = inbound.first()
    if first is None or first[0] != "open":
        return 2
    _, url, max_batch, retries = first
    store = Store(url, pool_size=1)
    _warm(store)
    runner = UnitRunner(store, relay, workers=1, max_batch=max_batch,
                        conflict_retries=retries, name="ivoms-writer", lanes=inbound)
    runner.metrics = metrics
    relay.runner = runner
    try:
        runner.work()                   # until told to stop or the node is gone
    except Exception:
        traceback.print_exc()
        return 1
    out(("stopped",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
