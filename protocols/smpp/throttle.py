"""A token bucket on an injected clock: the throughput limit of an account or an SMSC."""

from __future__ import annotations


class Throttle:
    """Allows C{rate} events per second on average, bursts up to C{burst}.

    @ivar rate: events per second; 0 or less means unlimited.
    """

    def __init__(self, rate: float, clock, burst: float | None = None) -> None:
        """
        @param clock: an C{IReactorTime} (only C{seconds()} is used).
        @param burst: bucket size; default one second's worth (at least 1).
        """
        self.rate = float(rate)
        self.clock = clock
        self.burst = float(burst if burst is not None else max(1.0, self.rate))
        self._tokens = self.burst
        self._at = clock.seconds()

    def _refill(self) -> None:
        now = self.clock.seconds()
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def allow(self) -> bool:
        """Take one token; C{False} (nothing taken) when the bucket is empty."""
        if self.rate <= 0:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def delay(self) -> float:
        """Seconds until one token is available (0 when one is now)."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate
