"""State that consecutive requests share, held in one node's memory (docs/cluster.md).

GUI sessions (L{ISessionStore}), WS-Security nonces (L{INonceCache}), throttle
counters (L{ICounterStore}) and USSD dialogues (L{IDialogueStore}) have two
implementations: the ones here keep them in the node's memory (one node, the
SQLite default); L{core.shared_db} keeps them in the database, so that several
nodes behind a load balancer share them.  C{[cluster] shared_state} chooses.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field

from twisted.internet import defer
from zope.interface import implementer

from core.interfaces import ICounterStore, IDialogueStore, INonceCache, ISessionStore


class NonceCacheFull(Exception):
    """No more nonces can be remembered now (they expire with time)."""


class DialogueHeld(Exception):
    """Another request (on this node or another) is working on the dialogue."""


@dataclass
class SessionRecord:
    """One GUI session: logged in when C{user_id} is set; C{flashes}: (kind, text) pairs."""

    id: str
    csrf: str
    created: float
    last_seen: float
    user_id: int | None = None
    name: str | None = None
    role: str | None = None
    flashes: list = field(default_factory=list)


def window_start(now: float, window: float) -> int:
    """The start (epoch seconds) of the fixed window of C{window} seconds holding C{now}."""
    return int(now // window * window)


@implementer(ISessionStore)
class MemorySessions:
    """Sessions in this node's memory, expiring after a lifetime or an idle time."""

    MAX_SESSIONS = 10000

    def __init__(self, clock, *, lifetime: float, idle: float):
        self.clock = clock
        self.lifetime = lifetime
        self.idle = idle
        self.sessions: dict[str, SessionRecord] = {}

    def live(self, s, now) -> bool:
        """True while C{s} is within its lifetime and idle time at C{now}."""
        return now - s.created <= self.lifetime and now - s.last_seen <= self.idle

    def get(self, sid):
        s = self.sessions.get(sid) if sid else None
        now = self.clock.seconds()
        if s is not None and not self.live(s, now):
            del self.sessions[sid]
            s = None
        if s is not None:
            s.last_seen = now
        return defer.succeed(s)

    def put(self, session):
        if session.id not in self.sessions and len(self.sessions) >= self.MAX_SESSIONS:
            now = self.clock.seconds()
            for sid in [k for k, s in self.sessions.items() if not self.live(s, now)]:
                del self.sessions[sid]
        self.sessions[session.id] = session
        return defer.succeed(None)

    def update(self, session):
        if session.id in self.sessions:
            self.sessions[session.id] = session
        return defer.succeed(None)

    def drop(self, sid):
        self.sessions.pop(sid, None)
        return defer.succeed(None)

    def drop_user(self, user_id):
        for sid in [k for k, v in self.sessions.items() if v.user_id == user_id]:
            del self.sessions[sid]
        return defer.succeed(None)


@implementer(INonceCache)
class MemoryNonces:
    """Nonces in this node's memory, oldest first, at most C{capacity} of them."""

    def __init__(self, clock, capacity: int = 200_000):
        self.clock = clock
        self.capacity = capacity
        self._nonces: collections.OrderedDict = collections.OrderedDict()

    def __len__(self) -> int:
        """How many nonces are held (expired ones go at the next L{remember})."""
        return len(self._nonces)

    def remember(self, key, expires_at):
        now = self.clock.seconds()
        cache = self._nonces
        while cache:
            oldest, expires = next(iter(cache.items()))
            if expires > now:
                break
            cache.popitem(last=False)
        if key in cache:
            return defer.succeed(False)
        if len(cache) >= self.capacity:
            return defer.fail(NonceCacheFull())
        cache[key] = expires_at
        return defer.succeed(True)


@implementer(ICounterStore)
class MemoryCounters:
    """Counters in this node's memory; windows older than the newest are dropped."""

    def __init__(self):
        self._counts: dict = {}

    def add(self, key, window_start, n=1):
        k = (key, window_start)
        self._counts[k] = self._counts.get(k, 0) + n
        return defer.succeed(self._counts[k])

    def get(self, key, window_start):
        return defer.succeed(self._counts.get((key, window_start), 0))


@implementer(IDialogueStore)
class MemoryDialogues:
    """Dialogue states in this node's memory (what L{core.shared_db.DbDialogues} stores)."""

    def __init__(self):
        self._rows: dict = {}     # id -> [state, version, held_until, expires_at]

    def claim(self, dialogue_id, now, hold_until):
        row = self._rows.get(dialogue_id)
        if row is None or row[3] <= now:
            self._rows.pop(dialogue_id, None)
            return defer.succeed(None)
        if row[2] > now:
            return defer.fail(DialogueHeld(dialogue_id))
        row[1] += 1
        row[2] = hold_until
        return defer.succeed((dict(row[0]), row[1]))

    def release(self, dialogue_id, state, version, expires_at):
        row = self._rows.get(dialogue_id)
        if version is not None and (row is None or row[1] != version):
            return defer.succeed(False)
        if state is None:
            self._rows.pop(dialogue_id, None)
        else:
            self._rows[dialogue_id] = [dict(state), (row[1] if row else 0) + 1, 0, expires_at]
        return defer.succeed(True)
