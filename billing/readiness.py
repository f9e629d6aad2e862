"""Waiting for a connector's links: shared by the connectors that provide L{core.interfaces.IBillingReadiness}."""
from __future__ import annotations

from typing import Callable

from twisted.internet import defer

POLL_SECONDS = 0.01


def poll_until(clock, ready: Callable[[], bool], timeout: float) -> defer.Deferred:
    """Fire True as soon as C{ready()} is true, or False after C{timeout} seconds.

    @param clock: the IReactorTime to poll on.
    @param ready: asked every L{POLL_SECONDS}; must not raise.
    @param timeout: seconds to wait at most.
    @return: a Deferred that never fails.
    """
    d = defer.Deferred()
    deadline = clock.seconds() + timeout

    def poll():
        if ready():
            d.callback(True)
        elif clock.seconds() >= deadline:
            d.callback(False)
        else:
            clock.callLater(POLL_SECONDS, poll)
    poll()
    return d
