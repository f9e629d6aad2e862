"""Injected faults of the billing simulator, drawn per new credit request.

Rates are probabilities in 0..1, checked in this order: drop (credit
applied, no answer ever sent), malformed (applied, the answer is garbage),
busy (not applied, a transient error: Diameter 3004 / CAI 1004), reject
(refused and recorded: Diameter 5003 / CAI 1003).  Every answer waits
C{latency} seconds, and with C{slow_rate} probability C{slow_seconds} more.
Duplicates (a re-sent request) get only the latency.
"""
from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass
class FaultPlan:
    latency: float = 0.0
    reject_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    malformed_rate: float = 0.0
    busy_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self):
        for name in ("reject_rate", "drop_rate", "slow_rate",
                     "malformed_rate", "busy_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within 0..1")
        if self.latency < 0 or self.slow_seconds < 0:
            raise ValueError("latency and slow_seconds must be >= 0")
        self.rng = random.Random(self.seed)

    def action(self) -> str:
        """'drop', 'malformed', 'busy', 'reject' or 'ok' for a new request."""
        for name in ("drop", "malformed", "busy", "reject"):
            rate = getattr(self, name + "_rate")
            if rate and self.rng.random() < rate:
                return name
        return "ok"

    def delay(self, duplicate: bool = False) -> float:
        """Seconds to wait before answering."""
        extra = 0.0
        if not duplicate and self.slow_rate and self.rng.random() < self.slow_rate:
            extra = self.slow_seconds
        return self.latency + extra
