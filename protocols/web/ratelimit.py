"""Per-key rate limits (token buckets) on an injected clock, bounded in memory.

A bucket holds up to C{limit} tokens and refills at C{limit / window}
tokens per second; each attempt takes one.  The least recently used keys
are forgotten beyond C{max_keys}, so a flood of distinct keys costs bounded
memory (a forgotten key starts again with a full bucket).
"""

from __future__ import annotations

import collections
import math


class RateLimiter:
    """C{allow(key)} answers whether one more attempt for C{key} is allowed now."""

    def __init__(self, limit: int, window_seconds: float, *, clock, max_keys: int = 100_000):
        """
        @param clock: an C{IReactorTime} (C{seconds()}).
        """
        self.limit = float(limit)
        self.rate = limit / float(window_seconds)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: collections.OrderedDict = collections.OrderedDict()

    def allow(self, key) -> tuple[bool, int]:
        """Take one token for C{key}.

        @return: C{(True, 0)} when allowed, else C{(False, seconds until the
            next attempt will be allowed)}.
        """
        now = self.clock.seconds()
        buckets = self._buckets
        tokens, last = buckets.pop(key, (self.limit, now))
        tokens = min(self.limit, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            ok, wait = True, 0
        else:
            buckets[key] = (tokens, now)
            ok, wait = False, max(1, math.ceil((1.0 - tokens) / self.rate))
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)
        return ok, wait

    def __len__(self) -> int:
        return len(self._buckets)
