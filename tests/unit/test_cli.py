"""The C{ivoms} command line, run in-process on a copy of conf/ (issue 2 points 3, 5, 6, 8
and its "Bad input" section), and the C{twist ivoms} plugin."""
from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from core.db import Store
from core.keys import load as load_keys
from core.crypto import VoucherCipher
from core.schema import audit_log, batch, users, voucher, voucher_history
from core.users import verify_password
from gateway.cli import main
from tests.foundation_helpers import set_toml_key

FIRST = 1_000_000_000     # generation.serial_start as shipped


class Instance:
    """A copied conf/ folder and helpers to run C{ivoms --config} on it."""

    def __init__(self, folder, capsys):
        self.dir = str(folder)
        self.config = os.path.join(self.dir, "ivoms.toml")
        self.capsys = capsys
        self.keys = os.path.join(self.dir, "var", "keys.json")
        self.db = os.path.join(self.dir, "var", "ivoms.db")
        self._store = None

    def run(self, *argv):
        """Run the CLI; return (exit status, stdout, stderr)."""
        self.capsys.readouterr()
        try:
            rc = main(["--config", self.config, *argv])
        except SystemExit as e:          # argparse usage errors
            rc = e.code
        out, err = self.capsys.readouterr()
        return rc, out, err

    def ok(self, *argv):
        rc, out, err = self.run(*argv)
        assert rc == 0, (rc, out, err)
        return out

    def fails(self, *argv, match):
        """Expect exit status 1 with exactly one clear error line on stderr."""
        rc, out, err = self.run(*argv)
        assert rc == 1, (rc, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("ivoms: error: ")
        assert "Traceback" not in err
        assert re.search(match, lines[0]), lines[0]
        return lines[0]

    def set(self, section, key, value):
        """Set C{key = value} (a TOML literal) in C{[section]} of ivoms.toml."""
        set_toml_key(self.config, section, key, value)

    @property
    def store(self):
        if self._store is None:
            self._store = Store("sqlite:///" + self.db)
        return self._store

    def q(self, stmt):
        return self.store.run_sync(lambda tx: tx.execute(stmt).rows, read_only=True)

    def count(self, table):
        return self.q(select(func.count()).select_from(table))[0][0]

    def hrn(self, serial):
        cipher = VoucherCipher(load_keys(self.keys))
        (kid, ct), = self.q(select(voucher.c.key_id, voucher.c.hrn_ct).where(voucher.c.serial == serial))
        return cipher.decrypt(serial, kid, bytes(ct))

    def close(self):
        if self._store is not None:
            self._store.dispose()


@pytest.fixture
def inst(conf_dir, capsys):
    i = Instance(conf_dir, capsys)
    yield i
    i.close()


@pytest.fixture
def ready(inst):
    """An initialised instance."""
    inst.ok("init", "--admin-password", "correct horse battery")
    return inst


# -- init ------------------------------------------------------------------------------
def test_init_creates_a_self_contained_instance(inst, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)       # not the conf folder: paths come from the config file
    out = inst.ok("init")
    assert os.path.isfile(inst.keys)
    assert stat.S_IMODE(os.stat(inst.keys).st_mode) == 0o600
    assert os.path.isfile(inst.db)
    assert not os.path.exists(tmp_path / "var")       # nothing written beside the cwd
    assert "created key file %s" % inst.keys in out
    assert "database at schema revision" in out
    m = re.search(r"created administrator 'admin' with password: (\S+)", out)
    assert m, out
    password = m.group(1)
    assert len(password) >= 16
    assert out.count(password) == 1                    # printed once
    assert "shown only this once" in out
    (name, role, h), = inst.q(select(users.c.name, users.c.role, users.c.password_hash))
    assert (name, role) == ("admin", "administrator")
    assert password not in h and verify_password(h, password)
    keys_before = open(inst.keys, "rb").read()

    out2 = inst.ok("init")
    assert "password" not in out2
    assert password not in out2
    assert "created key file" not in out2
    assert "database at schema revision" in out2
    assert open(inst.keys, "rb").read() == keys_before
    assert inst.count(users) == 1


def test_init_with_given_password_does_not_print_it(inst):
    out = inst.ok("init", "--admin-user", "root", "--admin-password", "my-own-secret")
    assert "created administrator 'root'" in out
    assert "my-own-secret" not in out
    (h,), = inst.q(select(users.c.password_hash))
    assert verify_password(h, "my-own-secret")


def test_init_refuses_a_corrupt_existing_key_file(inst):
    os.makedirs(os.path.dirname(inst.keys))
    with open(inst.keys, "w") as f:
        f.write("{broken")
    os.chmod(inst.keys, 0o600)
    inst.fails("init", match=r"key file %s is corrupt" % re.escape(inst.keys))
    assert open(inst.keys).read() == "{broken"         # never overwritten
    assert not os.path.exists(inst.db)


def test_keys_commands(ready):
    inst = ready
    inst.fails("keys", "init", match="already exists; refusing to overwrite")
    out = inst.ok("keys", "rotate")
    assert "new active data key d2" in out
    out = inst.ok("keys", "show")
    assert "d1, d2 (active: d2)" in out and "index key: i1" in out
    doc = json.load(open(inst.keys))
    for material in list(doc["data_keys"].values()) + [doc["index_key"]["key"]]:
        assert material not in out


# -- db ------------------------------------------------------------------------------------
def test_db_current_and_upgrade(inst):
    from core import migrate
    os.makedirs(os.path.dirname(inst.db))
    out = inst.ok("db", "current")
    assert "current: (empty), code head: %s" % migrate.head() in out
    out = inst.ok("db", "upgrade")
    assert "database at schema revision %s" % migrate.head() in out
    out = inst.ok("db", "current")
    assert "current: %s, code head: %s" % (migrate.head(), migrate.head()) in out


def test_commands_on_an_uninitialised_database(inst):
    os.makedirs(os.path.dirname(inst.db))
    inst.fails("batches", match="does not exist; run 'ivoms init'")
    inst.fails("generate", "--type", "EUR10", "--count", "5", match="run 'ivoms init'")


# -- generate ----------------------------------------------------------------------------------
def test_generate_prints_batch_and_serial_range(ready):
    inst = ready
    out = inst.ok("generate", "--type", "EUR10", "--count", "5")
    m = re.search(r"batch (\d+): 5 vouchers of EUR10, serials (\d+)-(\d+), expiring (\S+), "
                  r"state generated", out)
    assert m, out
    bid, first, last = int(m.group(1)), int(m.group(2)), int(m.group(3))
    assert (first, last) == (FIRST, FIRST + 4)
    out = inst.ok("generate", "--type", "EUR20", "--count", "3", "--expires", "2099-12-31",
                  "--by", "vm1")
    m2 = re.search(r"batch (\d+): 3 vouchers of EUR20, serials (\d+)-(\d+), expiring 2099-12-31", out)
    assert m2, out
    assert int(m2.group(1)) == bid + 1
    assert (int(m2.group(2)), int(m2.group(3))) == (FIRST + 5, FIRST + 7)
    assert inst.q(select(batch.c.requested_by).where(batch.c.id == bid + 1)) == [("vm1",)]
    assert inst.q(select(batch.c.state).distinct()) == [("ready",)]
    assert inst.count(voucher) == 8
    assert {len(inst.hrn(s)) for s in (FIRST, FIRST + 5)} == {14, 16}
    assert "Traceback" not in out
    listing = inst.ok("batches")
    assert re.search(r"\b%d\s+EUR20\s+3\s+%d-%d\s+ready\s+2099-12-31" % (bid + 1, FIRST + 5, FIRST + 7),
                     listing), listing


def test_generate_stays_quiet_off_a_terminal(ready):
    rc, out, err = ready.run("generate", "--type", "EUR5", "--count", "30")
    assert rc == 0 and err == ""
    assert "[" not in out and "%" not in out           # no progress bar


@pytest.mark.parametrize("argv,match", [
    (("--type", "NOPE", "--count", "5"),
     r"unknown voucher type 'NOPE' \(configured: [^)]*EUR10"),
    (("--type", "EUR10", "--count", "0"), r"--count must be at least 1"),
    (("--type", "EUR10", "--count", "-3"), r"--count must be at least 1"),
    (("--type", "EUR10", "--count", "10000001"),
     r"--count 10000001 is above generation.max_count \(10000000\)"),
    (("--type", "EUR10", "--count", "5", "--expires", "2001-01-01"),
     r"--expires 2001-01-01 is in the past"),
    (("--type", "EUR10", "--count", "5", "--expires", "31/12/2099"),
     r"'31/12/2099' is not a date \(YYYY-MM-DD\)"),
])
def test_generate_refusals_leave_nothing(ready, argv, match):
    inst = ready
    inst.fails("generate", *argv, match=match)
    assert inst.count(batch) == 0
    assert inst.count(voucher) == 0
    # serials were not consumed
    assert re.search(r"serials %d-" % FIRST, inst.ok("generate", "--type", "EUR5", "--count", "1"))


def test_generate_above_a_configured_maximum(ready):
    inst = ready
    inst.set("generation", "max_count", "100")
    inst.fails("generate", "--type", "EUR10", "--count", "101", match=r"above generation.max_count \(100\)")
    assert inst.count(batch) == 0
    inst.ok("generate", "--type", "EUR10", "--count", "100")
    assert inst.count(voucher) == 100


def test_generate_without_key_file(ready):
    inst = ready
    os.unlink(inst.keys)
    inst.fails("generate", "--type", "EUR10", "--count", "5",
               match=r"key file %s does not exist; create it with 'ivoms keys init'"
               % re.escape(inst.keys))
    assert inst.count(batch) == 0
    assert not os.path.exists(inst.keys)


def test_generate_with_group_readable_key_file(ready):
    inst = ready
    os.chmod(inst.keys, 0o640)
    inst.fails("generate", "--type", "EUR10", "--count", "5", match=r"accessible by group or others")
    assert inst.count(batch) == 0


def test_reveal_with_missing_key_file(ready):
    inst = ready
    inst.ok("generate", "--type", "EUR10", "--count", "1")
    os.rename(inst.keys, inst.keys + ".bak")
    inst.fails("vouchers", "reveal", str(FIRST), "--yes", match="does not exist")
    assert inst.count(audit_log) == 0


@pytest.mark.parametrize("argv", [("generate", "--type", "EUR10", "--count", "5"), ("batches",),
                                  ("db", "current"), ("db", "upgrade"), ("init",),
                                  ("vouchers", "show", "1"),
                                  ("vouchers", "set-state", "available", "--batch", "1")])
def test_unreachable_database(inst, argv):
    inst.set("database", "url", '"postgresql+psycopg://ivoms@127.0.0.1:1/ivoms"')
    line = inst.fails(*argv, match=r"cannot (read|migrate) the database|cannot connect to database")
    assert "127.0.0.1" in line and "refused" in line.lower()


def test_config_error_is_one_clear_line(inst):
    with open(inst.config, "a") as f:
        f.write("\n[surprise]\n")
    inst.fails("batches", match=r"%s: surprise: unknown key 'surprise'" % re.escape(inst.config))


def test_missing_config_file(inst, tmp_path):
    inst.config = str(tmp_path / "nope.toml")
    inst.fails("batches", match=r"nope.toml: file not found")


# -- vouchers show / reveal ----------------------------------------------------------------------
def test_vouchers_show_never_prints_the_hrn(ready):
    inst = ready
    inst.ok("generate", "--type", "EUR10", "--count", "3")
    hrn = inst.hrn(FIRST + 1)
    out = inst.ok("vouchers", "show", str(FIRST + 1))
    assert hrn not in out
    assert hrn[:6] not in out and hrn[-6:] not in out
    assert "serial:    %d" % (FIRST + 1) in out
    assert "state:     generated" in out
    assert "EUR10 (10.00 EUR, 60 days of account validity)" in out
    assert re.search(r"batch:\s+1 \(ready\)", out)
    assert "************" in out
    inst.ok("vouchers", "set-state", "blocked", str(FIRST + 1), "--reason", "stolen")
    out = inst.ok("vouchers", "show", str(FIRST + 1))
    assert "state:     blocked (stolen; was generated)" in out
    assert re.search(r"generated\s+-> blocked\s+by cli:\S+\s+\(stolen\)", out)
    assert hrn not in out
    inst.fails("vouchers", "show", "42", match="no voucher with serial 42")


def test_vouchers_reveal_with_yes_prints_and_audits(ready):
    inst = ready
    inst.ok("generate", "--type", "EUR10", "--count", "2")
    hrn = inst.hrn(FIRST)
    out = inst.ok("vouchers", "reveal", str(FIRST), "--yes")
    assert out.strip() == hrn
    rows = inst.q(select(audit_log.c.action, audit_log.c.target, audit_log.c.origin,
                         audit_log.c.actor, audit_log.c.detail))
    assert len(rows) == 1
    action, target, origin, actor, detail = rows[0]
    assert (action, target, origin) == ("voucher.reveal", str(FIRST), "cli")
    assert actor.startswith("cli:")
    assert hrn not in (detail or "")


def test_vouchers_reveal_refuses_without_yes_off_a_terminal(ready, monkeypatch):
    inst = ready
    inst.ok("generate", "--type", "EUR10", "--count", "1")
    hrn = inst.hrn(FIRST)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))   # piped 'y' is not a confirmation
    rc, out, err = inst.run("vouchers", "reveal", str(FIRST))
    assert rc == 1
    assert "not confirmed" in err and "--yes" in err
    assert hrn not in out + err
    assert inst.count(audit_log) == 0


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("answer,revealed", [("y\n", True), ("yes\n", True), ("n\n", False),
                                             ("\n", False)])
