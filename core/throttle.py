"""Authentication failures counted per account and per address, in memory, bounded.

Each key (an account name, an address) has a fixed window of C{window}
seconds; past C{per_account} (or C{per_address}) failures within it, the key
is throttled until its window ends, and attempts are refused before any
password is checked.  The table holds at most C{max_keys} keys: when full,
expired windows are dropped first, then the oldest, so a flood of addresses
cannot grow it.  The counts are the node's own (like the SOAP nonce cache):
behind a load balancer each node throttles on its own share.
"""
from __future__ import annotations

import collections

from zope.interface import implementer

from core.interfaces import IAuthThrottle


@implementer(IAuthThrottle)
class FailureThrottle:
    """Per-account and per-address failure counts in fixed windows (clock injected)."""

    def __init__(self, clock, *, per_account: int = 10, per_address: int = 30,
                 window: float = 60.0, max_keys: int = 10_000):
        """
        @param clock: an C{IReactorTime}.
        @param per_account: failures of one account per window before it is throttled.
        @param per_address: failures from one address per window before it is throttled.
        @param window: seconds.
        """
        self.clock = clock
        self.limits = {"account": per_account, "address": per_address}
        self.window = window
        self.max_keys = max_keys
        self._counts: collections.OrderedDict = collections.OrderedDict()

    def _live(self, key, now):
        entry = self._counts.get(key)
        if entry is None or entry[0] + self.window <= now:
            return None
        return entry

    def _over(self, kind, name, now) -> bool:
        entry = self._live((kind, name), now)
        return entry is not None and entry[1] >= self.limits[kind]

    def allowed(self, account, address) -> bool:
        """True unless C{account} or C{address} is throttled in its current window."""
        now = self.clock.seconds()
        return not ((account and self._over("account", account, now))
                    or (address and self._over("address", address, now)))

    def failed(self, account, address) -> bool:
        """Count one failure; True when it made the account or the address throttled."""
        now = self.clock.seconds()
        crossed = False
        for kind, name in (("account", account), ("address", address)):
            if not name:
                continue
            key = (kind, name)
            entry = self._live(key, now)
            if entry is None:
                self._make_room(now)
                entry = self._counts[key] = [now, 0]
            entry[1] += 1
            crossed = crossed or entry[1] == self.limits[kind]
        return crossed

    def succeeded(self, account, address) -> None:
        """Forget C{account}'s failures."""
        if account:
            self._counts.pop(("account", account), None)

    def throttled(self) -> list[tuple[str, str, int]]:
        """(kind, name, failures) of every key throttled now (for views and logs)."""
        now = self.clock.seconds()
        return [(k[0], k[1], e[1]) for k, e in self._counts.items()
                if e[0] + self.window > now and e[1] >= self.limits[k[0]]]

    def _make_room(self, now) -> None:
        if len(self._counts) < self.max_keys:
            return
        for key in [k for k, e in self._counts.items() if e[0] + self.window <= now]:
            del self._counts[key]
        while len(self._counts) >= self.max_keys:
            self._counts.popitem(last=False)
