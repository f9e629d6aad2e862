"""C{ivoms user reset-password NAME}: the way back from a lost password (issue 18)."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select, update

from core.schema import audit_log, users
from core.users import verify_password
from tests.unit.test_cli import Instance


@pytest.fixture
def ready(conf_dir, capsys):
    i = Instance(conf_dir, capsys)
    i.ok("init", "--admin-password", "correct horse battery")
    yield i
    i.close()


def _hash(inst, name):
    return inst.q(select(users.c.password_hash).where(users.c.name == name))[0][0]


def test_a_generated_password_is_printed_once_and_works(ready):
    inst = ready
    inst.store.run_sync(lambda tx: tx.execute(
        update(users).where(users.c.name == "admin").values(failed_logins=4, locked_until=2**40)))
    out = inst.ok("user", "reset-password", "admin")
    m = re.fullmatch(r"password of 'admin' changed to: (\S+)\n\(shown only this once\)\n", out)
    assert m, out
    assert verify_password(_hash(inst, "admin"), m.group(1))
    assert not verify_password(_hash(inst, "admin"), "correct horse battery")
    assert inst.q(select(users.c.failed_logins, users.c.locked_until)
                  .where(users.c.name == "admin")) == [(0, 0)]
    rows = inst.q(select(audit_log.c.action, audit_log.c.target, audit_log.c.origin,
                         audit_log.c.actor, audit_log.c.detail)
                  .where(audit_log.c.action == "user.password"))
    assert len(rows) == 1
    action, target, origin, actor, detail = rows[0]
    assert (target, origin) == ("admin", "cli") and actor.startswith("cli:")
    assert m.group(1) not in (detail or "")


def test_a_password_read_from_standard_input_is_not_printed(ready, monkeypatch):
    inst = ready
    monkeypatch.setattr("sys.stdin", io.StringIO("a new long passphrase\nignored\n"))
    out = inst.ok("user", "reset-password", "admin", "--stdin")
    assert out == "password of 'admin' changed\n"
    assert verify_password(_hash(inst, "admin"), "a new long passphrase")


def test_refusals(ready, monkeypatch):
    inst = ready
    before = _hash(inst, "admin")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    inst.fails("user", "reset-password", "admin", "--stdin", match="at least 12 characters")
    inst.fails("user", "reset-password", "nobody", match="no user 'nobody'")
    assert _hash(inst, "admin") == before
    assert inst.q(select(audit_log.c.id).where(audit_log.c.action == "user.password")) == []
