"""State that consecutive requests share, held in the database for every node (docs/cluster.md).

The database twins of L{core.shared_state}: each operation is one unit of
work on the node's L{core.units.UnitRunner} and one atomic statement (two
for a dialogue claim that finds nothing), on SQLite and PostgreSQL alike:

- a nonce is remembered by C{INSERT ... ON CONFLICT}: the second node to
  see it inserts nothing and refuses the call;
- a counter is added to by C{INSERT ... ON CONFLICT DO UPDATE ... RETURNING};
- a session is read and touched by one C{UPDATE ... RETURNING};
- a dialogue is claimed by a conditional C{UPDATE} of its version and hold
  time, and released by an C{UPDATE ... WHERE version = <claimed>}.

Expired rows are deleted by L{purge_expired} (the C{lift_bars} housekeeping
job, hourly) and never read as live meanwhile.
"""
from __future__ import annotations

import json

from twisted.internet import defer
from zope.interface import implementer

from core.interfaces import ICounterStore, IDialogueStore, INonceCache, ISessionStore
from core.shared_state import DialogueHeld, SessionRecord

_TOUCH = ("UPDATE shared_session SET last_seen = %s, expires_at = CASE "
          "WHEN created + %s < %s THEN created + %s ELSE %s END "
          "WHERE id = %s AND expires_at >= %s "
          "RETURNING csrf, created, last_seen, user_id, name, role, flashes")
_PUT = ("INSERT INTO shared_session (id, csrf, created, last_seen, expires_at, user_id, name, "
        "role, flashes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)")
_UPDATE = "UPDATE shared_session SET role = %s, flashes = %s WHERE id = %s"
_NONCE = ("INSERT INTO shared_nonce (key, expires_at) VALUES (%s, %s) ON CONFLICT (key) "
          "DO UPDATE SET expires_at = excluded.expires_at WHERE shared_nonce.expires_at <= %s")
_ADD = ("INSERT INTO shared_counter (key, window_start, count) VALUES (%s, %s, %s) "
        "ON CONFLICT (key, window_start) DO UPDATE SET count = shared_counter.count + "
        "excluded.count RETURNING count")
_CLAIM = ("UPDATE ussd_dialogue SET version = version + 1, held_until = %s "
          "WHERE dialogue_id = %s AND expires_at > %s AND held_until <= %s "
          "RETURNING state, version")
_BEGUN = ("INSERT INTO ussd_dialogue (dialogue_id, state, version, held_until, expires_at) "
          "VALUES (%s, %s, 1, 0, %s) ON CONFLICT (dialogue_id) DO UPDATE SET "
          "state = excluded.state, version = ussd_dialogue.version + 1, held_until = 0, "
          "expires_at = excluded.expires_at")
_STEP = ("UPDATE ussd_dialogue SET state = %s, version = version + 1, held_until = 0, "
         "expires_at = %s WHERE dialogue_id = %s AND version = %s")


def run(tx, sql: str, *args):
    """Run C{sql} (written with C{%s} placeholders) with C{args} on either database."""
    return tx.execute_raw(sql.replace("%s", "?") if tx.is_sqlite else sql, args)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


@implementer(ISessionStore)
class DbSessions:
    """GUI sessions in the C{shared_session} table: any node serves any session.

    The messages a page leaves for the next one (a generated password among
    them) are stored sealed with the node's key ring (L{seal}/L{unseal}), never
    in clear.
    """

    def __init__(self, runner, clock, *, lifetime: float, idle: float, seal, unseal,
                 factory=SessionRecord):
        """
        @param seal: C{bytes -> bytes}, authenticated encryption (the voucher
            cipher's key ring, which every node shares).
        @param unseal: the inverse of C{seal}.
        @param factory: the session class built from a row (its fields are
            those of L{SessionRecord}).
        """
        self.runner = runner
        self.clock = clock
        self.lifetime = _ms(lifetime)
        self.idle = _ms(idle)
        self.seal = seal
        self.unseal = unseal
        self.factory = factory

    def get(self, sid):
        if not sid:
            return defer.succeed(None)
        now = _ms(self.clock.seconds())
        d = self.runner.submit(_touch, sid, now, self.lifetime, self.idle)
        return d.addCallback(self._session, sid)

    def _session(self, row, sid):
        if row is None:
            return None
        csrf, created, last_seen, user_id, name, role, flashes = row
        messages = json.loads(self.unseal(bytes(flashes))) if flashes else []
        return self.factory(sid, csrf, created / 1000, last_seen / 1000, user_id, name, role,
                            [tuple(m) for m in messages])

    def _sealed(self, session):
        return self.seal(json.dumps(session.flashes).encode()) if session.flashes else None

    def put(self, session):
        flashes = self._sealed(session)
        expires = min(_ms(session.created) + self.lifetime, _ms(session.last_seen) + self.idle)
        return self.runner.submit(run, _PUT, session.id, session.csrf, _ms(session.created),
                                  _ms(session.last_seen), expires, session.user_id,
                                  session.name, session.role, flashes)

    def update(self, session):
        return self.runner.submit(run, _UPDATE, session.role, self._sealed(session), session.id)

    def drop(self, sid):
        return self.runner.submit(run, "DELETE FROM shared_session WHERE id = %s", sid)

    def drop_user(self, user_id):
        return self.runner.submit(run, "DELETE FROM shared_session WHERE user_id = %s", user_id)


