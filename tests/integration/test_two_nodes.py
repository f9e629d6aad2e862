"""Two C{ivoms run} nodes on one PostgreSQL database (issue 19, point 3; docs/cluster.md).

Each node has its own config folder, node name and ports; the database is
created fresh for this module.  Consecutive requests of one client go to
both nodes: a GUI session, a USSD dialogue, a WS-Security nonce and a
source's failure count are the cluster's, not one node's.  One HRN raced
over both nodes is used once; a node killed with SIGKILL under load leaves
every used voucher credited exactly once, and the other node serves on.
"""
from __future__ import annotations

import concurrent.futures
import os
import shutil
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, pg_admin
from tests.integration.cluster_nodes import (
    ADMIN_PASSWORD, THROTTLE_LIMIT, THROTTLED, Browser, ClusterNode, soap_activate, ussd,
    wsse_digest)

pytestmark = pytest.mark.integration
LOAD = 1000


def _stock(node, count: int) -> list[str]:
    """C{count} available vouchers in the shared database; their HRNs."""
    from sqlalchemy import select

    from core import keys
    from core.crypto import VoucherCipher
    from core.db import Store
    from core.generation import generate
    from core.schema import voucher
    from core.timeutil import DAY_MS, now_ms
    from core.vouchers import Selection, set_state
    from gateway.config import load_config
    config = load_config(node.path)
    cipher = VoucherCipher(keys.load(config.keys.file))
    store = Store(config.database.url)
    try:
        info = generate(store, cipher, config.voucher_types["EUR5"], count, now_ms() + 30 * DAY_MS,
                        requested_by="test", serial_start=config.generation.serial_start,
                        chunk_size=count)
        store.run_sync(set_state, Selection.of_batch(info.batch_id), "available",
                       actor="test", reason=None, now=now_ms())
        rows = store.run_sync(lambda tx: tx.execute(
            select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
            .where(voucher.c.batch_id == info.batch_id).order_by(voucher.c.serial)).rows)
        return [cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows]
    finally:
        store.dispose()


class Cluster:
    def __init__(self, url, a, b, hrns):
        self.url, self.a, self.b, self.hrns = url, a, b, hrns
        self.started = time.time()

    def query(self, sql, **params):
        eng = create_engine(self.url)
        try:
            with eng.connect() as c:
                return c.execute(text(sql), params).fetchall()
        finally:
            eng.dispose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_server):
    name = "ivoms_2n_" + uuid.uuid4().hex[:10]
    pg_admin("CREATE DATABASE " + name)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    base = str(tmp_path_factory.mktemp("cluster"))
    a, b = ClusterNode(base, "node-a", url), ClusterNode(base, "node-b", url)
    try:
        a.cli("init", "--admin-password", ADMIN_PASSWORD)     # keys, schema, admin user
        os.makedirs(os.path.join(b.folder, "var"), exist_ok=True)
        shutil.copyfile(os.path.join(a.folder, "var", "keys.json"),
                        os.path.join(b.folder, "var", "keys.json"))    # one key ring
        os.chmod(os.path.join(b.folder, "var", "keys.json"), 0o600)
        hrns = _stock(a, LOAD + 40)
        a.start()
        b.start()
        yield Cluster(url, a, b, hrns)
    finally:
        a.stop()
        b.stop()
        pg_admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def test_an_admin_logged_in_on_node_a_keeps_the_session_on_node_b(cluster):
    a, b = cluster.a.admin_port, cluster.b.admin_port
    user = Browser()
    assert user.get(b, "/login")[0] == 200                  # the form from node B ...
    status, _, headers = user.post(a, "/login", {"username": "admin", "password": ADMIN_PASSWORD})
    # ... posted to node A
    assert status == 303 and headers["location"] == "/"
    status, body, _ = user.get(b, "/")                      # node B knows the session
    assert status == 200 and b"admin" in body
    # a form posted to node A (its CSRF token is the session's), the message shown by node B
    status, _, headers = user.post(a, "/care/unbar", {"msisdn": "381641111111"})
    assert status == 303
    status, body, _ = user.get(b, headers["location"])
    assert status == 200 and b"unbarred" in body
    assert b"unbarred" not in user.get(a, headers["location"])[1]      # shown once
    # logged out on node B: the session is gone on node A as well
    status, _, headers = user.post(b, "/logout", {})
    assert status == 303 and headers["location"] == "/login"
    status, _, headers = user.get(a, "/")
    assert status == 303 and headers["location"] == "/login"


