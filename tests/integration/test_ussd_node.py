"""The USSD bridge inside a real C{ivoms run} node process on 127.0.0.1 (issue 6).

A copy of the shipped conf/ is initialised with demo vouchers, the node is started as
its own process, and plain C{http.client} posts to C{/ussd}: a TCAP Begin encoded by
pycrate (answered by a TCAP End that pycrate decodes), and a plain-text menu dialogue.
Bounded: the node is stopped (SIGTERM, then SIGKILL) whatever happens.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IVOMS = [sys.executable, "-m", "gateway.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _retarget(text: str) -> tuple[str, int]:
    """The config with every listener moved to a free loopback port; the HTTP port."""
    http_port = free_port()
    moves = {'listen = "tcp:8080:interface=127.0.0.1"':
             'listen = "tcp:%d:interface=127.0.0.1"' % http_port,
             'listen = "tcp:8081:interface=127.0.0.1"':
             'listen = "tcp:%d:interface=127.0.0.1"' % free_port(),
             'listen = "tcp:9464:interface=127.0.0.1"':
             'listen = "tcp:%d:interface=127.0.0.1"' % free_port(),
             'endpoint = "tcp:2775:interface=127.0.0.1"':
             'endpoint = "tcp:%d:interface=127.0.0.1"' % free_port()}
    if 'listen = "tcp:8080:interface=127.0.0.1"' not in text:
        pytest.skip("conf/ivoms.toml no longer has the default [http] listen line")
    for old, new in moves.items():
        text = text.replace(old, new)
    return text, http_port


def _available_hrns(conf_dir, count):
    from sqlalchemy import select

    from core import keys
    from core.crypto import VoucherCipher
    from core.db import Store
    from core.schema import voucher
    from gateway.config import load_config
    config = load_config(str(conf_dir / "ivoms.toml"))
    store = Store(config.database.url)
    try:
        cipher = VoucherCipher(keys.load(config.keys.file))
        rows = store.run_sync(lambda tx: tx.execute(
            select(voucher.c.serial, voucher.c.key_id, voucher.c.hrn_ct)
            .where(voucher.c.state == "available").order_by(voucher.c.serial)
            .limit(count)).rows)
        return [cipher.decrypt(s, k, bytes(ct)) for s, k, ct in rows]
    finally:
        store.dispose()


def _post(port, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/ussd", body=body, headers=headers)
        response = conn.getresponse()
        return (response.status, {k.lower(): v for k, v in response.getheaders()},
                response.read())
    finally:
        conn.close()


def _wait_healthy(port, proc, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail("node exited with %s: %s" % (proc.returncode, proc.stderr.read()[-3000:]))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail("node not healthy within %.0f s" % deadline)


@pytest.fixture
def node(conf_dir):
    path = conf_dir / "ivoms.toml"
    text, port = _retarget(path.read_text())
    path.write_text(text)
    env = dict(os.environ, PYTHONPATH=REPO)
    init = subprocess.run(IVOMS + ["--config", str(path), "init", "--demo",
                                   "--admin-password", "ussd-test-password-1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr[-3000:]
    proc = subprocess.Popen(IVOMS + ["--config", str(path), "run"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_healthy(port, proc)
        yield port, _available_hrns(conf_dir, 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_tcap_and_text_dialogues_on_a_real_node(node):
    pycrate_tcap = pytest.importorskip("pycrate_asn1dir.TCAP_MAP")
    from protocols.ussd.gsm7 import decode_ussd, encode_ussd
    from protocols.ussd.map_types import NETWORK_UNSTRUCTURED_SS_CONTEXT_V2 as AC
    port, hrns = node
    assert len(hrns) == 2
    message = pycrate_tcap.TCAP_MAP_Messages.TCAP_MAP_Message
    dcs, octets = encode_ussd("*123*%s#" % hrns[0])
    message.set_val(("begin", {
        "otid": b"\x0a\x0b\x0c\x0d",
        "dialoguePortion": {
            "direct-reference": (0, 0, 17, 773, 1, 1, 1),
            "encoding": ("single-ASN1-type", ("DialoguePDU", ("dialogueRequest", {
                "protocol-version": (1, 1), "application-context-name": AC})))},
        "components": [("basicROS", ("invoke", {
            "invokeId": ("present", 7), "opcode": ("local", 59),
            "argument": ("USSD-Arg", {"ussd-DataCodingScheme": bytes((dcs,)),
                                      "ussd-String": octets,
                                      "msisdn": bytes.fromhex("91836114325476")})}))]}))
    status, headers, body = _post(port, message.to_ber(),
                                  {"Content-Type": "application/octet-stream"})
    assert status == 200 and headers["x-ussd-operation"] == "end"
    message.from_ber(body)
    kind, value = message.get_val()
    assert kind == "end" and value["dtid"] == b"\x0a\x0b\x0c\x0d"
    (component,) = value["components"]
    ros = component[1]
    assert ros[0] == "returnResult" and ros[1]["invokeId"] == ("present", 7)
    res = ros[1]["result"]["result"][1]
    text = decode_ussd(res["ussd-DataCodingScheme"][0], res["ussd-String"])
    assert text.startswith("Your account was credited with ")

    def say(op, said, **extra):
        doc = dict({"dialogue_id": "node-1", "operation": op, "text": said}, **extra)
        status, _, body = _post(port, json.dumps(doc).encode(),
                                {"Content-Type": "application/json"})
        assert status == 200, body
        return json.loads(body)
    assert say("begin", "*123#", msisdn="0641234567")["operation"] == "continue"
    prompt = say("continue", "1")["text"]
    assert prompt.startswith("Enter the ") and prompt.endswith("-digit voucher number:")
    done = say("continue", hrns[1])
    assert done["operation"] == "end" and done["text"].startswith("Your account was credited")
    again = say("begin", "*123*%s#" % hrns[1], msisdn="0641234567", dialogue_id="node-2")
    assert again["text"] == "You have already used this voucher."
    # the same dialogue replayed gets its original answer (idempotency key: dialogue id)
    replayed = say("begin", "*123*%s#" % hrns[1], msisdn="0641234567")
    assert replayed["text"] == done["text"]
    status, _, body = _post(port, base64.b64encode(b"x"), {"Content-Type": "text/plain"})
    assert status == 415 and json.loads(body)["error"] == "unsupported_media_type"