def test_vouchers_reveal_asks_on_a_terminal(ready, monkeypatch, answer, revealed):
    inst = ready
    inst.ok("generate", "--type", "EUR10", "--count", "1")
    hrn = inst.hrn(FIRST)
    monkeypatch.setattr(sys, "stdin", _Tty(answer))
    rc, out, err = inst.run("vouchers", "reveal", str(FIRST))
    assert "Reveal the HRN of voucher %d?" % FIRST in out
    assert (rc == 0) is revealed
    assert (hrn in out) is revealed
    assert inst.count(audit_log) == (1 if revealed else 0)


def test_reveal_of_unknown_serial(ready):
    ready.fails("vouchers", "reveal", "7", "--yes", match="no voucher with serial 7")


# -- vouchers set-state -------------------------------------------------------------------------
def test_set_state_batch_range_unblock(ready):
    inst = ready
    out = inst.ok("generate", "--type", "EUR10", "--count", "10")
    bid = int(re.search(r"batch (\d+)", out).group(1))
    out = inst.ok("vouchers", "set-state", "available", "--batch", str(bid))
    assert "batch %d: 10 changed, 0 skipped" % bid in out
    out = inst.ok("vouchers", "set-state", "available", "--batch", str(bid))
    assert "batch %d: 0 changed, 10 skipped" % bid in out
    a, b = FIRST + 2, FIRST + 5
    out = inst.ok("vouchers", "set-state", "blocked", "--range", "%d-%d" % (a, b), "--reason", "stolen")
    assert "serials %d-%d: 4 changed, 0 skipped" % (a, b) in out
    out = inst.ok("vouchers", "set-state", "blocked", "--range", "%d-%d" % (FIRST, FIRST + 3),
                  "--reason", "damaged")
    assert "serials %d-%d: 2 changed, 2 skipped" % (FIRST, FIRST + 3) in out
    out = inst.ok("vouchers", "set-state", "unblock", "--range", "%d-%d" % (FIRST, FIRST + 9))
    assert "serials %d-%d: 6 changed, 4 skipped" % (FIRST, FIRST + 9) in out
    assert inst.q(select(voucher.c.state).distinct()) == [("available",)]
    out = inst.ok("vouchers", "set-state", "expired", str(FIRST + 9))
    assert "serial %d: 1 changed, 0 skipped" % (FIRST + 9) in out
    # history and audit for every change
    assert inst.count(voucher_history) == 10 + 4 + 2 + 6 + 1
    reasons = {r[0] for r in inst.q(select(voucher_history.c.reason).where(
        voucher_history.c.to_state == "blocked"))}
    assert reasons == {"stolen", "damaged"}
    audits = inst.q(select(audit_log.c.action, audit_log.c.target, audit_log.c.detail)
                    .order_by(audit_log.c.id))
    assert [a[0] for a in audits] == ["voucher.set_state"] * 6
    assert json.loads(audits[2][2]) == {"state": "blocked", "reason": "stolen", "changed": 4,
                                        "skipped": 0}