def test_the_same_hrn_raced_20_times_over_both_nodes_succeeds_once(cluster):
    hrn = cluster.hrns[LOAD]
    ports = [cluster.a.http_port, cluster.b.http_port]
    barrier = threading.Barrier(20)

    def one(i):
        barrier.wait()
        return soap_activate(ports[i % 2], "3816420%05d" % i, hrn, "race-%d" % i)[1]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20)))
    assert codes.count(0) == 1, codes
    assert set(codes) - {0} <= {108, 113}, codes            # used by another, or in flight
    won = cluster.query("SELECT id FROM txn WHERE channel_ref LIKE 'race-%' "
                        "AND state = 'success'")
    assert len(won) == 1
    credits = cluster.query("SELECT count(*) FROM ledger_entry WHERE idempotency_key = :k "
                            "AND outcome = 'credited'", k=won[0][0])
    assert credits[0][0] == 1


def test_a_soap_nonce_used_on_node_a_is_refused_on_node_b(cluster):
    header = wsse_digest(("demo-shop", "demo-shop-secret-change-me"))
    a, b = cluster.a.http_port, cluster.b.http_port
    status, code, _ = soap_activate(a, "381642200001", cluster.hrns[LOAD + 1], "nonce-1",
                                    header=header)
    assert (status, code) == (200, 0)
    # the same token (nonce and Created) replayed to node B, with another voucher
    status, code, body = soap_activate(b, "381642200002", cluster.hrns[LOAD + 2], "nonce-2",
                                       header=header)
    assert status == 401 and code is None and b"authentication failed" in body, body[:500]
    assert "(wsse-digest): nonce replayed" in cluster.b.log()
    # ... and to node A again
    status, code, _ = soap_activate(a, "381642200002", cluster.hrns[LOAD + 2], "nonce-3",
                                    header=header)
    assert status == 401 and code is None
    assert "(wsse-digest): nonce replayed" in cluster.a.log()
    # a fresh token is accepted by node B
    status, code, _ = soap_activate(b, "381642200002", cluster.hrns[LOAD + 2], "nonce-4",
                                    header=wsse_digest(("demo-shop",
                                                        "demo-shop-secret-change-me")))
    assert (status, code) == (200, 0)


def test_a_ussd_dialogue_whose_steps_alternate_between_nodes(cluster):
    a, b = cluster.a.http_port, cluster.b.http_port
    msisdn = "+381642300001"
    op, menu = ussd(a, "cl-dlg-1", "begin", "*123#", msisdn)
    assert op == "continue" and "1" in menu
    op, prompt = ussd(b, "cl-dlg-1", "continue", "1", None)      # recharge my number
    assert op == "continue" and prompt != menu
    op, result = ussd(a, "cl-dlg-1", "continue", cluster.hrns[LOAD + 3], None)
    assert op == "end" and "credited" in result.lower(), result
    op, gone = ussd(b, "cl-dlg-1", "continue", "1", None)         # ended on every node
    assert op == "end" and "credited" not in gone.lower()
    rows = cluster.query("SELECT channel, state FROM txn WHERE channel_ref = 'cl-dlg-1'")
    assert [tuple(r) for r in rows] == [("ussd", "success")]
    assert cluster.query("SELECT count(*) FROM ussd_dialogue")[0][0] == 0


def test_a_sources_failures_on_both_nodes_add_up(cluster):
    a, b = cluster.a.http_port, cluster.b.http_port
    left = 60 - time.time() % 60
    if left < 15:                        # the counters' window is the minute: stay inside one
        time.sleep(left + 0.5)
    bad = "1234567890123456"             # no voucher has this HRN: 119, a counted failure
    n = iter(range(10**6))

    def attempt(port):
        return soap_activate(port, "38164250%04d" % next(n), bad, "thr",
                             account=THROTTLED)[1]
    first = [attempt(a) for _ in range(THROTTLE_LIMIT - 2)]
    second = [attempt(b) for _ in range(2)]
    assert first + second == [119] * THROTTLE_LIMIT
    # node B saw only 2 failures itself; with node A's they reach the limit
    assert attempt(b) == 153
    # node A learns the total with its next failure at the latest: the shared
    # counter's answer to that failure may come just after the reply to it
    assert attempt(a) in (119, 153)
    time.sleep(0.5)
    assert attempt(a) == 153


