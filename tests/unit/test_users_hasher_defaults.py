"""Production password hashing keeps the strong Argon2id defaults."""
from __future__ import annotations

from argon2 import PasswordHasher, Type


def test_production_hasher_uses_library_defaults(monkeypatch):
    """Without the tests' cheap hasher, core.users hashes with the RFC 9106 profile.

    tests/conftest.py swaps in cheap parameters for every test; undoing that
    swap shows what production runs.
    """
    monkeypatch.undo()
    import core.users
    strong = PasswordHasher()
    assert core.users._hasher.time_cost == strong.time_cost >= 2
    assert core.users._hasher.memory_cost == strong.memory_cost >= 19 * 1024
    assert core.users._hasher.type is Type.ID
    assert core.users.hash_password("s3cret").startswith(
        "$argon2id$v=19$m=%d,t=%d," % (strong.memory_cost, strong.time_cost))
