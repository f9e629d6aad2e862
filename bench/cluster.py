"""Benchmark: one node, then two nodes, on one PostgreSQL database, over SMPP.

Creates a fresh PostgreSQL database (C{IVOMS_PG_ADMIN_URL}, default the
server at 127.0.0.1:5432) and two node folders (a copy of C{conf/} each,
its own node name and ports, the embedded ledger, the same key file).
Vouchers are made with the C{ivoms} command line (C{init}, C{generate},
C{vouchers set-state available}); the benchmark reads their HRNs with the
key file, as a partner's export would hand them out.  Then, in the same run:

1. C{ivoms run} node1 alone: the SMPP load generator (C{bench/smpp_load.py}
   in its own process) binds B transceivers to node1 and keeps W MOs in
   flight on each, for at most C{--seconds} or C{--vouchers} MOs;
2. node2 started too: the same generator, its binds spread over both nodes.

Prints, per phase, activations/s, p50/p99 (MO sent to MT reply received),
successes (from the database, per node), the status of any MO refused and
what the nodes' log says about it (the result, the exception behind a
failure, units run again after a deadlock), and at the end a consistency
check of the database: every used voucher credited exactly once with a
successful transaction, none pending.  Everything listens on loopback; the nodes are
stopped and the database dropped at the end.

On a machine with few cores, PostgreSQL, both nodes and the load generator
share them: the figures are bounded by that machine.  A node is one Python
process (one reactor thread), so a second node can put an idle core to
work; with every core busy it adds only its own overhead.

    python bench/cluster.py [--vouchers N] [--seconds S] [--binds B] [--window W] [--per-number N]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.chaos import Node, edit_once  # noqa: E402
from bench.common import PG_ADMIN_URL, batch_hrns, credit_check, pg_admin  # noqa: E402
from protocols.smpp.errors import status_name  # noqa: E402

VOUCHER_TYPE = "EUR5"


def cluster_node(folder: str, name: str, url: str, writers: int, log) -> Node:
    """A node folder for the cluster: PostgreSQL at C{url}, node name C{name},
    C{writers} writer threads, SMPP account bench/bench (no metrics listener, as
    every L{Node})."""
    node = Node(folder, "ledger", log)
    node.name = name
    with open(node.path, encoding="utf-8") as f:
        text = f.read()
    # the shipped schedules and retries, not the drill's short ones
    text = edit_once(text, r'^reconcile_after_seconds = \d+', 'reconcile_after_seconds = 120')
    text = edit_once(text, r'^reconcile_interval_seconds = \d+', 'reconcile_interval_seconds = 60')
    text = edit_once(text, r'^reply_retry_seconds = 1.0\n', '')
    text = edit_once(text, r'^url = "sqlite:///var/ivoms.db"', 'url = "%s"' % url)
    text = edit_once(text, r'^name = "node1"', 'name = "%s"' % name)
    text = edit_once(text, r'^writer_threads = 0', 'writer_threads = %d' % writers)
    text = edit_once(text, r'^system_id = "demo"', 'system_id = "bench"')
    text = edit_once(text, r'^password = "demo1234"', 'password = "bench"')
    with open(node.path, "w", encoding="utf-8") as f:
        f.write(text)
    return node


def make_stock(node: Node, count: int) -> list[str]:
    """Generate C{count} vouchers with the command line, make them available; their HRNs."""
    from core import keys
    from core.crypto import VoucherCipher
    from core.db import Store
    from gateway.config import load_config
    out = node.cli("generate", "--type", VOUCHER_TYPE, "--count", str(count), "--by", "bench")
    batch_id = int(out.split("batch ", 1)[1].split(":", 1)[0])
    node.cli("vouchers", "set-state", "available", "--batch", str(batch_id))
    config = load_config(node.path)
    store = Store(config.database.url)
    try:
        return batch_hrns(store, VoucherCipher(keys.load(config.keys.file)), batch_id)
    finally:
        store.dispose()


def log_size(log) -> int:
    """How many bytes the nodes have written to the log file C{log} so far."""
    log.flush()
    return os.fstat(log.fileno()).st_size


def drive(ports: list[int], hrns: list[str], args, workdir: str) -> dict:
    """Run the SMPP load generator process against C{ports}; its JSON result."""
    hrn_file = os.path.join(workdir, "hrns-%s.txt" % uuid.uuid4().hex[:6])
    with open(hrn_file, "w") as f:
        f.write("\n".join(hrns))
    cmd = [sys.executable, os.path.join(REPO, "bench", "smpp_load.py"), "--generator",
           "--ports", ",".join(str(p) for p in ports), "--hrn-file", hrn_file,
           "--binds", str(args.binds), "--window", str(args.window),
           "--seconds", str(args.seconds), "--timeout", str(args.seconds + 60),
           "--per-number", str(args.per_number)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 90,
                          env=dict(os.environ, PYTHONPATH=REPO))
    if done.returncode != 0:
        raise RuntimeError("load generator failed: %s" % done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def successes(url: str) -> int:
    """Successful activations in the database at C{url}."""
    from sqlalchemy import func, select

    from core.db import Store
    from core.schema import txn
    store = Store(url)
    try:
        return store.run_sync(lambda tx: tx.execute(
            select(func.count()).select_from(txn).where(txn.c.state == "success")).scalar())
    finally:
        store.dispose()


_RESULT = re.compile(r"MO \S+ from \S+: ([A-Z_]+) \(txn")
_CONFLICT = re.compile(r"(\d+) unit\(s\) failed on a conflict with a concurrent transaction "
                       r"\((.*)\); running them again")


def log_reasons(text: str) -> str | None:
    """What the nodes' log C{text} says went wrong: the results of MOs that
    were not successes (the exception behind each unexpected failure), units
    run again after a conflict with a concurrent transaction (a deadlock),
    database outages; None when it says nothing of the kind."""
    results: dict[str, int] = {}
    failures: dict[str, int] = {}
    conflicts: dict[str, int] = {}
    outages = 0
    failing = False
    for line in text.splitlines():
        if failing and line.startswith("\t") and not line.startswith(("\t ", "\tTraceback")):
            name = line.strip().split(":", 1)[0]
            failures[name] = failures.get(name, 0) + 1
            failing = False
        if "activation failed unexpectedly" in line or "activation of MO" in line:
            failing = True
        elif "database unavailable (" in line:
            outages += 1
        m = _RESULT.search(line)
        if m:
            results[m.group(1)] = results.get(m.group(1), 0) + 1
        m = _CONFLICT.search(line)
        if m:
            conflicts[m.group(2)] = conflicts.get(m.group(2), 0) + int(m.group(1))
    said = []
    if results:
        said.append("MOs not credited, by result: %s%s" % (
            results, " (failed on: %s)" % failures if failures else ""))
    if conflicts:
        said.append("units run again after a conflict with a concurrent transaction: %s" % conflicts)
    if outages:
        said.append("database unavailable %d time(s)" % outages)
    return "; ".join(said) or None


def run(args) -> list[str]:
    db = "ivoms_cluster_" + uuid.uuid4().hex[:8]
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db
    workdir = tempfile.mkdtemp(prefix="ivoms-cluster-")
    log = open(os.path.join(workdir, "nodes.log"), "wb")
    pg_admin("CREATE DATABASE " + db)
    if args.deadlock_timeout:
        pg_admin("ALTER DATABASE %s SET deadlock_timeout = '%s'" % (db, args.deadlock_timeout))
    nodes = []
    lines = []
    phases = []
    try:
        n1 = cluster_node(os.path.join(workdir, "n1"), "node1", url, args.writers, log)
        n2 = cluster_node(os.path.join(workdir, "n2"), "node2", url, args.writers, log)
        nodes = [n1, n2]
        n1.cli("init", "--admin-password", "cluster-bench-admin-1")
        os.makedirs(os.path.join(os.path.dirname(n2.path), "var"), exist_ok=True)
        shutil.copy2(os.path.join(os.path.dirname(n1.path), "var", "keys.json"),
                     os.path.join(os.path.dirname(n2.path), "var", "keys.json"))
        print("generating 2 x %d vouchers with 'ivoms generate' ..." % args.vouchers, flush=True)
        stock = [make_stock(n1, args.vouchers), make_stock(n1, args.vouchers)]
        log_at = [log_size(log)]          # where each phase's part of nodes.log begins
        print("phase 1: node1 alone (started in %.1f s)" % n1.start(), flush=True)
        before = successes(url)
        phases.append(("1 node ", [n1], drive([n1.smpp_port], stock[0], args, workdir), before))
        log_at.append(log_size(log))
        print("phase 2: node1 + node2 (node2 started in %.1f s)" % n2.start(), flush=True)
        before = successes(url)
        phases.append(("2 nodes", [n1, n2],
                       drive([n1.smpp_port, n2.smpp_port], stock[1], args, workdir), before))
        for n in nodes:
            n.stop()
        after = successes(url)
        log_at.append(log_size(log))
        with open(os.path.join(workdir, "nodes.log"), "rb") as f:
            logged = f.read()
        lines.append("cluster on one PostgreSQL: SMPP, %d binds x window %d%s, embedded ledger, "
                     "%d writer threads per node, at most %d MOs or %.0f s per phase"
                     % (args.binds, args.window, (
                         " (%d MOs in flight per number)" % args.per_number
                         if args.per_number > 1 else ""),
                        args.writers, args.vouchers, args.seconds)
                     + (", deadlock_timeout %s" % args.deadlock_timeout
                        if args.deadlock_timeout else ""))
        for i, (label, _, res, before) in enumerate(phases):
            upto = phases[i + 1][3] if i + 1 < len(phases) else after
            names = {str(n.smpp_port): n.name for n in nodes}
            per_node = {names.get(p, p): c for p, c in sorted(res["by_port"].items())}
            lines.append("  %s: %7.0f activations/s  p50 %6.1f ms  p99 %6.1f ms  %d replies "
                         "%s, %d errors, %d successes in the database"
                         % (label, res["rate"], res["p50"] * 1000, res["p99"] * 1000,
                            res["replies"], per_node, res["errors"], upto - before))
            lines.append("           reply texts: %s%s" % (res["texts"], (
                "; MOs refused (submit_sm_resp status): %s" % {
                    "%s (%s)" % (status_name(int(k, 16)), k): v
                    for k, v in res["error_statuses"].items()})
                if res["errors"] else ""))
            if res.get("stale"):
                lines.append("           (%d replies received again, sent once more by a "
                             "node's sweep, ignored)" % res["stale"])
            said = log_reasons(logged[log_at[i]:log_at[i + 1]].decode("utf-8", "replace"))
            if said or res["errors"]:
                lines.append("           node log: %s" % (said or "no reason logged"))
        lines.append("  ratio 2 nodes / 1 node: %.2f" % (phases[1][2]["rate"] / phases[0][2]["rate"]))
        lines.append("  cores: %d, load average %.1f; PostgreSQL, the nodes and the load generator "
                     "share them: a figure bounded by this machine, not a measure of how nodes "
                     "scale on servers of their own" % (os.cpu_count(), os.getloadavg()[0]))
        from core.db import Store
        store = Store(url)
        try:
            lines.append("  " + credit_check(store))
        finally:
            store.dispose()
    finally:
        for n in nodes:
            n.stop()
        log.close()
        pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        refused = any(res["errors"] for _, _, res, _ in phases) if nodes else False
        if args.keep or refused:
            print("node folders and log kept in %s%s" % (
                workdir, " (some MOs were refused: see nodes.log)" if refused else ""))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vouchers", type=int, default=20000, help="vouchers (most MOs) per phase")
    ap.add_argument("--seconds", type=float, default=20.0, help="longest load per phase")
    ap.add_argument("--binds", type=int, default=4, help="SMPP binds of the load generator")
    ap.add_argument("--window", type=int, default=10, help="MOs in flight per bind")
    ap.add_argument("--writers", type=int, default=2, help="[database] writer_threads per node")
    ap.add_argument("--per-number", type=int, default=1,
                    help="MOs in flight per subscriber number (2 or more: a subscriber's "
                         "recharges run at once, as when one sends two vouchers in a row)")
    ap.add_argument("--deadlock-timeout", default="",
                    help="PostgreSQL deadlock_timeout of the database (e.g. 100ms; "
                         "default: the server's, 1s unless changed)")
    ap.add_argument("--keep", action="store_true", help="keep the node folders and their log")
    args = ap.parse_args()
    t0 = time.monotonic()
    for line in run(args):
        print(line)
    print("  (run took %.0f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
