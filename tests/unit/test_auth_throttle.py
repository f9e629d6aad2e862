"""FailureThrottle: per-account and per-address windows, bounded table (issue 16, deliverable 5)."""
from __future__ import annotations

from twisted.internet import task

from core.interfaces import IAuthThrottle, IPasswordChecker
from core.passwords import PasswordPool
from core.throttle import FailureThrottle


def test_limits_windows_and_success():
    clock = task.Clock()
    t = FailureThrottle(clock, per_account=3, per_address=5, window=60)
    assert IAuthThrottle.providedBy(t)
    crossed = [t.failed("alice", "10.0.0.1") for _ in range(3)]
    assert crossed == [False, False, True]
    assert not t.allowed("alice", "10.0.0.9")            # the account
    assert t.allowed("bob", "10.0.0.1")                  # the address has 3 of 5
    t.failed("bob", "10.0.0.1")
    t.failed("carol", "10.0.0.1")
    assert not t.allowed("dave", "10.0.0.1")             # the address
    assert ("address", "10.0.0.1", 5) in t.throttled()
    t.succeeded("alice", "10.0.0.9")
    assert t.allowed("alice", "10.0.0.9")
    clock.advance(60)
    assert t.allowed("dave", "10.0.0.1") and t.throttled() == []


def test_the_table_stays_bounded_under_a_flood_of_addresses():
    clock = task.Clock()
    t = FailureThrottle(clock, per_account=3, per_address=3, window=60, max_keys=100)
    for i in range(10_000):
        t.failed(None, "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255))
    assert len(t.throttled()) == 0
    for _ in range(3):
        t.failed("alice", None)
    assert not t.allowed("alice", None)                  # the newest keys are kept
    assert len(list(t.throttled())) == 1


def test_the_pool_provides_the_checker_interface():
    from twisted.internet import reactor
    pool = PasswordPool(reactor, threads=1, queue=0)
    assert IPasswordChecker.providedBy(pool) and pool.bound == 1