def test_a_node_killed_under_load_the_other_serves_and_every_credit_is_once(cluster):
    nodes = [cluster.a, cluster.b]
    down = threading.Event()
    done = []
    lock = threading.Lock()
    served_by_b_after_kill = []

    def worker(items):
        for i in items:
            hrn, ref, msisdn = cluster.hrns[i], "load-%d" % i, "3816430%05d" % i
            node = nodes[i % 2]
            for _ in range(50):
                if down.is_set() and node is cluster.a:
                    node = cluster.b
                try:
                    status, code, _ = soap_activate(node.http_port, msisdn, hrn, ref)
                except OSError:
                    node = cluster.b                     # node A died: the other one serves
                    continue
                if code in (0, 107):                     # 107: a retry of one already done
                    break
                time.sleep(0.05)                         # 152/113: in flight when A died
            else:
                raise AssertionError("activation %d never answered" % i)
            with lock:
                done.append((i, code))
                if down.is_set() and node is cluster.b:
                    served_by_b_after_kill.append(i)
    work = [list(range(k, LOAD, 8)) for k in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(worker, w) for w in work]
        while len(done) < LOAD * 3 // 10:
            time.sleep(0.01)
        cluster.a.kill()                                 # SIGKILL while ~700 remain
        down.set()
        for f in futures:
            f.result(timeout=180)
    assert len(done) == LOAD and len(served_by_b_after_kill) > LOAD // 2
    restarted_at = int(time.time() * 1000)
    cluster.a.start()                                    # reconciles at start
    deadline = time.monotonic() + 60
    while not cluster.query("SELECT 1 FROM housekeeping_run WHERE job = 'reconcile' "
                            "AND node = 'node-a' AND started_at >= :t AND outcome = 'ok'",
                            t=restarted_at):
        assert time.monotonic() < deadline, "node-a did not reconcile after its restart"
        time.sleep(0.2)
    # every voucher of the load is used, credited exactly once, by a successful transaction
    used = cluster.query("SELECT v.txn_id FROM voucher v JOIN txn t ON t.id = v.txn_id "
                         "WHERE v.state = 'used' AND t.channel_ref LIKE 'load-%'")
    assert len(used) == LOAD
    credits = dict(cluster.query(
        "SELECT idempotency_key, count(*) FROM ledger_entry WHERE outcome = 'credited' "
        "GROUP BY idempotency_key"))
    assert all(credits.get(txn_id) == 1 for (txn_id,) in used)
    assert cluster.query("SELECT count(*) FROM txn WHERE state = 'pending'")[0][0] == 0
    ok = cluster.query("SELECT count(*) FROM txn WHERE state = 'success'")[0][0]
    all_used = cluster.query("SELECT count(*) FROM voucher WHERE state = 'used'")[0][0]
    assert ok == all_used == sum(credits.values())       # nothing credited without its voucher


def test_each_scheduled_housekeeping_firing_runs_once(cluster):
    """expire and lift_bars fire every minute on both nodes; each firing runs on one."""
    since = int(cluster.started * 1000)

    def firings():
        rows = cluster.query("SELECT job, started_at, outcome FROM housekeeping_run "
                             "WHERE job IN ('expire', 'lift_bars') AND started_at >= :t",
                             t=since)
        per = {}
        for job, started, outcome in rows:
            per.setdefault((job, started // 60000), []).append(outcome)
        return per
    deadline = time.monotonic() + 75
    while len(firings()) < 2:            # at least one firing of each job
        assert time.monotonic() < deadline, firings()
        time.sleep(1)
    time.sleep(2)                        # a late second run of the same firing would show now
    per = firings()
    assert all(outcomes == ["ok"] for outcomes in per.values()), per
    logs = cluster.a.log() + cluster.b.log()
    for job, minute in per:
        assert "housekeeping %s: started" % job in logs
    assert "skipped" in logs             # the other node's firing stood aside
