"""State several nodes share (docs/cluster.md): the database stores on SQLite and
PostgreSQL, two "nodes" (two stores on one database) at a time, and the throttles
and USSD dialogues over a shared store."""
from __future__ import annotations

import pytest
from twisted.internet import defer, task
from zope.interface.verify import verifyObject

from core.interfaces import ICounterStore, IDialogueStore, INonceCache, ISessionStore
from core.db import Store
from core.shared_db import DbCounters, DbDialogues, DbNonces, DbSessions, purge_expired, run
from core.shared_state import (DialogueHeld, MemoryCounters, MemoryDialogues, MemoryNonces,
                               MemorySessions, NonceCacheFull, SessionRecord, window_start)
from core.throttle import FailureThrottle, SourceGate
from protocols.ussd.bridge import Bridge
from protocols.ussd.dialogue import DialogueManager
from protocols.ussd.envelope import Envelope, HttpError
from protocols.ussd.replies import Texts
from protocols.ussd.shared import SharedDialogues
from tests.fakes import FakeActivationService
from tests.helpers import make_store

T0 = 1_800_000_000.0


class SyncRunner:
    """A unit runner that runs each unit at once on the calling thread (one node's)."""

    def __init__(self, store):
        self.store = store

    def submit(self, fn, *args, **kwargs):
        return defer.maybeDeferred(self.store.run_sync, fn, *args, **kwargs)


def result(d):
    out = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    if isinstance(out[0], Exception) or hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def failure(d, kind):
    out = []
    d.addBoth(out.append)
    assert out and hasattr(out[0], "check") and out[0].check(kind), out
    return out[0].value


@pytest.fixture
def two(db_url, tmp_path):
    """Two nodes' runners on one database, a clock, and the cipher both nodes share."""
    store_a, cipher = make_store(db_url, str(tmp_path))
    store_b = Store(db_url)
    yield SyncRunner(store_a), SyncRunner(store_b), task.Clock(), cipher
    store_a.dispose()
    store_b.dispose()


def test_every_store_provides_its_interface(two):
    a, _, clock, cipher = two
    for obj, iface in ((MemorySessions(clock, lifetime=1, idle=1), ISessionStore),
                       (DbSessions(a, clock, lifetime=1, idle=1, seal=bytes, unseal=bytes),
                        ISessionStore),
                       (MemoryNonces(clock), INonceCache), (DbNonces(a, clock), INonceCache),
                       (MemoryCounters(), ICounterStore), (DbCounters(a), ICounterStore),
                       (MemoryDialogues(), IDialogueStore), (DbDialogues(a), IDialogueStore)):
        assert verifyObject(iface, obj)


def test_a_nonce_seen_by_one_node_is_refused_by_the_other_until_it_expires(two):
    a, b, clock, _ = two
    clock.advance(T0)
    na, nb = DbNonces(a, clock), DbNonces(b, clock)
    key = b"k" * 32
    assert result(na.remember(key, T0 + 600)) is True
    assert result(nb.remember(key, T0 + 600)) is False       # the replay on node B
    assert result(na.remember(key, T0 + 600)) is False
    assert result(nb.remember(b"j" * 32, T0 + 600)) is True
    clock.advance(600)
    assert result(nb.remember(key, T0 + 1200)) is True        # expired: fresh again
    assert result(na.remember(key, T0 + 1200)) is False


def test_memory_nonces_are_bounded():
    clock = task.Clock()
    n = MemoryNonces(clock, capacity=1)
    assert result(n.remember(b"a", 10)) is True
    failure(n.remember(b"b", 10), NonceCacheFull)
    clock.advance(10)
    assert result(n.remember(b"b", 20)) is True and len(n) == 1


def test_counters_add_up_across_nodes_per_window(two):
    a, b, _, _ = two
    ca, cb = DbCounters(a), DbCounters(b)
    assert result(ca.add("soap-auth|address|10.0.0.1", 60)) == 1
    assert result(cb.add("soap-auth|address|10.0.0.1", 60)) == 2
    assert result(ca.add("soap-auth|address|10.0.0.1", 60, 3)) == 5
    assert result(cb.get("soap-auth|address|10.0.0.1", 60)) == 5
    assert result(cb.add("soap-auth|address|10.0.0.1", 120)) == 1   # the next window
    assert result(ca.get("other", 60)) == 0


