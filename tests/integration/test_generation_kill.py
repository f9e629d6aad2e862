"""A batch is atomic even under C{kill -9}: a real C{ivoms generate} process is killed
mid-batch; none of its vouchers can be used, and the next run marks the batch failed
and removes them (issue 2, point 6 and 11)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from core.db import Store
from core.generation import recover_interrupted
from core.keys import load as load_keys
from core.crypto import VoucherCipher
from core.schema import batch, voucher
from core.timeutil import now_ms
from core.vouchers import Selection, set_state
from gateway.cli import main as ivoms_main
from tests.foundation_helpers import set_toml_key

pytestmark = pytest.mark.integration

IVOMS = os.path.join(os.path.dirname(sys.executable), "ivoms")
COUNT = 200_000
CHUNK = 200


def _configure(conf_dir, url, workers):
    path = os.path.join(str(conf_dir), "ivoms.toml")
    set_toml_key(path, "generation", "chunk_size", str(CHUNK))
    set_toml_key(path, "generation", "workers", str(workers))
    set_toml_key(path, "database", "url", '"%s"' % url)
    return path


def _group_alive(pgid):
    """Pids of live (non-zombie) processes in process group C{pgid}."""
    alive = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            alive.append(int(pid))
    return alive


def _batch_state(store):
    rows = store.run_sync(lambda tx: tx.execute(
        select(batch.c.id, batch.c.state, batch.c.generated).order_by(batch.c.id)).rows,
        read_only=True)
    return rows


def _voucher_count(store, batch_id):
    return store.run_sync(lambda tx: tx.execute(
        select(func.count()).select_from(voucher).where(voucher.c.batch_id == batch_id)).scalar(),
        read_only=True)


@pytest.mark.parametrize("db,workers", [("sqlite", 0), ("sqlite", 1), ("postgresql", 1)])
def test_kill_9_during_generation(request, conf_dir, tmp_path, capsys, db, workers):
    url = "sqlite:///var/ivoms.db" if db == "sqlite" else request.getfixturevalue("pg_url")
    config = _configure(conf_dir, url, workers)
    assert ivoms_main(["--config", config, "init", "--admin-password", "s3cret-pass"]) == 0
    capsys.readouterr()
    if db == "sqlite":
        url = "sqlite:///" + os.path.join(str(conf_dir), "var", "ivoms.db")
    store = Store(url)
    proc = subprocess.Popen([IVOMS, "--config", config, "generate", "--type", "EUR10",
                             "--count", str(COUNT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)   # its own group: workers included
    try:
        # wait until a few chunks are committed, then kill -9 the generator
        deadline = time.monotonic() + 60
        committed = 0
        while True:
            assert time.monotonic() < deadline, "no voucher committed within 60 s"
            assert proc.poll() is None, "generator exited early: %r" % (proc.communicate(),)
            rows = _batch_state(store)
            if rows:
                (bid, state, generated), = rows
                committed = _voucher_count(store, bid)
                if committed >= 2 * CHUNK:
                    break
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        out, _ = proc.communicate(timeout=10)
        assert b"batch" not in out          # it never reported success

        # the batch is left 'generating' with some committed, unusable vouchers
        (bid, state, generated), = _batch_state(store)
        assert state == "generating"
        left = _voucher_count(store, bid)
        assert 2 * CHUNK <= left < COUNT
        states = store.run_sync(lambda tx: tx.execute(
            select(voucher.c.state).where(voucher.c.batch_id == bid).distinct()).rows)
        assert states == [("generated",)]

        # nothing can make them available ...
        res = store.run_sync(set_state, Selection.of_batch(bid), "available", actor="t",
                             reason=None, now=now_ms())
        assert (res.changed, res.skipped) == (0, left)
        # ... and nothing can reserve them for an activation (the reservation's condition)
        cipher = VoucherCipher(load_keys(os.path.join(str(conf_dir), "var", "keys.json")))
        serial, key_id, ct = store.run_sync(lambda tx: tx.execute(
            select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
            .where(voucher.c.batch_id == bid).order_by(voucher.c.serial).limit(1)).first())
        hrn = cipher.decrypt(serial, key_id, bytes(ct))
        act = subprocess.run([IVOMS, "--config", config, "activate", "--msisdn", "0641234567",
                              "--hrn", hrn], capture_output=True, text=True, timeout=60)
        assert act.returncode != 0
        assert "109" in act.stdout and "VOUCHER_NOT_AVAILABLE" in act.stdout, act
        assert hrn not in act.stdout + act.stderr

        # the next generation (which runs recovery first) marks the batch failed and empties it
        assert ivoms_main(["--config", config, "generate", "--type", "EUR5", "--count", "3"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"batch \d+: 3 vouchers of EUR5", out)
        rows = _batch_state(store)
        assert rows[0][:2] == (bid, "failed")
        assert rows[1][1] == "ready"
        assert _voucher_count(store, bid) == 0
        assert ivoms_main(["--config", config, "batches"]) == 0
        listing = capsys.readouterr().out
        assert re.search(r"\b%d\s+EUR10\s+%d\s+\S+\s+failed\b" % (bid, COUNT), listing), listing
        # recovery is idempotent
        assert store.run_sync(recover_interrupted, now_ms()) == []

        # no orphaned encryption worker keeps running after its parent died
        deadline = time.monotonic() + 15
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _group_alive(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # any worker this test started
        except ProcessLookupError:
            pass
        store.dispose()