@pytest.mark.parametrize("argv,match", [
    (("blocked", "--range", "1-5"), r"blocking needs --reason"),
    (("available",), r"give exactly one of SERIAL, --range FIRST-LAST or --batch ID"),
    (("available", "5", "--batch", "1"), r"give exactly one of"),
    (("available", "--range", "5-"), r"--range must be FIRST-LAST"),
    (("available", "--range", "abc"), r"--range must be FIRST-LAST"),
    (("available", "--range", "9-5"), r"range 9-5 is empty"),
])
def test_set_state_bad_requests(ready, argv, match):
    inst = ready
    inst.ok("generate", "--type", "EUR10", "--count", "2")
    inst.fails("vouchers", "set-state", *argv, match=match)
    assert inst.count(voucher_history) == 0
    assert inst.count(audit_log) == 0


def test_set_state_unknown_state_is_a_usage_error(ready):
    rc, out, err = ready.run("vouchers", "set-state", "used", "--batch", "1")
    assert rc == 2 and "invalid choice" in err


# -- twist plugin ---------------------------------------------------------------------------------
def test_twist_plugin_builds_the_same_service_tree(ready):
    from twisted.application.service import IServiceMaker, MultiService
    from twisted.internet import reactor
    from twisted.plugin import getPlugins

    from gateway.config import load_config
    from gateway.service import make_service

    makers = [p for p in getPlugins(IServiceMaker) if p.tapname == "ivoms"]
    assert len(makers) == 1
    maker = makers[0]
    options = maker.options()
    options.parseOptions(["--config", ready.config])
    top = maker.makeService(options)
    assert isinstance(top, MultiService)
    expected = make_service(load_config(ready.config), reactor)
    names = [s.name for s in top]
    assert names == [s.name for s in expected]
    assert "store" in names and "housekeeping" in names
    assert not top.running                       # built, not started