def test_a_session_made_on_one_node_is_served_by_the_other(two):
    a, b, clock, cipher = two
    clock.advance(T0)

    def sessions(runner):
        return DbSessions(runner, clock, lifetime=100, idle=30,
                          seal=lambda d: cipher.seal(b"admin-session", d),
                          unseal=lambda d: cipher.unseal(b"admin-session", d))
    sa, sb = sessions(a), sessions(b)
    s = SessionRecord("sid-1", "csrf-1", T0, T0, user_id=7, name="ann", role="administrator")
    result(sa.put(s))
    got = result(sb.get("sid-1"))
    assert (got.id, got.csrf, got.user_id, got.name, got.role, got.flashes) == (
        "sid-1", "csrf-1", 7, "ann", "administrator", [])
    got.flashes.append(("warn", "New password for bob, shown only now: s3cr3t-pass"))
    got.role = "report_viewer"
    result(sb.update(got))
    raw = a.store.run_sync(run, "SELECT flashes FROM shared_session WHERE id = %s", "sid-1")
    assert b"s3cr3t" not in bytes(raw.scalar())              # sealed, never in clear
    again = result(sa.get("sid-1"))
    assert again.role == "report_viewer"
    assert again.flashes == [("warn", "New password for bob, shown only now: s3cr3t-pass")]
    clock.advance(29)
    assert result(sb.get("sid-1")) is not None               # each use moves the idle time
    clock.advance(31)
    assert result(sa.get("sid-1")) is None                   # idle too long
    s2 = SessionRecord("sid-2", "c", clock.seconds(), clock.seconds(), user_id=7)
    s3 = SessionRecord("sid-3", "c", clock.seconds(), clock.seconds(), user_id=8)
    result(sa.put(s2))
    result(sa.put(s3))
    result(sb.drop_user(7))
    assert result(sa.get("sid-2")) is None and result(sa.get("sid-3")) is not None
    result(sb.update(s2))                                    # a dropped session stays dropped
    assert result(sa.get("sid-2")) is None
    for _ in range(4):
        clock.advance(25)
        assert result(sb.get("sid-3")) is not None
    clock.advance(1)
    assert result(sb.get("sid-3")) is None                   # past its lifetime
    assert result(sa.get(None)) is None and result(sa.get("unknown")) is None


@pytest.mark.parametrize("shared", ["memory", "database"])
def test_a_dialogue_is_claimed_by_one_request_at_a_time(two, shared):
    a, b, _, _ = two
    if shared == "memory":
        da = db = MemoryDialogues()
    else:
        da, db = DbDialogues(a), DbDialogues(b)
    assert result(da.claim("d1", T0, T0 + 120)) is None      # nothing begun
    assert result(da.release("d1", {"step": 1}, None, T0 + 120)) is True
    state, v = result(db.claim("d1", T0 + 1, T0 + 121))
    assert state == {"step": 1}
    failure(da.claim("d1", T0 + 2, T0 + 122), DialogueHeld)  # node B holds it
    assert result(db.release("d1", {"step": 2}, v, T0 + 122)) is True
    state, v2 = result(da.claim("d1", T0 + 3, T0 + 10))
    assert state == {"step": 2} and v2 != v
    # the hold ran out and node B took the dialogue over: A's late answer loses
    state, v3 = result(db.claim("d1", T0 + 11, T0 + 130))
    assert result(da.release("d1", {"step": "late"}, v2, T0 + 130)) is False
    assert result(db.release("d1", None, v3, T0 + 130)) is True      # ended
    assert result(da.claim("d1", T0 + 12, T0 + 130)) is None
    result(da.release("d2", {"step": 1}, None, T0 + 5))
    assert result(db.claim("d2", T0 + 5, T0 + 10)) is None            # expired


