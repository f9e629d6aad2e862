"""Typed settings of the CAI connector (validated on construction)."""
from __future__ import annotations

import dataclasses

from billing.cai.answers import CaiLookupAnswer
from billing.cai.codec import CaiTemplates


@dataclasses.dataclass(frozen=True)
class CaiCodes:
    """Which response codes mean what (the default dialect's numbers).

    Any code in none of these sets means "outcome unknown" (151, reconciled).
    C{not_found_is_final}: the IN guarantees that a lookup answering
    C{not_found} closes the reference (a late credit with it is refused), so
    the voucher may be released; set false if it does not (left pending).
    """

    success: tuple[int, ...] = (0,)
    unknown_subscriber: tuple[int, ...] = (1002,)
    refused: tuple[int, ...] = (1003,)
    not_logged_in: tuple[int, ...] = (1008,)
    not_found: tuple[int, ...] = (1010,)
    not_found_is_final: bool = True


@dataclasses.dataclass(frozen=True)
class CaiSettings:
    """Connection pool, login and timers (seconds)."""

    host: str = "127.0.0.1"
    port: int = 3869
    user: str = "ivoms"
    password: str = "ivoms"
    pool_size: int = 4
    command_timeout: float = 5.0
    login_timeout: float = 5.0
    queue_limit: int = 1000
    reconnect_initial: float = 1.0
    reconnect_max: float = 30.0
    templates: CaiTemplates = dataclasses.field(default_factory=CaiTemplates)
    codes: CaiCodes = dataclasses.field(default_factory=CaiCodes)
    lookup_answer: CaiLookupAnswer = dataclasses.field(default_factory=CaiLookupAnswer)

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise ValueError("CAI port %r is not a TCP port" % self.port)
        if self.pool_size < 1:
            raise ValueError("CAI pool_size must be >= 1")
        if self.command_timeout <= 0 or self.login_timeout <= 0:
            raise ValueError("CAI timeouts must be > 0")
        self.templates.render("login", user=self.user, password=self.password)