@pytest.mark.integration
def test_twist_lists_the_plugin():
    twist = os.path.join(os.path.dirname(sys.executable), "twist")
    r = subprocess.run([twist, "ivoms", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--config" in r.stdout


def test_vouchers_show_gives_a_jpy_face_value_without_decimals(ready):
    from core.generation import generate
    from tests.helpers import VType
    inst = ready
    info = generate(inst.store, VoucherCipher(load_keys(inst.keys)),
                    VType(code="JPY500", face_value=500, currency="JPY"), 1, 2 ** 42,
                    requested_by="test", serial_start=FIRST, chunk_size=1)
    out = inst.ok("vouchers", "show", str(info.first_serial))
    assert "JPY500 (500 JPY, 30 days of account validity)" in out


def test_commands_wait_for_billing_links_and_go_on_when_they_stay_down(capsys):
    from twisted.internet import task
    from zope.interface import implementer

    from billing.readiness import poll_until
    from core.interfaces import IBillingReadiness
    from gateway.cli.runtime import when_billing_ready

    @implementer(IBillingReadiness)
    class Links:
        def __init__(self, clock):
            self.clock, self.up = clock, False

        def when_ready(self, timeout):
            return poll_until(self.clock, lambda: self.up, timeout)

    clock = task.Clock()
    links = Links(clock)
    d = when_billing_ready(links, timeout=3)
    clock.advance(1)
    assert not d.called
    links.up = True
    clock.advance(0.01)
    assert d.called and d.result is True

    down = when_billing_ready(Links(clock), timeout=3)
    clock.pump([0.5] * 7)
    assert down.called and down.result is False
    assert "billing not reachable after 3 s" in capsys.readouterr().err
    assert when_billing_ready(object()).result is True     # nothing to wait for