def test_purge_deletes_only_what_expired(two):
    a, b, clock, cipher = two
    clock.advance(T0)
    result(DbNonces(a, clock).remember(b"old" * 8 + b"12345678", T0 - 1))
    result(DbNonces(a, clock).remember(b"new" * 8 + b"12345678", T0 + 600))
    result(DbCounters(a).add("k", window_start(T0 - 2 * 86400, 60)))
    result(DbCounters(a).add("k", window_start(T0, 60)))
    result(DbDialogues(a).release("gone", {}, None, T0 - 1))
    result(DbDialogues(a).release("open", {}, None, T0 + 60))
    sessions = DbSessions(a, clock, lifetime=100, idle=30, seal=bytes, unseal=bytes)
    result(sessions.put(SessionRecord("s-old", "c", T0 - 200, T0 - 200)))
    result(sessions.put(SessionRecord("s-new", "c", T0, T0)))
    assert b.store.run_sync(purge_expired, int(T0 * 1000)) == 4
    assert b.store.run_sync(purge_expired, int(T0 * 1000)) == 0
    counts = [a.store.run_sync(run, "SELECT count(*) FROM " + t).scalar()
              for t in ("shared_nonce", "shared_counter", "ussd_dialogue", "shared_session")]
    assert counts == [1, 1, 1, 1]


# -- throttles over a shared counter store ----------------------------------------------
def test_a_sources_failures_on_two_nodes_add_up():
    clock = task.Clock()
    clock.advance(T0)
    shared = MemoryCounters()
    gate_a = SourceGate(clock, lambda source: 5, shared=shared)
    gate_b = SourceGate(clock, lambda source: 5, shared=shared)
    for _ in range(3):
        assert result(defer.maybeDeferred(gate_a.admit, "soap", "shop1")) is None
        gate_a.done("soap", "shop1", True)
    # node B reads the 3 failures at its first attempt of the window
    for _ in range(2):
        assert result(defer.maybeDeferred(gate_b.admit, "soap", "shop1")) is None
        gate_b.done("soap", "shop1", True)
    refused = result(defer.maybeDeferred(gate_b.admit, "soap", "shop1"))
    assert refused == window_start(T0, 60) + 60               # 5 failures: throttled
    # node A learns the total with its next failure, then refuses too
    assert result(defer.maybeDeferred(gate_a.admit, "soap", "shop1")) is None
    gate_a.done("soap", "shop1", True)
    assert result(defer.maybeDeferred(gate_a.admit, "soap", "shop1")) == refused
    assert gate_a.throttled() == [("soap", "shop1", 6, 5)]
    clock.advance(60)                                        # a new window for both
    assert result(defer.maybeDeferred(gate_a.admit, "soap", "shop1")) is None
    assert result(defer.maybeDeferred(gate_b.admit, "soap", "shop1")) is None


def test_a_source_gate_does_not_hold_an_attempt_for_the_shared_read():
    clock = task.Clock()
    clock.advance(T0)
    reads = []

    class SlowCounters(MemoryCounters):
        def get(self, key, window_start):
            reads.append(defer.Deferred())
            return reads[-1]
    gate = SourceGate(clock, lambda source: 5, shared=SlowCounters())
    assert gate.admit("smpp", "smsc1") is None           # admitted before the read answers
    assert gate.admit("smpp", "smsc1") is None and len(reads) == 1    # one read per window
    reads[0].callback(7)                                  # the other nodes' failures
    assert gate.admit("smpp", "smsc1") == window_start(T0, 60) + 60
    clock.advance(60)
    assert gate.admit("smpp", "smsc1") is None and len(reads) == 2    # a new window


def test_a_source_gate_without_a_shared_store_keeps_its_own_count():
    clock = task.Clock()
    gate_a = SourceGate(clock, lambda source: 2)
    gate_b = SourceGate(clock, lambda source: 2)
    for _ in range(2):
        assert gate_a.admit("web", "1.2.3.4") is None
        gate_a.done("web", "1.2.3.4", True)
    assert gate_a.admit("web", "1.2.3.4") is not None
    assert gate_b.admit("web", "1.2.3.4") is None


