"""Units of work off the reactor, with group commit (DESIGN §1, issue: throughput).

A L{UnitRunner} owns worker threads, each with its own connection.  A
worker takes every unit waiting in the queue (up to C{max_batch}), runs them
in one transaction and commits once; a unit that raises is rolled back alone
(the batch is re-run with a SAVEPOINT per unit), the others commit together.
A unit that failed on a conflict with a concurrent transaction (on
PostgreSQL: a deadlock between two groups that lock the same rows in opposite
orders, e.g. two ledger accounts each credited in both) runs again in a new
transaction once its group committed and released its locks.
Consecutive units of a function that offers a set-based C{many} form run
through it (on PostgreSQL a group of activations is one statement).  A unit's Deferred
fires only after that COMMIT returned, so what a caller is told is durable.
SQLite gets one worker (a single writer); PostgreSQL several.
"""
from __future__ import annotations

import queue
import threading

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from core.lock_order import in_lock_order
from core.metrics import NULL_METRICS
from core.db import StoreUnavailable, conflict, unavailable
from core.unit_lanes import Lanes

#: what a worker's queue answers when the worker is to leave (after what was queued)
STOP = object()


class UnitRunner:
    """Run C{fn(tx, *args)} units on worker threads and answer on the reactor."""

    log = Logger()

    def __init__(self, store, reactor, *, workers: int = 1, max_batch: int = 512,
                 read_only: bool = False, name: str = "ivoms-db", conflict_retries: int = 3,
                 lanes=None):
        """
        @param store: the L{core.db.Store}.
        @param reactor: provides C{callFromThread}.
        @param workers: worker threads (1 for a SQLite writer).
        @param max_batch: most units sharing one commit.
        @param read_only: run units in read transactions (no group commit needed,
            but the batching works the same).
        @param conflict_retries: how many more times a unit that failed on a
            conflict with a concurrent transaction (a deadlock) runs, each time
            in a new transaction after its group committed.
        @param lanes: where the workers take units from (C{get}, C{get_nowait}
            raising C{queue.Empty}, C{put}, C{depth}, C{background},
            C{promote_background}); by default a L{Lanes} fed by L{submit}.
            A writer process gives its own, fed from the node's frames.
        """
        self.store = store
        self.reactor = reactor
        self.workers = workers
        self.max_batch = max_batch
        self.read_only = read_only
        self.name = name
        self._queue = lanes if lanes is not None else Lanes()
        self._threads: list[threading.Thread] = []
        self._stopped: list = []
        self.batches = 0
        self.units = 0
        self.metrics = NULL_METRICS     # an IMetrics told of each group commit's size
        #: units failed because the database was unavailable (L{StoreUnavailable})
        self.db_unavailable = 0
        self.conflict_retries = conflict_retries
        #: units run again after a conflict with a concurrent transaction
        self.conflicts = 0
        self._down = False
        self._failed_while_down = 0
        self._count_lock = threading.Lock()
        # SQLite runs one writer at a time: its units cannot deadlock, so need no order
        self._ordered = not getattr(store, "is_sqlite", False)

    def start(self) -> None:
        """Start the worker threads (idempotent)."""
        if self._threads:
            return
        for i in range(self.workers):
            t = threading.Thread(target=self.work, name="%s-%d" % (self.name, i), daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> defer.Deferred:
        """Finish queued units, stop the workers; the Deferred fires when they are gone."""
        threads, self._threads = self._threads, []
        if not threads:
            return defer.succeed(None)
        done = [defer.Deferred() for _ in threads]
        self._stopped = list(done)
        self._queue.promote_background()
        for _ in threads:
            self._queue.put(STOP)
        return defer.gatherResults(done)

    def _worker_exited(self) -> None:
        if self._stopped:
            self._stopped.pop().callback(None)

    def depth(self) -> tuple[int, int]:
        """(foreground, background) units waiting for a worker."""
        return self._queue.depth()

    def submit(self, fn, *args, **kwargs) -> defer.Deferred:
        """Queue the unit C{fn(tx, *args, **kwargs)}.

        @param fn: the unit of work; its first argument is the transaction.
        @param args: further positional arguments of C{fn}.
        @param kwargs: keyword arguments of C{fn}.

        @return: a Deferred firing with what C{fn} returned once its
            transaction committed, or failing with what it raised (then nothing
            of it was committed); with L{core.db.StoreUnavailable} when the
            database was unavailable (counted in C{db_unavailable}).  A unit
            that failed on a conflict with a concurrent transaction (a
            deadlock) has run again first, up to C{conflict_retries} times.
        """
        d = defer.Deferred()
        self._queue.put((fn, args, kwargs, d))
        return d

    def submit_background(self, fn, *args, **kwargs) -> defer.Deferred:
        """Queue C{fn(tx, *args)} like L{submit}, behind every waiting unit of
        L{submit}: it runs when none waits, or as the one background unit that
        ends a batch (L{core.unit_lanes.Lanes})."""
        with self._queue.background():
            return self.submit(fn, *args, **kwargs)

    # -- worker side --------------------------------------------------------
    def work(self) -> None:
        """Run units from the queue on the calling thread until it answers L{STOP}
        (the body of each worker thread; a writer process runs it on its one thread)."""
        q = self._queue
        tx = None
        while True:
            item = q.get()
            if item is STOP:
                break
            batch = [item]
            stop_after = False
            while len(batch) < self.max_batch:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is STOP:
                    stop_after = True
                    break
                batch.append(nxt)
            if self._ordered:
                batch = in_lock_order(batch)     # every writer locks subscribers in one order
            tries = 0
            while batch:
                tx, results = self._run_once(tx, batch)
                batch, results, why = self._conflicted(batch, results, tries)
                if batch:
                    tries += 1
                    with self._count_lock:
                        self.conflicts += len(batch)
                    self.metrics.units_failed("conflict", len(batch))
                    self.reactor.callFromThread(
                        self.log.warn, "{n} unit(s) failed on a conflict with a concurrent "
                        "transaction ({why}); running them again (retry {tries} of {most})",
                        n=len(batch), why=why, tries=tries, most=self.conflict_retries)
                self.reactor.callFromThread(deliver, results)
            if stop_after:
                break
        if tx is not None:
            tx.close()
        self.reactor.callFromThread(self._worker_exited)

    def _run_once(self, tx, batch) -> tuple:
        """Run C{batch} in one transaction on C{tx} (a new one if None), once more
        on a new connection when the one held had died while idle.

        @return: (the transaction to keep using or None, the (deferred, ok,
            value) triples in the order of C{batch})
        """
        for attempt in (1, 2):
            fresh = tx is None
            raised = False
            try:
                if tx is None:
                    tx = self.store.tx()
                results = self._run_batch(tx, batch)
            except Exception:
                f = Failure()
                results = [(d, False, f) for _, _, _, d in batch]
                raised = True
            results, failed, why = _unavailable(results)
            if (failed or raised) and tx is not None:
                maybe_committed = tx.commit_sent
                tx.discard()       # a new connection for the next batch
                tx = None
                if failed and attempt == 1 and not fresh and not maybe_committed:
                    # the connection this worker held died while idle (a
                    # restart): nothing was committed, run it again once
                    # on a new connection
                    continue
            break
        self._count(failed, why, results)
        return tx, results

    def _conflicted(self, batch, results, tries: int) -> tuple[list, list, str | None]:
        """Split off the units of C{batch} that failed on a conflict with a
        concurrent transaction (L{core.db.conflict}: a deadlock, a
        serialization failure) and may run again: nothing of them was kept,
        while the others committed or failed for reasons of their own.  None
        are split off once C{tries} reached C{conflict_retries}: those failures
        are then delivered as they are.

        @param results: the (deferred, ok, value) triples of C{batch}, in order.
        @return: (the units to run again, the results to deliver now, the
            first conflict's reason or None)
        """
        if tries >= self.conflict_retries:
            return [], results, None
        again, now, why = [], [], None
        for item, result in zip(batch, results):
            reason = None if result[1] else conflict(result[2].value)
            if reason is None:
                now.append(result)
            else:
                again.append(item)
                why = why or reason
        return again, now, why

    def _count(self, failed: int, why, out) -> None:
        """Count units failed because the database was unavailable
        (C{db_unavailable}); log when it goes away and when it is back."""
        with self._count_lock:
            if failed:
                self.db_unavailable += failed
                self.metrics.units_failed("unavailable", failed)
                self._failed_while_down += failed
                if not self._down:
                    self._down = True
                    self.reactor.callFromThread(
                        self.log.error, "database unavailable ({why}): units fail with result "
                        "152 until it is back; reconnecting", why=why)
            elif self._down and any(ok for _, ok, _ in out):
                self._down = False
                n, self._failed_while_down = self._failed_while_down, 0
                self.reactor.callFromThread(
                    self.log.info, "database available again; {n} units failed meanwhile", n=n)

    def _run_batch(self, tx, batch) -> list:
        """Run C{batch} in one transaction; return (deferred, ok, value) triples.

        Units run back to back without savepoints (the common case, where
        none raises).  If one raises, the whole transaction is rolled back and
        the batch is run again with every unit in its own SAVEPOINT, so only
        the failing unit is lost.  Units are functions of their arguments and
        the database, so running one again after a rollback is safe.
        """
        begin = tx.begin_read if self.read_only else tx.begin
        begin()
        try:
            with tx.pipeline():
                results = _run_in_order(tx, batch)
        except BaseException:
            if len(batch) == 1:
                f = Failure()
                tx.rollback()
                return [(batch[0][3], False, f)]
            tx.rollback()
            results = None
        if results is None:
            results = []
            begin()
            try:
                for fn, args, kw, d in batch:
                    tx.savepoint("u")
                    try:
                        value = fn(tx, *args, **kw)
                    except BaseException:
                        results.append((d, False, Failure()))
                        tx.rollback_to("u")
                    else:
                        tx.release("u")
                        results.append((d, True, value))
            except BaseException:
                tx.rollback()
                raise
        try:
            tx.commit()
        except BaseException:
            tx.rollback()
            raise
        self.batches += 1
        self.units += len(batch)
        self.metrics.unit_batch(len(batch))
        return results


def _unavailable(results) -> tuple[list, int, str | None]:
    """Turn every failure that means "the database is unavailable" into a
    L{StoreUnavailable}.

    @return: (the results, how many such failures, the first one's reason).
    """
    failed = 0
    why = None
    out = []
    for d, ok, value in results:
        if not ok:
            reason = unavailable(value.value)
            if reason is not None:
                failed += 1
                why = why or reason
                if not isinstance(value.value, StoreUnavailable):
                    value = Failure(StoreUnavailable(reason))
        out.append((d, ok, value))
    return out, failed, why


def _run_in_order(tx, batch) -> list:
    """Run the units of C{batch} in order; return (deferred, True, value) triples.

    Consecutive units of the same function C{fn} that has a C{many} attribute
    run as one call C{fn.many(tx, [(args, kwargs), ...])}, which promises the
    effects and values of calling C{fn} on each in order (it may do so in one
    statement: see L{core.db_activate}).  If it raises, the caller re-runs the
    batch unit by unit.
    """
    out = []
    i, n = 0, len(batch)
    while i < n:
        fn = batch[i][0]
        many = getattr(fn, "many", None)
        j = i + 1
        if many is not None:
            while j < n and batch[j][0] is fn:
                j += 1
        if j - i == 1:
            _, args, kw, d = batch[i]
            out.append((d, True, fn(tx, *args, **kw)))
        else:
            values = many(tx, [(args, kw) for _, args, kw, _ in batch[i:j]])
            out.extend((item[3], True, v) for item, v in zip(batch[i:j], values))
        i = j
    return out


def deliver(results) -> None:
    """Fire each unit's Deferred with its (ok, value); called on the reactor thread
    with a group's results (a writer process relays them instead)."""
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)
