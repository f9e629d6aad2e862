"""Chaos in ESME mode: the node binds to an SMSC (node-smpp) and is killed with SIGKILL.

The SMSC (C{tests/integration/node/smsc_resend.js}) delivers each MO with
C{deliver_sm} until the node acknowledges it with ESME_ROK, as a real SMSC
does: an MO in flight when the bind broke, or refused, is sent again on the
next bind.  The node (embedded ledger) is killed three times while MOs flow
and restarted.  Then, after reconciliation, from the database, the ledger and
the SMSC's own record:

 - every MO is acknowledged in the end, and each acknowledged MO has exactly
   one transaction and a reply (every reply of it the same text);
 - a resent MO activates nothing twice;
 - used voucher <=> exactly one credit; nothing reserved or pending.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time

import pytest

pytestmark = pytest.mark.integration

NODE_DIR = os.path.join(os.path.dirname(__file__), "node")
MOS = 240
RATE = 30          # MOs per second offered by the SMSC
KILLS = 3


class SmscEvents(threading.Thread):
    """Reads the SMSC's JSON event lines into a list."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.events, self.lock = proc, [], threading.Lock()

    def run(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                with self.lock:
                    self.events.append(json.loads(line))

    def of(self, kind):
        with self.lock:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(self, kind, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.of(kind):
                return True
            time.sleep(0.05)
        return False


def test_esme_mode_nothing_acknowledged_is_lost_across_kills(tmp_path):
    node_bin = shutil.which("node")
    if node_bin is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "smpp")):
        pytest.fail("node and node-smpp are needed (npm ci in tests/integration/node)")
    from bench.chaos import Item, Node, check, free_port

    rnd = random.Random()
    smsc_port = free_port()
    log = open(os.path.join(str(tmp_path), "node.log"), "ab")
    node = Node(str(tmp_path), "ledger", log)
    with open(node.path, "a", encoding="utf-8") as f:
        f.write('\n[[smpp.smsc]]\nname = "resend"\nsystem_id = "ivoms"\npassword = "pw"\n'
                'endpoint = "tcp:host=127.0.0.1:port=%d"\nretry_initial = 0.2\n'
                'retry_max = 0.5\n' % smsc_port)
    hrns = node.init(MOS)
    items = [Item("38165%07d" % (n + 1), hrn, None) for n, hrn in enumerate(hrns)]
    mo_file = os.path.join(str(tmp_path), "mos.json")
    with open(mo_file, "w", encoding="utf-8") as f:
        json.dump([{"msisdn": i.msisdn, "text": "RECHARGE " + i.hrn} for i in items], f)
    smsc = subprocess.Popen([node_bin, os.path.join(NODE_DIR, "smsc_resend.js"), str(smsc_port),
                             "ivoms", "pw", mo_file, str(RATE), "10"],
                            cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    events = SmscEvents(smsc)
    events.start()
    kills = 0
    try:
        assert events.wait_for("listening", 15), "the SMSC did not start"
        node.start()
        assert events.wait_for("bind", 30), "the node did not bind to the SMSC"
        # kill while MOs flow: after a random share of them was acknowledged
        for share in sorted(rnd.uniform(0.1, 0.8) for _ in range(KILLS)):
            end = time.monotonic() + 60
            while len(events.of("ack")) < share * MOS and time.monotonic() < end:
                time.sleep(0.01)
            node.kill()
            kills += 1
            time.sleep(rnd.uniform(0.0, 0.5))
            node.start()
        assert events.wait_for("done", 120), "not every MO was acknowledged: %d of %d" % (
            len({e["i"] for e in events.of("ack") if e["status"] == 0}), MOS)
        # replies due at a kill are sent by the outbox after the restart
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if {e["to"] for e in events.of("reply")} >= {i.msisdn for i in items}:
                break
            time.sleep(0.2)
    finally:
        node.stop()
        smsc.terminate()
        smsc.wait(10)
        events.join(5)
        log.close()
    node.cli("reconcile", "--older-than", "0")

    for e in events.of("sent"):
        items[e["i"]].submits += 1
    for e in events.of("ack"):
        if e["status"] == 0:
            items[e["i"]].acked = True
    by_msisdn = {i.msisdn: i for i in items}
    for e in events.of("reply"):
        by_msisdn[e["to"]].replies.append(e["text"])

    class SmscRecord:
        kind = "sms"

    peer = SmscRecord()
    peer.items = items
    report = check(node, [peer])
    lost, nacked = events.of("lost"), [e for e in events.of("ack") if e["status"] != 0]
    text = "kills %d, lost in flight %d, refused %d, resubmits %d, unanswered %s\n%s" % (
        kills, len(lost), len(nacked), sum(i.submits - 1 for i in items), report["unanswered"],
        "\n".join("%s: checked %d, violations %d" % (k, c, v)
                  for k, (c, v) in report["invariants"].items()))
    print(text)
    assert kills == KILLS, text
    assert all(i.acked for i in items), text
    assert report["activations"] == MOS, text            # every voucher used, once
    for name, (checked, violations) in report["invariants"].items():
        assert violations == 0, "%s: %d violations\n%s" % (name, violations, text)