def _touch(tx, sid, now, lifetime, idle):
    rows = run(tx, _TOUCH, now, lifetime, now + idle, lifetime, now + idle, sid, now).rows
    return rows[0] if rows else None


@implementer(INonceCache)
class DbNonces:
    """Nonces in the C{shared_nonce} table: a nonce is accepted once across every node."""

    def __init__(self, runner, clock):
        self.runner = runner
        self.clock = clock

    def remember(self, key, expires_at):
        now = _ms(self.clock.seconds())
        d = self.runner.submit(run, _NONCE, key, _ms(expires_at), now)
        return d.addCallback(lambda r: r.rowcount == 1)


@implementer(ICounterStore)
class DbCounters:
    """Counters in the C{shared_counter} table, added to atomically by every node."""

    def __init__(self, runner):
        self.runner = runner

    def add(self, key, window_start, n=1):
        return self.runner.submit(run, _ADD, key, window_start, n).addCallback(
            lambda r: r.scalar())

    def get(self, key, window_start):
        d = self.runner.submit(run, "SELECT count FROM shared_counter WHERE key = %s AND "
                               "window_start = %s", key, window_start)
        return d.addCallback(lambda r: r.scalar() or 0)


@implementer(IDialogueStore)
class DbDialogues:
    """USSD dialogue states in the C{ussd_dialogue} table, claimed by one request at a time."""

    def __init__(self, runner):
        self.runner = runner

    def claim(self, dialogue_id, now, hold_until):
        return self.runner.submit(_claim, dialogue_id, _ms(now), _ms(hold_until))

    def release(self, dialogue_id, state, version, expires_at):
        return self.runner.submit(_release, dialogue_id, state, version, _ms(expires_at))


def _claim(tx, dialogue_id, now, hold_until):
    rows = run(tx, _CLAIM, hold_until, dialogue_id, now, now).rows
    if rows:
        return json.loads(rows[0][0]), rows[0][1]
    live = run(tx, "SELECT 1 FROM ussd_dialogue WHERE dialogue_id = %s AND expires_at > %s",
               dialogue_id, now).rows
    if live:
        raise DialogueHeld(dialogue_id)
    return None


def _release(tx, dialogue_id, state, version, expires_at) -> bool:
    if state is None:
        if version is None:
            run(tx, "DELETE FROM ussd_dialogue WHERE dialogue_id = %s", dialogue_id)
            return True
        return run(tx, "DELETE FROM ussd_dialogue WHERE dialogue_id = %s AND version = %s",
                   dialogue_id, version).rowcount == 1
    text = json.dumps(state)
    if version is None:
        run(tx, _BEGUN, dialogue_id, text, expires_at)
        return True
    return run(tx, _STEP, text, expires_at, dialogue_id, version).rowcount == 1


def purge_expired(tx, now: int, counters_older_than: int = 86400) -> int:
    """Delete expired sessions, nonces and dialogues, and counters of old windows.

    @param now: epoch ms.
    @param counters_older_than: seconds; counter windows that started before
        C{now} minus this are deleted.
    @return: how many rows were deleted.
    """
    n = run(tx, "DELETE FROM shared_session WHERE expires_at < %s", now).rowcount
    n += run(tx, "DELETE FROM shared_nonce WHERE expires_at <= %s", now).rowcount
    n += run(tx, "DELETE FROM ussd_dialogue WHERE expires_at <= %s", now).rowcount
    n += run(tx, "DELETE FROM shared_counter WHERE window_start < %s",
             now // 1000 - counters_older_than).rowcount
    return n
