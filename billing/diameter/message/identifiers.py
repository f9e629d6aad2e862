"""Hop-by-Hop and End-to-End identifier sources (RFC 6733 §3).

End-to-End: the high 12 bits are the low 12 bits of the start time in
seconds, the low 20 bits start random and increase, so identifiers stay
unique across a restart for the 4 minutes §3 asks.  Hop-by-Hop: one
sequence per connection, starting at a random value.
"""
from __future__ import annotations

import random


class EndToEndIds:
    """Issues End-to-End identifiers for one node (one Origin-Host)."""

    def __init__(self, now_seconds: float, rng: random.Random | None = None):
        rng = rng or random.SystemRandom()
        self._high = (int(now_seconds) & 0xFFF) << 20
        self._low = rng.randrange(1 << 20)

    def next(self) -> int:
        """The next identifier (wraps within the low 20 bits)."""
        self._low = (self._low + 1) & 0xFFFFF
        return self._high | self._low


class HopByHopIds:
    """Issues Hop-by-Hop identifiers for one connection."""

    def __init__(self, rng: random.Random | None = None):
        self._value = (rng or random.SystemRandom()).randrange(1 << 32)

    def next(self) -> int:
        self._value = (self._value + 1) & 0xFFFFFFFF
        return self._value
