"""Chunk sizes that keep a housekeeping job's hold on the writer short (DESIGN §8).

A job's chunk shares the node's single SQLite writer with activations: an
activation queued behind a chunk waits for all of it. A L{ChunkPacer}
times each chunk's units of work where they run and sizes the next chunk so
that one holds the writer for about C{target} seconds, never more rows than
the configured C{housekeeping.chunk_size}.
"""
from __future__ import annotations

import time

#: Writer time one chunk aims at, in seconds.
CHUNK_TARGET = 0.004
#: Fewest rows a chunk is cut down to.
SMALLEST_CHUNK = 50
#: Rows of a job's first chunk (before any has been timed).
FIRST_CHUNK = 100


class ChunkPacer:
    """Adapts a job's chunk size to the time its chunks take.

    @ivar size: the rows of the next chunk.
    """

    def __init__(self, largest: int, *, target: float = CHUNK_TARGET,
                 smallest: int = SMALLEST_CHUNK, first: int = FIRST_CHUNK,
                 timer=time.perf_counter):
        """
        @param largest: most rows of a chunk (the configured chunk size).
        @param target: writer time one chunk should take, in seconds.
        @param timer: the clock that times units (perf_counter; a fake in tests).
        """
        self.largest = max(1, largest)
        self.smallest = min(smallest, self.largest)
        self.target = target
        self.size = min(first, self.largest)
        self.elapsed = 0.0
        self._timer = timer

    def timed(self, fn):
        """C{fn(tx, *args)} as a unit of work that also answers how long it ran
        where it ran (the writer's thread or process): C{(value, seconds)}.
        Pass what it answers through L{took}."""
        return Timed(self._timer, fn)

    def took(self, answer):
        """Count the run time of a L{timed} unit towards the current chunk;
        return what its function returned."""
        value, seconds = answer
        self.elapsed += seconds
        return value

    def next_size(self) -> int:
        """Between two chunks: size the next one from the time the last took.

        Shrinks at once to what fits the target; grows by half the distance, so
        that one quick chunk does not bring back a long one.
        @return: the new L{size}.
        """
        if self.elapsed > 0:
            ideal = self.size * self.target / self.elapsed
            size = ideal if ideal < self.size else (self.size + ideal) / 2
            self.size = int(max(self.smallest, min(self.largest, round(size))))
        self.elapsed = 0.0
        return self.size

    def pause(self, configured: float) -> float:
        """The pause after a chunk of L{size} rows: C{configured} seconds per chunk of
        the largest size, so that a job keeps the configured share of the writer."""
        return configured * self.size / self.largest



class Timed:
    """The unit C{fn(tx, *args, **kwargs)} answering C{(its value, the seconds it
    took by C{timer})}; made of picklable parts, as units travel to a writer
    process."""

    __slots__ = ("timer", "fn")

    def __init__(self, timer, fn):
        self.timer = timer
        self.fn = fn

    def __getstate__(self):
        return self.timer, self.fn

    def __setstate__(self, state):
        self.timer, self.fn = state

    def __call__(self, tx, *args, **kwargs) -> tuple:
        t0 = self.timer()
        value = self.fn(tx, *args, **kwargs)
        return value, self.timer() - t0
