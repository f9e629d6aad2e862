"""Password checks on a small dedicated thread pool with a bounded queue.

An Argon2id verification costs tens of milliseconds of CPU and tens of MiB
of memory.  Run on the reactor's shared thread pool, a storm of wrong
passwords queues without bound, grows the process by the memory of every
check under way and delays every other blocking call (store reads of the
GUI, file I/O).  L{PasswordPool} runs checks on C{threads} threads of its
own and accepts at most C{threads + queue} checks at a time; beyond that a
check is refused at once with L{PasswordPoolBusy}, costing nothing.
"""
from __future__ import annotations

import threading

from twisted.internet import defer, threads as twisted_threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from core.interfaces import IPasswordChecker

#: Defaults: two threads (the machine's Argon2 capacity is a few per core)
#: and 32 checks waiting.
THREADS = 2
QUEUE = 32


def _daemon_thread(*args, **kwargs) -> threading.Thread:
    t = threading.Thread(*args, **kwargs)
    t.daemon = True      # a check under way never holds the process at exit
    return t


class PasswordPoolBusy(Exception):
    """The password pool already holds as many checks as it accepts; try later."""


def _argon2_verify(stored_hash: str, password: str) -> bool:
    from core.users import verify_password
    return verify_password(stored_hash, password)


@implementer(IPasswordChecker)
class PasswordPool:
    """Verifies passwords against stored hashes on its own bounded thread pool.

    @ivar bound: the most checks accepted at once (running plus queued).
    @ivar pending: checks accepted and not finished.
    @ivar refused: checks refused because the pool was full.
    @ivar checked: checks run to completion.
    """

    log = Logger()

    def __init__(self, reactor, *, threads: int = THREADS, queue: int = QUEUE, verify=None):
        """
        @param reactor: where results are delivered (C{callFromThread}).
        @param verify: C{verify(stored_hash, password) -> bool}, blocking;
            Argon2id by default.
        """
        if threads < 1 or queue < 0:
            raise ValueError("a password pool needs at least one thread and a queue >= 0")
        self.reactor = reactor
        self.bound = threads + queue
        self.pending = 0
        self.refused = 0
        self.checked = 0
        self._verify = verify or _argon2_verify
        self._pool = ThreadPool(threads, threads, name="password-checks")
        self._pool.threadFactory = _daemon_thread
        self._started = False

    def start(self) -> None:
        """Start the threads (idempotent; L{verify} starts them on first use)."""
        if not self._started:
            self._started = True
            self._pool.start()
            self.reactor.addSystemEventTrigger("during", "shutdown", self.stop)

    def stop(self) -> None:
        """Stop the threads, after the checks already accepted."""
        if self._started:
            self._started = False
            self._pool.stop()

    def verify(self, stored_hash: str, password: str) -> defer.Deferred:
        """Check C{password} against C{stored_hash} off the reactor.

        @return: a Deferred firing with True or False, or failing at once
            with L{PasswordPoolBusy} when C{bound} checks are pending.
        """
        if self.pending >= self.bound:
            self.refused += 1
            return defer.fail(PasswordPoolBusy())
        self.start()
        self.pending += 1
        d = twisted_threads.deferToThreadPool(self.reactor, self._pool, self._verify,
                                              stored_hash, password)
        d.addBoth(self._done)
        return d

    def _done(self, result):
        self.pending -= 1
        self.checked += 1
        return result
