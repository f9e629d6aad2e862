"""The shipped systemd unit (packaging/ivoms.service) passes C{systemd-analyze verify} (issue 18).

The unit names /opt/ivoms/.venv/bin/ivoms; the check runs on a copy naming this
installation's C{ivoms} script, because C{verify} refuses a command that does
not exist.  Any warning (an unknown key, a bad value) fails the test, not only
errors.
"""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(REPO, "packaging", "ivoms.service")
SHIPPED_BIN = "/opt/ivoms/.venv/bin/ivoms"


def _unit_text() -> str:
    with open(UNIT) as f:
        return f.read()


def test_the_unit_runs_ivoms_as_its_own_user_with_restart_and_limits():
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str
    p.read_string(_unit_text())
    s = p["Service"]
    assert s["ExecStart"] == SHIPPED_BIN + " run"
    assert s["ExecStartPre"] == SHIPPED_BIN + " check-config"
    assert s["User"] == "ivoms" and s["Restart"] == "on-failure"
    assert s["KillSignal"] == "SIGTERM" and int(s["LimitNOFILE"]) >= 65536
    # systemd waits longer than the node's own bound (shutdown_timeout 30 s + watchdog 5 s)
    assert int(s["TimeoutStopSec"]) > 35
    assert p["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_analyze_verify_accepts_the_unit_without_warnings(tmp_path):
    ivoms = os.path.join(os.path.dirname(sys.executable), "ivoms")
    if not os.access(ivoms, os.X_OK):
        ivoms = shutil.which("ivoms")
    assert ivoms, "the ivoms console script is not installed"
    unit = tmp_path / "ivoms.service"
    unit.write_text(_unit_text().replace(SHIPPED_BIN, ivoms))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    complaints = [line for line in (out.stdout + out.stderr).splitlines()
                  if "ivoms.service" in line]
    assert complaints == []
