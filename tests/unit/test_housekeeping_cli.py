"""C{ivoms housekeeping list | run | history} on a copied conf/, and the [housekeeping] settings."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load_config
from gateway.config_housekeeping import HousekeepingSettings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def instance(conf_dir):
    path = conf_dir / "ivoms.toml"
    assert main(["--config", str(path), "init", "--demo"]) == 0
    return str(path)


def ivoms(*args):
    """The CLI in its own process (C{run} starts a reactor)."""
    exe = os.path.join(os.path.dirname(sys.executable), "ivoms")
    p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, cwd=REPO)
    return p.returncode, p.stdout, p.stderr


def test_list_shows_every_job_with_its_schedule(instance, capsys):
    capsys.readouterr()
    assert main(["--config", instance, "housekeeping", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("schedules are UTC")
    for job, sched in [("expire", "5 0 * * *"), ("reconcile", "@every 60s +start"),
                       ("lift_bars", "20 * * * *"), ("purge", "30 2 * * *"),
                       ("forget_requests", "*/10 * * * *"),
                       ("daily_report", "15 0 * * *"), ("near_expiry", "0 6 * * *")]:
        line = next(ln for ln in out.splitlines() if ln.startswith(job + " "))
        assert sched in line and "never" in line


@pytest.mark.integration
def test_run_dry_run_and_history(instance, capsys):
    rc, out, err = ivoms("--config", instance, "housekeeping", "run", "expire", "--dry-run")
    assert rc == 0, err
    assert out.splitlines()[0] == "expire: dry-run, 0 row(s) (run 1)"
    rc, out, err = ivoms("--config", instance, "housekeeping", "run", "daily_report")
    assert rc == 0, err
    assert "wrote " in out and "stock-" in out
    reports = os.path.join(os.path.dirname(instance), "var", "reports")
    assert any(f.startswith("stock-") for f in os.listdir(reports))
    capsys.readouterr()
    assert main(["--config", instance, "housekeeping", "history"]) == 0
    out = capsys.readouterr().out
    assert "daily_report" in out and "dry-run" in out and "node1" in out
    assert main(["--config", instance, "housekeeping", "list"]) == 0
    assert "dry-run, 0 row(s)" in capsys.readouterr().out


def test_run_an_unknown_job(instance, capsys):
    assert main(["--config", instance, "housekeeping", "run", "nope"]) == 1
    assert "unknown housekeeping job 'nope'" in capsys.readouterr().err


@pytest.mark.integration
def test_run_while_the_lease_is_held_elsewhere(instance, capsys):
    from core.db import Store
    from core.housekeeping import leases
    from core.timeutil import now_ms
    store = Store(load_config(instance).database_url)
    try:
        store.run_sync(leases.acquire, "purge", "node9:abcd", now_ms(), 600_000)
    finally:
        store.dispose()
    rc, out, err = ivoms("--config", instance, "housekeeping", "run", "purge")
    assert rc == 4, (out, err)
    assert "purge: skipped" in out and "running elsewhere (node9:abcd" in out


# -- settings ---------------------------------------------------------------------------
def _edit(conf_dir, old, new):
    path = conf_dir / "ivoms.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return str(path)


def test_shipped_block_shows_every_default(conf_dir):
    cfg = load_config(str(conf_dir / "ivoms.toml"))
    hk = cfg.housekeeping
    d = HousekeepingSettings()
    for name in ("expire", "reconcile", "lift_bars", "near_expiry"):
        assert hk.job(name) == d.job(name)
    assert (hk.chunk_size, hk.chunk_pause, hk.lease_seconds, hk.enabled) == \
        (d.chunk_size, d.chunk_pause, d.lease_seconds, d.enabled)
    # folders resolve against the config folder
    assert hk.daily_report.folder == str(conf_dir / "var" / "reports")
    assert hk.purge.folder == str(conf_dir / "var" / "archive")
    assert (hk.purge.mode, hk.purge.older_than_days) == ("report-only", d.purge.older_than_days)


@pytest.mark.parametrize("old, new, key, problem", [
    ('schedule = "5 0 * * *"', 'schedule = "5 0 * *"', "housekeeping.expire.schedule",
     "expected 5 fields"),
    ('schedule = "20 * * * *"', 'schedule = "61 * * * *"', "housekeeping.lift_bars.schedule",
     "minute 61 is outside 0-59"),
    ('mode = "report-only"', 'mode = "delete"', "housekeeping.purge.mode", "must be one of"),
    ("older_than_days = 180", "older_than_days = 0", "housekeeping.purge.older_than_days",
     "must be greater than 0"),
    ("\nchunk_size = 1000\n", "\nchunk_size = -1\n", "housekeeping.chunk_size",
     "must be greater than 0"),
    ("threshold = 1", "threshold = 1\nfoo = 2", "housekeeping.near_expiry.foo", "unknown key"),
])
def test_bad_settings_name_the_key(conf_dir, old, new, key, problem):
    path = _edit(conf_dir, old, new)
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    msg = str(ei.value)
    assert msg.startswith("%s: %s: " % (path, key)) and problem in msg


def test_service_tree_schedules_enabled_jobs(instance, conf_dir):
    from twisted.internet import reactor
    from gateway.service import make_service
    path = _edit(conf_dir, 'enabled = true\nschedule = "30 2 * * *"',
                 'enabled = false\nschedule = "30 2 * * *"')
    sched = make_service(load_config(path), reactor).getServiceNamed("housekeeping")
    assert set(sched.plans) == {"expire", "reconcile", "lift_bars", "forget_requests",
                                "daily_report", "near_expiry"}
    assert sched.plans["reconcile"].run_at_start
    off = _edit(conf_dir, "enabled = true\n# Rows a long job", "enabled = false\n# Rows a long job")
    assert make_service(load_config(off), reactor).getServiceNamed("housekeeping").plans == {}
