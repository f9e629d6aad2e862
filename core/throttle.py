"""Authentication failures counted per account and per address, in memory, bounded.

Each key (an account name, an address) has a fixed window of C{window}
seconds; past C{per_account} (or C{per_address}) failures within it, the key
is throttled until its window ends, and attempts are refused before any
password is checked.  The table holds at most C{max_keys} keys: when full,
expired windows are dropped first, then the oldest, so a flood of addresses
cannot grow it.

Given a shared L{ICounterStore} (C{[cluster] shared_state = "database"}),
windows are aligned (they start at multiples of the window length) and
each failure is also added to the counter every node adds to; the total it
returns becomes the node's count, so failures on several nodes add up.  A
check stays a memory read: a node learns other nodes' failures when it
counts one of its own (an L{IAuthThrottle}), and also asks for the total at
its first attempt of a source in a window (an L{ISourceGate}; the attempt
does not wait for the answer), so across N nodes a key may see up to N - 1
failures more than its limit in a window (docs/cluster.md).
"""
from __future__ import annotations

import collections

from twisted.internet import defer
from zope.interface import implementer

from core.interfaces import IAuthThrottle, ISourceGate
from core.shared_state import window_start


def shared_key(scope: str, kind: str, name: str) -> str:
    """The shared counter's key of C{name} (an account, an address, a source) in C{scope}."""
    return "%s|%s|%s" % (scope, kind, name[:150])


def _learn(total, entry, start, index):
    """Raise C{entry[index]} to the shared C{total} when it still counts the window C{start}."""
    if isinstance(total, int) and entry.start_of() == start:
        entry.raise_to(index, total)
    return total


@implementer(IAuthThrottle)
class FailureThrottle:
    """Per-account and per-address failure counts in fixed windows (clock injected)."""

    def __init__(self, clock, *, per_account: int = 10, per_address: int = 30,
                 window: float = 60.0, max_keys: int = 10_000, shared=None, scope: str = ""):
        """
        @param clock: an C{IReactorTime}.
        @param per_account: failures of one account per window before it is throttled.
        @param per_address: failures from one address per window before it is throttled.
        @param window: seconds.
        @param shared: an L{ICounterStore} the nodes of a cluster share, or None.
        @param scope: what the counts are of (C{"soap-auth"}, C{"admin-login"}, ...),
            part of the shared counters' keys.
        """
        self.clock = clock
        self.shared = shared
        self.scope = scope
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
                start = window_start(now, self.window) if self.shared is not None else now
                entry = self._counts[key] = _Count(start)
            entry[1] += 1
            crossed = crossed or entry[1] == self.limits[kind]
            if self.shared is not None:
                d = self.shared.add(shared_key(self.scope, kind, name), entry[0])
                d.addCallback(_learn, entry, entry[0], 1).addErrback(lambda _: None)
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


class _Count(list):
    """[window start, failures] of one key of a L{FailureThrottle}."""

    def __init__(self, start):
        super().__init__((start, 0))

    def start_of(self):
        return self[0]

    def raise_to(self, index, total):
        self[index] = max(self[index], total)


@implementer(ISourceGate)
class SourceGate:
    """Failed HRN attempts per source per window, attempts under way included.

    An attempt is let through while the source's failures plus its attempts
    under way stay below its limit; then it waits (in arrival order) for an
    attempt under way to end, and is refused once the failures reach the
    limit.  L{admit} and L{done} run on the reactor thread, so the check
    and the count are one step: however many attempts arrive at once, at
    most the limit is evaluated per window.  A source that fails rarely is
    only held to C{limit} attempts under way at once.

    @ivar max_waiting: attempts of one source that may wait; more are refused.
    """

    def __init__(self, clock, limit_of, *, window: float = 60.0, max_keys: int = 10_000,
                 max_waiting: int = 1000, shared=None):
        """
        @param limit_of: C{limit_of(source) -> int}, failures allowed per window.
        @param shared: an L{ICounterStore} the nodes of a cluster share, or None.
        """
        self.clock = clock
        self.shared = shared
        self.limit_of = limit_of
        self.window = window
        self.max_keys = max_keys
        self.max_waiting = max_waiting
        self._entries: collections.OrderedDict = collections.OrderedDict()

    def _entry(self, key, now) -> "_Source":
        e = self._entries.get(key)
        if e is None:
            if len(self._entries) >= self.max_keys:
                for k in [k for k, v in self._entries.items()
                          if v.idle() and v.start + self.window <= now]:
                    del self._entries[k]
                while len(self._entries) >= self.max_keys:
                    self._entries.popitem(last=False)
            e = self._entries[key] = _Source(self._start(now), self.limit_of(key[1]))
        elif e.start + self.window <= now:
            e.start, e.failures = self._start(now), 0    # a new window: failures restart
            e.synced = False
        return e

    def _start(self, now):
        return window_start(now, self.window) if self.shared is not None else now

    def admit(self, channel: str, source: str):
        """Count one attempt of C{source} as under way, unless it is throttled.

        @return: None when admitted; the time (seconds) the window ends when
            refused; or a Deferred firing later with one of those two.
        """
        e = self._entry((channel, source), self.clock.seconds())
        if self.shared is not None and not e.synced:
            # the other nodes' failures of this window, read once; the attempt is not held
            e.synced = True
            got = self.shared.get(shared_key("source", channel, source), e.start)
            got.addCallback(self._learned, e, e.start).addErrback(lambda _: None)
        if e.failures >= e.limit:
            return e.start + self.window
        if e.failures + e.under_way < e.limit:
            e.under_way += 1
            return None
        if len(e.waiting) >= self.max_waiting:
            return e.start + self.window
        d = defer.Deferred()
        e.waiting.append(d)
        return d

    def done(self, channel: str, source: str, failed: bool) -> None:
        """The attempt L{admit} let through was evaluated: a counted failure or not."""
        key = (channel, source)
        if key not in self._entries:
            return
        e = self._entry(key, self.clock.seconds())
        e.under_way = max(0, e.under_way - 1)
        if failed:
            e.failures += 1
            if self.shared is not None:
                d = self.shared.add(shared_key("source", channel, source), e.start)
                d.addCallback(self._learned, e, e.start).addErrback(lambda _: None)
        self._wake(e)

    def _learned(self, total, e, start) -> None:
        if e.start == start and total > e.failures:
            e.failures = total
            self._wake(e)

    def _wake(self, e) -> None:
        while e.waiting and (e.failures >= e.limit or e.failures + e.under_way < e.limit):
            d = e.waiting.popleft()
            if e.failures >= e.limit:
                d.callback(e.start + self.window)
            else:
                e.under_way += 1
                d.callback(None)

    def throttled(self) -> list[tuple[str, str, int, int]]:
        """(channel, source, failures, limit) of every source throttled now."""
        now = self.clock.seconds()
        return [(k[0], k[1], e.failures, e.limit) for k, e in self._entries.items()
                if e.start + self.window > now and e.failures >= e.limit]


class _Source:
    __slots__ = ("start", "limit", "failures", "under_way", "waiting", "synced")

    def __init__(self, start, limit):
        self.synced = False         # the shared count of this window was asked for
        self.start = start
        self.limit = limit
        self.failures = 0
        self.under_way = 0
        self.waiting: collections.deque = collections.deque()

    def idle(self) -> bool:
        return self.under_way == 0 and not self.waiting