def test_login_failures_on_two_nodes_add_up():
    clock = task.Clock()
    clock.advance(T0)
    shared = MemoryCounters()
    a = FailureThrottle(clock, per_account=10, per_address=4, shared=shared, scope="admin-login")
    b = FailureThrottle(clock, per_account=10, per_address=4, shared=shared, scope="admin-login")
    a.failed(None, "10.1.1.1")
    a.failed(None, "10.1.1.1")
    b.failed(None, "10.1.1.1")
    assert b.allowed(None, "10.1.1.1")
    b.failed(None, "10.1.1.1")                                # the 4th across both nodes
    assert not b.allowed(None, "10.1.1.1")
    assert a.allowed(None, "10.1.1.1")                        # A has seen 2 of its own
    a.failed(None, "10.1.1.1")                                # ... and learns the total
    assert not a.allowed(None, "10.1.1.1")
    clock.advance(60)
    assert a.allowed(None, "10.1.1.1") and b.allowed(None, "10.1.1.1")


# -- a USSD dialogue whose steps alternate between two nodes ---------------------------------
def _node(store, clock, activation):
    manager = DialogueManager(activation, clock=clock, texts=Texts(), timeout=120)
    return Bridge(manager, shared=SharedDialogues(manager, store, clock)), manager


def _text(dialogue_id, operation, text=None):
    return Envelope("json", dialogue_id, operation, "text", text, msisdn="381641234567",
                    source="ussd:127.0.0.1")


@pytest.mark.parametrize("shared", ["memory", "database"])
def test_a_ussd_dialogue_alternating_between_nodes(two, shared):
    a, b, clock, _ = two
    stores = ((MemoryDialogues(),) * 2 if shared == "memory"
              else (DbDialogues(a), DbDialogues(b)))
    activation = FakeActivationService(hold=True)
    (bridge_a, man_a), (bridge_b, man_b) = (_node(stores[0], clock, activation),
                                            _node(stores[1], clock, activation))
    menu = result(bridge_a.handle(_text("dlg-1", "begin", "*123#")))
    assert menu.operation == "continue" and "1" in menu.text
    assert not man_a.sessions                            # held by the store, not node A
    prompt = result(bridge_b.handle(_text("dlg-1", "continue", "1")))
    assert prompt.operation == "continue"
    running = bridge_a.handle(_text("dlg-1", "continue", "1234 5678 9012 34"))
    assert len(activation.waiting) == 1                  # node A activates ...
    req = activation.waiting[0][0]
    assert (req.msisdn, req.hrn, req.channel_ref) == ("381641234567", "1234 5678 9012 34",
                                                       "dlg-1")
    # ... while node B is asked to continue the same dialogue: refused, not run twice
    failure(bridge_b.handle(_text("dlg-1", "continue", "1")), HttpError)
    assert len(activation.waiting) == 1
    activation.release()
    done = result(running)
    assert done.operation == "end"
    gone = result(bridge_b.handle(_text("dlg-1", "continue", "1")))
    assert gone.operation == "end"                       # the dialogue ended: expired text
    assert not man_a.sessions and not man_b.sessions and not clock.getDelayedCalls()


def test_sealed_state_is_bound_to_its_purpose_and_key_ring(tmp_path):
    from core import keys
    from core.crypto import TamperError, VoucherCipher
    ring = keys.init(str(tmp_path / "keys.json"))
    one, same = VoucherCipher(ring), VoucherCipher(keys.load(str(tmp_path / "keys.json")))
    blob = one.seal(b"admin-session", b"[]secret")
    assert b"secret" not in blob and same.unseal(b"admin-session", blob) == b"[]secret"
    with pytest.raises(TamperError):
        same.unseal(b"other-purpose", blob)
    with pytest.raises(TamperError):
        same.unseal(b"admin-session", blob[:-1] + bytes([blob[-1] ^ 1]))
    other = VoucherCipher(keys.init(str(tmp_path / "other.json")))
    with pytest.raises(TamperError):
        other.unseal(b"admin-session", blob)
    # every node holding the ring derives the same login-form key; another ring does not
    assert one.derive_key(b"admin-login-form") == same.derive_key(b"admin-login-form")
    assert one.derive_key(b"admin-login-form") != one.derive_key(b"x")
    assert one.derive_key(b"admin-login-form") != other.derive_key(b"admin-login-form")
