"""The unit runner's queue: activations first, background units at a bounded share.

A L{Lanes} holds two lanes of units for the runner's worker threads.
The foreground lane (every C{UnitRunner.submit}) is served first, in order.
A background unit (C{UnitRunner.submit_background}: housekeeping chunks)
is taken only when the foreground lane is empty: alone when nothing else
waits, or as the last unit of a batch of foreground units, at most one per
batch. A long job therefore never makes an activation wait for more than one
(small) chunk, and it still makes progress however busy the node is.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from contextlib import contextmanager


class Lanes:
    """A two-lane queue with the interface the runner's workers use
    (C{put}, C{get}, C{get_nowait} raising C{queue.Empty})."""

    def __init__(self):
        self._ready = threading.Condition(threading.Lock())
        self._foreground: deque = deque()
        self._background: deque = deque()
        self._to_background = False
        self._share = threading.local()

    def put(self, item) -> None:
        """Queue C{item} in the foreground lane (in the background lane inside
        L{background}); wake a worker."""
        with self._ready:
            (self._background if self._to_background else self._foreground).append(item)
            self._ready.notify()

    @contextmanager
    def background(self):
        """Within this block, C{put} queues in the background lane (call it on the
        one thread that submits units: the reactor's)."""
        self._to_background = True
        try:
            yield
        finally:
            self._to_background = False

    def get(self):
        """Block until a unit waits; start a new batch with it (a foreground unit
        if any waits, else a background one)."""
        with self._ready:
            while not self._foreground and not self._background:
                self._ready.wait()
            if self._foreground:
                self._share.open = True      # this batch may still take one background unit
                return self._foreground.popleft()
            self._share.open = False
            return self._background.popleft()

    def get_nowait(self):
        """The next unit of the batch begun by L{get}: foreground ones first, then at
        most one background unit per batch.

        @raise queue.Empty: nothing more for this batch.
        """
        with self._ready:
            if self._foreground:
                return self._foreground.popleft()
            if self._background and getattr(self._share, "open", False):
                self._share.open = False
                return self._background.popleft()
        raise queue.Empty

    def promote_background(self) -> None:
        """Move every waiting background unit to the foreground lane (the runner
        stops: they must run before the workers leave)."""
        with self._ready:
            self._foreground.extend(self._background)
            self._background.clear()
            self._ready.notify_all()

    def depth(self) -> tuple[int, int]:
        """(foreground, background) units waiting."""
        return len(self._foreground), len(self._background)
