"""The node's service tree and the activation CLI commands on a copied conf/ folder."""
from __future__ import annotations

import re
import time

import pytest
import pytest_twisted
from twisted.internet import task

from gateway.cli import main
from gateway.config import load_config


@pytest.fixture
def instance(conf_dir):
    """A self-contained instance: conf copy, HTTP on an ephemeral port, initialised with demo stock."""
    path = conf_dir / "ivoms.toml"
    text = path.read_text()
    for port in ("8080", "8081", "2775", "9464"):     # every listener on an ephemeral port
        text = text.replace('"tcp:%s:interface=127.0.0.1"' % port, '"tcp:0:interface=127.0.0.1"')
    path.write_text(text)
    assert main(["--config", str(path), "init", "--demo"]) == 0
    return str(path)


def _hrn(capsys, cfg, serial):
    capsys.readouterr()
    assert main(["--config", cfg, "vouchers", "reveal", str(serial), "--yes"]) == 0
    return capsys.readouterr().out.strip()


def ivoms(*args, stdin=None):
    """Run the C{ivoms} CLI in its own process (commands that run a reactor)."""
    import os
    import subprocess
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "ivoms")
    p = subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.integration
def test_activate_and_transactions_cli(instance, capsys):
    hrn = _hrn(capsys, instance, 1000000001)
    rc, out, _ = ivoms("--config", instance, "activate", "--msisdn", "0641234567", "--hrn", hrn)
    assert rc == 0
    assert "0 SUCCESS" in out and "5.00 EUR to 381641234567" in out and hrn not in out
    rc, out, _ = ivoms("--config", instance, "activate", "--msisdn", "0641234567", "--hrn", hrn)
    assert rc == 3 and "107 VOUCHER_ALREADY_USED_BY_YOU" in out
    assert main(["--config", instance, "transactions", "--msisdn", "+381641234567"]) == 0
    out = capsys.readouterr().out
    assert out.count("381641234567") >= 2 and "SUCCESS" in out and "107" in out
    assert main(["--config", instance, "transactions", "--serial", "1000000001"]) == 0
    assert len(re.findall(r"^\d{4}-", capsys.readouterr().out, re.M)) == 2


@pytest.mark.integration
def test_fraud_cli_lists_and_unbars(instance, capsys):
    for _ in range(5):
        assert ivoms("--config", instance, "activate", "--msisdn", "0647777777",
                     "--hrn", "12345678901234")[0] == 3
    assert main(["--config", instance, "fraud", "list"]) == 0
    out = capsys.readouterr().out
    assert "msisdn:381647777777" in out and "barred until" in out
    assert "source:cli:cli" in out
    assert main(["--config", instance, "fraud", "unbar", "0647777777"]) == 0
    hrn = _hrn(capsys, instance, 1000000002)
    rc, out, _ = ivoms("--config", instance, "activate", "--msisdn", "0647777777", "--hrn", hrn)
    assert rc == 0, out


@pytest.mark.integration
def test_activate_reads_hrn_from_stdin(instance, capsys):
    hrn = _hrn(capsys, instance, 1000000003)
    rc, out, _ = ivoms("--config", instance, "activate", "--msisdn", "0641234567", "--hrn", "-",
                       stdin=hrn + "\n")
    assert rc == 0 and "SUCCESS" in out
    rc, out, _ = ivoms("--config", instance, "reconcile", "--older-than", "0")
    assert rc == 0 and "examined 0" in out


@pytest_twisted.ensureDeferred
async def test_service_tree_reconciles_at_start_and_on_schedule(instance, reactor):
    from sqlalchemy import update

    from core.schema import txn, voucher
    from gateway.service import make_service
    cfg = load_config(instance)
    clock = task.Clock()
    clock.advance(time.time())
    top = make_service(cfg, reactor, clock)
    node = top.node
    assert [s.name for s in top] == ["store", "housekeeping", "http", "smpp", "admin", "metrics"]
    # a reservation left pending by a "previous life", old enough to reconcile
    old = int((clock.seconds() - 3600) * 1000)

    def pending(tx):
        tx.execute(update(voucher).where(voucher.c.serial == 1000000010)
                   .values(state="reserved", txn_id="t-old", used_by="381641234567"))
        tx.insert(txn, {"id": "t-old", "kind": "activation", "msisdn": "381641234567",
                        "account": "381641234567", "serial": 1000000010, "channel": "sms",
                        "state": "pending", "result_code": 151, "amount": 500, "currency": "EUR",
                        "validity_days": 30, "started_at": old, "reserved_at": old})
    node.store.run_sync(pending)
    # the Deferred of each reconcile run the scheduler starts: the test waits for
    # each run itself instead of polling the store against a wall-clock timeout
    scheduler = top.getServiceNamed("housekeeping")
    started, run = [], scheduler.housekeeper.run

    def watched_run(job, **kw):
        d = run(job, **kw)
        if job == "reconcile":
            started.append(d)
        return d
    scheduler.housekeeper.run = watched_run
    top.startService()
    try:
        await scheduler.armed
        assert len(started) == 1                 # reconciled at start-up
        await started[0]
        row = dict(zip(txn.c.keys(), node.store.run_sync(lambda tx: tx.execute(
            txn.select().where(txn.c.id == "t-old")).first())))
        assert row["state"] == "failed" and row["result_code"] == 151   # ledger never credited it
        runs = node.runner.units
        clock.advance(cfg.activation.reconcile_interval_seconds)
        assert len(started) == 2                 # and on its schedule
        await started[1]
        assert node.runner.units > runs          # the scheduled run queried the store again
    finally:
        await top.stopService()
    assert not clock.getDelayedCalls()


def test_twist_plugin_builds_the_same_tree(instance):
    from twisted.internet import reactor
    from twisted.plugin import IPlugin, getPlugins
    from twisted.application.service import IServiceMaker
    makers = {p.tapname: p for p in getPlugins(IServiceMaker) if IPlugin.providedBy(p)}
    assert "ivoms" in makers
    opts = makers["ivoms"].options()
    opts.parseOptions(["--config", instance])
    svc = makers["ivoms"].makeService(opts)
    from gateway.service import make_service
    assert [s.name for s in svc] == [s.name for s in make_service(load_config(instance), reactor)]


def test_run_refuses_an_uninitialised_database(conf_dir, capsys):
    assert main(["--config", str(conf_dir / "ivoms.toml"), "run"]) == 1
    assert "ivoms init" in capsys.readouterr().err
