"""Chaos soak: mixed SMS/SOAP/USSD load on a real node killed with SIGKILL, then every invariant checked.

A node (C{python -m gateway.cli --config ... run}) runs in a child process
over a fresh SQLite store, in one billing mode: the embedded ledger in the
activation's unit of work (C{ledger}), the ledger as a saga step
(C{ledger-saga}) or Diameter to the billing simulator with a journal
(C{diameter}).  Three peers keep load on it: smpplib as the SMSC (binds to
the listener, sends each MO until it is acknowledged, records every reply),
zeep on SOAP (repeats a call with the same client reference until it is
answered) and plain HTTP on USSD (replays a dialogue with the same id).  The
node is killed K times at random moments and restarted; with Diameter the
simulator is killed once too.  After a drain and reconciliation, the checks
read the database, the billing side (ledger entries or the simulator's
journal) and the peers' own records.

    python bench/chaos.py [--minutes M] [--kills K] [--mode ledger|ledger-saga|diameter|all]
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.node_process import NodeProcess, edit_once, free_port  # noqa: E402,F401  (re-exported)

MODES = ("ledger", "ledger-saga", "diameter")
SHORT_CODE = "1555"
SOAP_CLIENT = ("demo-shop", "demo-shop-secret-change-me")
SMPP_ACCOUNT = ("demo", "demo1234")


# -- the node ------------------------------------------------------------------

class Node(NodeProcess):
    """A configured instance in C{folder} and its C{ivoms run} child process."""

    def __init__(self, folder: str, mode: str, log) -> None:
        self.folder, self.mode, self.log = folder, mode, log
        self.http_port, self.smpp_port = free_port(), free_port()
        self.sim = None
        self.sim_port = free_port()
        self.journal = os.path.join(folder, "sim.journal")
        conf = os.path.join(folder, "conf")
        shutil.copytree(os.path.join(REPO, "conf"), conf, ignore=shutil.ignore_patterns("var"))
        self.path = os.path.join(conf, "ivoms.toml")
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        text = edit_once(text, r'^listen = "tcp:8080:interface=127.0.0.1"',
                         'listen = "tcp:%d:interface=127.0.0.1"' % self.http_port)
        text = edit_once(text, r'^(\[admin\]\n(?:#.*\n)*)enabled = true', r'\1enabled = false')
        text = edit_once(text, r'^listen = "tcp:9464:interface=127.0.0.1"', 'listen = ""')
        text = edit_once(text, r'^endpoint = "tcp:2775:interface=127.0.0.1"',
                         'endpoint = "tcp:%d:interface=127.0.0.1"' % self.smpp_port)
        text = edit_once(text, r'^reconcile_after_seconds = \d+', 'reconcile_after_seconds = 3')
        text = edit_once(text, r'^reconcile_interval_seconds = \d+', 'reconcile_interval_seconds = 2')
        text = edit_once(text, r'^loyalty = "loyalty.toml"\n', '')
        os.unlink(os.path.join(conf, "loyalty.toml"))      # no reward credits in the ledger
        text = edit_once(text, r'^\[smpp.channel\]\n', '[smpp.channel]\nreply_retry_seconds = 1.0\n')
        if mode == "ledger-saga":
            text = edit_once(text, r'^in_transaction = true', 'in_transaction = false')
        if mode == "diameter":
            text = edit_once(text, r'^connector = "ledger"', 'connector = "diameter"')
            text = edit_once(text, r'^peers = \[\{ host = "127.0.0.1", port = 3868',
                             'peers = [{ host = "127.0.0.1", port = %d' % self.sim_port)
            text = edit_once(text, r'^request_timeout = 5.0', 'request_timeout = 2.0')
            text = edit_once(text, r'^reconnect_max = 30.0', 'reconnect_max = 1.0')
            text = edit_once(text, r'^reconnect_initial = 1.0', 'reconnect_initial = 0.2')
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)
        self.env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = None

    def cli(self, *args, timeout=300) -> str:
        r = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", self.path] + list(args),
                           cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("ivoms %s failed: %s" % (" ".join(args), r.stderr[-2000:]))
        return r.stdout

    def init(self, count: int) -> list[str]:
        """Keys, schema, and C{count} available vouchers; their HRNs."""
        self.cli("init", "--admin-password", "chaos-admin-password-1")
        from core import keys
        from core.crypto import VoucherCipher
        from core.db import Store
        from core.generation import generate
        from core.timeutil import DAY_MS, now_ms
        from core.vouchers import Selection, set_state
        from gateway.config import load_config
        from sqlalchemy import select

        from core.schema import voucher
        self.config = load_config(self.path)
        self.cipher = VoucherCipher(keys.load(self.config.keys.file))
        store = Store(self.config.database.url)
        try:
            vt = self.config.voucher_types["EUR5"]
            info = generate(store, self.cipher, vt, count, now_ms() + 30 * DAY_MS,
                            requested_by="chaos", serial_start=self.config.generation.serial_start,
                            chunk_size=max(1, min(count, 20000)))
            store.run_sync(set_state, Selection.of_batch(info.batch_id), "available",
                           actor="chaos", reason=None, now=now_ms())
            rows = store.run_sync(lambda tx: tx.execute(
                select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
                .where(voucher.c.batch_id == info.batch_id)).rows)
            return [self.cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows]
        finally:
            store.dispose()

    def start_sim(self) -> None:
        from billing.sim.process import SimProcess
        self.sim = SimProcess.spawn("--journal", self.journal, diameter_port=self.sim_port)

    def start(self) -> float:
        """Start the node; the seconds until its HTTP and SMPP listeners answer."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", self.path, "run"],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = t0 + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ivoms run exited with %s" % self.proc.returncode)
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
                c.request("GET", "/health")
                ok = c.getresponse().status == 200
                c.close()
                socket.create_connection(("127.0.0.1", self.smpp_port), timeout=1).close()
                if ok:
                    return time.monotonic() - t0
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("node not ready within 90 s")

    def stop_sim(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


# -- the peers -----------------------------------------------------------------

class Item:
    """One subscriber request and what its peer saw of it."""

    __slots__ = ("msisdn", "hrn", "ref", "submits", "acked", "codes", "replies", "done_at")

    def __init__(self, msisdn, hrn, ref):
        self.msisdn, self.hrn, self.ref = msisdn, hrn, ref
        self.submits, self.acked, self.codes, self.replies, self.done_at = 0, False, [], [], None


class Peer(threading.Thread):
    """A load generator thread: takes items from a shared feed until told to stop."""

    kind = "?"

    def __init__(self, node: Node, feed, successes: list) -> None:
        super().__init__(daemon=True, name="chaos-" + self.kind)
        self.node, self.feed, self.successes = node, feed, successes
        self.items: list[Item] = []
        self.stopping = threading.Event()
        self.errors = 0

    def success(self) -> None:
        self.successes.append(time.monotonic())

    def take(self) -> Item | None:
        """The next request from the feed (recorded), or None after a short wait."""
        nxt = self.feed(self.kind)
        if nxt is None:
            time.sleep(0.05)
            return None
        item = Item(*nxt)
        self.items.append(item)
        return item


class SmsPeer(Peer):
    """smpplib as the SMSC: a transceiver bind; resends each MO until it is acknowledged."""

    kind = "sms"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.by_msisdn: dict[str, Item] = {}
        self.client = None
        self.waiting: dict[int, Item] = {}
        self.draining = threading.Event()

    def _connect(self):
        import smpplib.client
        c = smpplib.client.Client("127.0.0.1", self.node.smpp_port, timeout=0.5,
                                  allow_unknown_opt_params=True)
        c.set_message_received_handler(self._reply)
        c.set_message_sent_handler(self._resp)
        c.connect()
        c.bind_transceiver(system_id=SMPP_ACCOUNT[0], password=SMPP_ACCOUNT[1])
        return c

    def _reply(self, pdu):
        item = self.by_msisdn.get(pdu.destination_addr.decode() if isinstance(
            pdu.destination_addr, bytes) else pdu.destination_addr)
        text = pdu.short_message
        text = text.decode("latin-1") if isinstance(text, bytes) else str(text)
        if item is not None:
            item.replies.append(text)
            if "credited" in text:
                self.success()

    def _resp(self, pdu):
        item = self.waiting.pop(int(pdu.sequence), None)
        if item is not None and int(pdu.status) == 0:
            item.acked = True
            item.done_at = time.monotonic()

    window = 8

    def run(self):
        resend: list[Item] = []          # sent but not acknowledged when the bind broke
        while not (self.stopping.is_set() and not resend and not self.waiting):
            try:
                if self.client is None:
                    self.client = self._connect()
                while len(self.waiting) < self.window:
                    if resend:
                        item = resend.pop(0)
                    else:
                        nxt = None if self.stopping.is_set() else self.feed("sms")
                        if nxt is None:
                            break
                        item = Item(*nxt)
                        self.items.append(item)
                        self.by_msisdn[item.msisdn] = item
                    item.submits += 1
                    pdu = self.client.send_message(
                        source_addr_ton=1, source_addr_npi=1, source_addr=item.msisdn,
                        dest_addr_ton=0, dest_addr_npi=0, destination_addr=SHORT_CODE,
                        short_message=("RECHARGE " + item.hrn).encode(), data_coding=0)
                    self.waiting[int(pdu.sequence)] = item
                self.client.read_once()
            except Exception:  # noqa: BLE001 - the node died or refused: resend what was not acked
                self.errors += 1
                resend.extend(i for i in self.waiting.values() if not i.acked)
                self.waiting.clear()
                if self.client is not None:
                    try:
                        self.client.disconnect()
                    except Exception:  # noqa: BLE001
                        pass
                self.client = None
                time.sleep(0.2)

    def listen(self, seconds: float) -> None:
        """Keep the bind up and read replies (called after run() ended)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if all(i.replies for i in self.items if i.acked):
                return
            try:
                if self.client is None:
                    self.client = self._connect()
                self.client.read_once()
            except Exception:  # noqa: BLE001
                self.client = None
                time.sleep(0.2)


class SoapPeer(Peer):
    """zeep: ActivateVoucher with a client reference, repeated until answered."""

    kind = "soap"

    def run(self):
        import requests
        from zeep import Client, Settings
        from zeep.transports import Transport
        url = "http://127.0.0.1:%d/soap" % self.node.http_port
        client = None
        item = None
        while not (self.stopping.is_set() and item is None):
            try:
                if client is None:
                    session = requests.Session()
                    session.auth = requests.auth.HTTPBasicAuth(*SOAP_CLIENT)
                    client = Client(url + "?wsdl", transport=Transport(session=session, timeout=10),
                                    settings=Settings(strict=True))
                if item is None:
                    item = self.take()
                    if item is None:
                        continue
                item.submits += 1
                r = client.service.ActivateVoucher(msisdn="+" + item.msisdn, hrn=item.hrn,
                                                   channelReference=item.ref)
                item.acked, item.done_at = True, time.monotonic()
                item.codes.append(int(r.resultCode))
                item.replies.append(int(r.resultCode))
                if int(r.resultCode) == 0:
                    self.success()
                item = None
            except Exception:  # noqa: BLE001 - node down: the same call again
                self.errors += 1
                client = None
                time.sleep(0.2)


class UssdPeer(Peer):
    """USSD over HTTP/JSON: a one-shot dialogue, replayed with the same dialogue id."""

    kind = "ussd"

    def run(self):
        item = None
        while not (self.stopping.is_set() and item is None):
            try:
                if item is None:
                    item = self.take()
                    if item is None:
                        continue
                item.submits += 1
                body = json.dumps({"dialogue_id": item.ref, "operation": "begin",
                                   "text": "*123*%s#" % item.hrn, "msisdn": "+" + item.msisdn})
                c = http.client.HTTPConnection("127.0.0.1", self.node.http_port, timeout=10)
                c.request("POST", "/ussd", body=body.encode(),
                          headers={"Content-Type": "application/json"})
                resp = c.getresponse()
                data = resp.read()
                c.close()
                if resp.status != 200:
                    raise OSError("HTTP %d" % resp.status)
                text = json.loads(data)["text"]
                item.acked, item.done_at = True, time.monotonic()
                item.replies.append(text)
                if "credited" in text:
                    self.success()
                item = None
            except Exception:  # noqa: BLE001 - node down: replay the dialogue
                self.errors += 1
                time.sleep(0.2)


# -- the soak ------------------------------------------------------------------

class Feed:
    """Hands out (msisdn, hrn, reference): one voucher and one subscriber per request,
    at most C{rate} per second in all."""

    def __init__(self, hrns: list[str], rate: float) -> None:
        self.hrns = list(hrns)
        self.rate = rate
        self.n = 0
        self.lock = threading.Lock()
        self.open = True
        self.t0 = time.monotonic()

    def __call__(self, kind: str):
        with self.lock:
            if not self.open or self.n >= len(self.hrns) or \
                    self.n >= self.rate * (time.monotonic() - self.t0):
                return None
            self.n += 1
            n = self.n
            return ("38164%07d" % n, self.hrns[n - 1], "chaos-%s-%d" % (kind, n))


def soak(mode: str, seconds: float, kills: int, *, folder: str, rate: float = 100.0,
         seed: int | None = None, out=print) -> dict:
    """Run one soak; return its figures and the invariants (name -> violations)."""
    rnd = random.Random(seed)
    log = open(os.path.join(folder, "node.log"), "ab")
    node = Node(folder, mode, log)
    hrns = node.init(int(rate * seconds * 1.1) + 100)
    feed = Feed(hrns, rate)
    successes: list[float] = []
    report = {"mode": mode, "kills": 0, "sim_kills": 0, "recovery_s": [], "restart_s": []}
    if mode == "diameter":
        node.start_sim()
    peers = []
    try:
        node.start()
        feed.t0 = time.monotonic()
        peers = [SmsPeer(node, feed, successes), SoapPeer(node, feed, successes),
                 UssdPeer(node, feed, successes)]
        for p in peers:
            p.start()
        t0 = time.monotonic()
        # kill moments: random, at least 2 s apart, inside the run
        moments = sorted(rnd.uniform(0.1, 0.85) * seconds for _ in range(kills))
        sim_kill_at = rnd.uniform(0.2, 0.8) * seconds if mode == "diameter" else None
        for at in moments:
            if sim_kill_at is not None and sim_kill_at < at:
                _sleep_until(t0 + sim_kill_at)
                node.sim.kill()
                report["sim_kills"] += 1
                time.sleep(rnd.uniform(0.5, 2.0))
                node.start_sim()
                sim_kill_at = None
            _sleep_until(t0 + at)
            node.kill()
            report["kills"] += 1
            killed = time.monotonic()
            before = len(successes)
            report["restart_s"].append(round(node.start(), 2))
            while len(successes) == before and time.monotonic() - killed < 60:
                time.sleep(0.02)
            report["recovery_s"].append(round(time.monotonic() - killed, 2))
            out("  [%s] kill %d at %.1f s: node up in %.2f s, first activation %.2f s after the kill"
                % (mode, report["kills"], at, report["restart_s"][-1], report["recovery_s"][-1]))
        if sim_kill_at is not None:
            _sleep_until(t0 + sim_kill_at)
            node.sim.kill()
            report["sim_kills"] += 1
            time.sleep(1.0)
            node.start_sim()
        _sleep_until(t0 + seconds)
        feed.open = False
        for p in peers:
            p.stopping.set()
        for p in peers:
            p.join(60)
        peers[0].listen(20)
        report["elapsed_s"] = round(time.monotonic() - t0, 1)
    finally:
        for p in peers:
            p.stopping.set()
        node.stop()
    if mode == "diameter" and node.sim is None:
        node.start_sim()
    report["reconcile"] = node.cli("reconcile", "--older-than", "0").strip()
    node.stop_sim()
    log.close()
    report.update(check(node, peers))
    return report


def _sleep_until(t: float) -> None:
    while time.monotonic() < t:
        time.sleep(min(0.05, max(0.0, t - time.monotonic())))


def check(node: Node, peers) -> dict:
    """The invariants, each as (checked, violations), from the database, billing and the peers."""
    from sqlalchemy import select

    from core.db import Store
    from core.schema import ledger_entry, txn, voucher
    store = Store(node.config.database.url)
    try:
        txns = store.run_sync(lambda tx: tx.execute(select(
            txn.c.id, txn.c.msisdn, txn.c.channel, txn.c.channel_ref, txn.c.state, txn.c.serial,
            txn.c.kind)).rows)
        vouchers = store.run_sync(lambda tx: tx.execute(select(
            voucher.c.serial, voucher.c.state, voucher.c.txn_id)
            .where(voucher.c.state.in_(("used", "reserved")))).rows)
        if node.mode == "diameter":
            credits = _journal_credits(node.journal)
        else:
            credits = [k for (k,) in store.run_sync(lambda tx: tx.execute(
                select(ledger_entry.c.idempotency_key)
                .where(ledger_entry.c.outcome == "credited")).rows)]
    finally:
        store.dispose()
    by_msisdn: dict[str, list] = {}
    for t in txns:
        by_msisdn.setdefault(t[1], []).append(t)
    by_id = {t[0]: t for t in txns}
    inv = {}
    items = [(p.kind, i) for p in peers for i in p.items]
    acked = [(k, i) for k, i in items if i.acked]
    # a request repeated after a failed attempt (151: billing not reached) is
    # activated again by design; any transaction beyond one must be such a failure
    inv["acknowledged => exactly one transaction (retried failures apart)"] = (
        len(acked), sum(1 for _, i in acked if not by_msisdn.get(i.msisdn)
                        or sum(1 for t in by_msisdn[i.msisdn] if t[4] != "failed") > 1
                        or (len(by_msisdn[i.msisdn]) > 1 and i.submits == 1)))
    # a reply delivered while the node died before its confirmation was committed
    # is delivered again after the restart (at least once): the same text, counted apart
    inv["acknowledged => a reply, and every reply of it the same answer"] = (
        len(acked), sum(1 for _, i in acked if not i.replies or len(set(i.replies)) != 1))
    unanswered = [(k, i.msisdn, i.submits, i.codes, i.replies) for k, i in acked
                  if not i.replies or len(set(i.replies)) != 1]
    odd = [(i.msisdn, i.submits, i.replies) for k, i in acked
           if not 1 <= len(i.replies) <= i.submits or (k == "sms" and i.submits == 1
                                                      and len(i.replies) != 1)]
    inv["not acknowledged => no transaction"] = (
        len(items) - len(acked),
        sum(1 for _, i in items if not i.acked and by_msisdn.get(i.msisdn)))
    inv["transaction => a request of a peer"] = (
        len(txns), len({t[1] for t in txns} - {i.msisdn for _, i in items}))
    successes = [t for t in txns if t[4] == "success"]
    used = {s: tid for s, st, tid in vouchers if st == "used"}
    credit_set = {}
    for k in credits:
        credit_set[k] = credit_set.get(k, 0) + 1
    inv["used voucher => exactly one credit at billing"] = (
        len(used), sum(1 for s, tid in used.items() if credit_set.get(tid, 0) != 1))
    inv["used voucher => exactly one successful transaction"] = (
        len(used), sum(1 for s in used if sum(1 for t in successes if t[5] == s) != 1))
    inv["no credit without a used voucher"] = (
        len(credit_set), sum(1 for k in credit_set if by_id.get(k) is None
                             or by_id[k][4] != "success" or used.get(by_id[k][5]) != k))
    inv["nothing reserved after reconciliation"] = (
        len(vouchers), sum(1 for _, st, _ in vouchers if st == "reserved"))
    inv["nothing pending after reconciliation"] = (
        len(txns), sum(1 for t in txns if t[4] == "pending"))
    retried = sum(1 for _, i in acked if len(by_msisdn.get(i.msisdn, ())) > 1)
    return {"activations": len(successes), "retried_after_failure": retried, "requests": {p.kind: len(p.items) for p in peers},
            "resubmits": {p.kind: sum(i.submits - 1 for i in p.items) for p in peers},
            "invariants": inv, "odd_replies": odd[:5], "unanswered": unanswered[:5],
            "repeated_replies": sum(len(i.replies) - 1 for _, i in acked if len(i.replies) > 1)}


def _journal_credits(path: str) -> list[str]:
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    break
                if e.get("status") == "credited":
                    out.append(e["key"])
    return out


def print_report(r: dict, out=print) -> None:
    out("mode %s: %d activations in %.0f s, %d node kills, %d simulator kills"
        % (r["mode"], r["activations"], r.get("elapsed_s", 0), r["kills"], r["sim_kills"]))
    out("  requests %s, resubmitted %s" % (r["requests"], r["resubmits"]))
    out("  node restart (listeners up) s: %s" % (r["restart_s"],))
    out("  recovery (kill -> first successful activation) s: %s" % (r["recovery_s"],))
    out("  final reconciliation: %s" % r.get("reconcile", "-"))
    out("  requests activated again after a failed attempt: %d" % r["retried_after_failure"])
    out("  replies delivered again after a kill (confirmation not yet committed): %d"
        % r["repeated_replies"])
    if r.get("unanswered"):
        out("  acknowledged without one answer (channel, msisdn, submits, codes, replies): %s"
            % (r["unanswered"],))
    if r.get("odd_replies"):
        out("  requests with an unexpected number of replies (msisdn, submits, replies): %s"
            % (r["odd_replies"],))
    for name, (checked, bad) in r["invariants"].items():
        out("  %-62s checked %6d  violations %d" % (name, checked, bad))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak length in all, split evenly over the modes")
    ap.add_argument("--kills", type=int, default=10, help="node kills per mode")
    ap.add_argument("--mode", default="all", choices=MODES + ("all",))
    ap.add_argument("--rate", type=float, default=100.0,
                    help="requests per second offered, all channels together")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)          # smpplib's notes on the connections the kills cut
    modes = MODES if args.mode == "all" else (args.mode,)
    seconds = args.minutes * 60 / len(modes)
    failed = 0
    for mode in modes:
        folder = tempfile.mkdtemp(prefix="ivoms-chaos-%s-" % mode)
        try:
            print("soak %s: %.0f s, %d kills (work folder %s)" % (mode, seconds, args.kills, folder),
                  flush=True)
            r = soak(mode, seconds, args.kills, folder=folder,
                     rate=args.rate, seed=args.seed,
                     out=lambda s: print(s, flush=True))
            print_report(r, out=lambda s: print(s, flush=True))
            failed += sum(bad for _, bad in r["invariants"].values())
        finally:
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    print("violations in total: %d" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
