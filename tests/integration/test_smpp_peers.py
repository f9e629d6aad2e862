"""The SMS channel against real SMPP peers on 127.0.0.1 (issue 4, item 8).

Every test runs the real core (ActivationService over a temporary SQLite
store, the embedded ledger) behind the real listener or client, and a
third-party peer: smpplib and aiosmpplib as ESMEs binding to our
server-mode listener, node-smpp as the SMSC for ESME client mode, and
Kannel's bearerbox binding to our listener and relaying an MO injected
through its sendsms interface.  Each stops by itself within bounded timeouts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from billing.ledger import EmbeddedLedger
from core.activation import ActivationService
from core.normalise import MsisdnRules
from core.units import UnitRunner
from gateway.config import FraudSettings
from protocols.smpp.config import (
    AccountSettings, ServerSettings, SessionSettings, SmppSettings, SmscSettings)
from protocols.smpp.service import make_smpp_service
from protocols.smpp.text import decode_gsm, parse_udh
from tests.helpers import make_batch, make_store

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")
MSISDN = "381641234567"
SHORT_CODE = "1555"
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str):
    """Skip locally, fail in CI, when a peer is not installed."""
    if IN_CI:
        pytest.fail("%s is required in CI but missing" % (what,))
    pytest.skip("%s not installed" % (what,))


def spaced(hrn: str) -> str:
    return " ".join(hrn[i:i + 4] for i in range(0, len(hrn), 4))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """The core over a temporary SQLite store, and the SMPP service in front of it."""

    def __init__(self, tmp_path, count: int = 10) -> None:
        self.store, self.cipher = make_store("sqlite:///" + str(tmp_path / "ivoms.db"),
                                             str(tmp_path))
        _, hrns = make_batch(self.store, self.cipher, count=count)
        self.hrns = list(hrns.values())
        self.runner = UnitRunner(self.store, reactor, workers=1)
        self.runner.start()
        ledger = EmbeddedLedger(self.runner, clock=reactor)
        self.activation = ActivationService(
            self.runner, ledger, self.cipher, clock=reactor,
            msisdn_rules=MsisdnRules("381", "0", ["00", "+"], [11, 12]),
            hrn_lengths={14}, fraud_settings=FraudSettings(), billing_timeout=5.0)
        self.service = None

    @defer.inlineCallbacks
    def start(self, settings: SmppSettings):
        self.service = make_smpp_service(settings, self.activation, reactor, hrn_lengths=[14])
        self.service.startService()
        if self.service.server is not None:
            port = yield self.service.server.when_listening()
            return port.getHost().port
        return None

    @defer.inlineCallbacks
    def stop(self):
        if self.service is not None and self.service.running:
            yield self.service.stopService()
        yield self.runner.stop()
        self.store.dispose()


def server_settings(**session) -> SmppSettings:
    return SmppSettings(
        server=ServerSettings(enabled=True, endpoint="tcp:0:interface=127.0.0.1",
                              accounts=[AccountSettings(system_id="smsc", password="secret")]),
        session=SessionSettings(**session))


def with_deadline(d: defer.Deferred, seconds: float) -> defer.Deferred:
    return d.addTimeout(seconds, reactor)


def reply_text(parts) -> str:
    """Join (data_coding, esm_class, short_message) parts into text."""
    out = []
    for coding, esm_class, sm in parts:
        if esm_class & 0x40:
            _, sm = parse_udh(sm)
        out.append(sm.decode("utf-16-be") if coding == 8 else decode_gsm(sm))
    return "".join(out)


def nodelay_of(session) -> int:
    sock = session.transport.getHandle()
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


# -- smpplib -------------------------------------------------------------------

def smpplib_exchange(port: int, texts: list[bytes], ssl_context=None, host="127.0.0.1",
                      system_id="smsc", password="secret") -> tuple[list, list]:
    """Bind smpplib as a transceiver (over TLS with C{ssl_context}), send C{texts} as MOs.

    @return: (the submit_sm_resp statuses and ids, the deliver_sm replies).
    """
    import smpplib.client
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True,
                                   ssl_context=ssl_context)
    got, sent = [], []
    client.set_message_received_handler(lambda pdu: got.append(
        (int(pdu.data_coding), int(pdu.esm_class), pdu.short_message)))
    client.set_message_sent_handler(lambda pdu: sent.append(
        (int(pdu.status), pdu.message_id)))
    client.connect()
    try:
        client.bind_transceiver(system_id=system_id, password=password)
        for text in texts:
            client.send_message(source_addr_ton=1, source_addr_npi=1, source_addr=MSISDN,
                                dest_addr_ton=0, dest_addr_npi=0, destination_addr=SHORT_CODE,
                                short_message=text, data_coding=0)
        deadline = time.monotonic() + 20
        while (len(sent) < len(texts) or len(got) < len(texts)) and time.monotonic() < deadline:
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return sent, got


@pytest_twisted.inlineCallbacks
def test_smpplib_transceiver_recharge(tmp_path):
    stack = Stack(tmp_path)
    try:
        port = yield stack.start(server_settings())
        hrn = stack.hrns[0]
        sent, got = yield with_deadline(threads.deferToThread(
            smpplib_exchange, port, [("RECHARGE " + spaced(hrn)).encode(), b"HELLO"]), 30)
        assert [s for s, _ in sent] == [0, 0] and all(mid for _, mid in sent)
        texts = sorted(reply_text([g]) for g in got)
        assert texts[0].startswith("To recharge, send RECHARGE/TOPUP")
        assert texts[1].startswith("Your account was credited with 10.00 EUR. Valid until 20")
        assert hrn not in " ".join(texts)
        # the same voucher again: used by this subscriber
        sent, got = yield with_deadline(threads.deferToThread(
            smpplib_exchange, port, [("recharge " + hrn).encode()]), 30)
        assert reply_text(got) == "You have already used this voucher."
    finally:
        yield stack.stop()


@pytest_twisted.inlineCallbacks
def test_tcp_nodelay_on_server_sockets(tmp_path):
    stack = Stack(tmp_path)
    try:
        port = yield stack.start(server_settings())
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            deadline = time.monotonic() + 5
            sessions = stack.service.server.factory.sessions
            while not any(s.transport for s in sessions) and time.monotonic() < deadline:
                yield deferLater(0.01)
            (session,) = list(sessions)
            assert nodelay_of(session) == 1
        finally:
            sock.close()
    finally:
        yield stack.stop()


def deferLater(seconds: float) -> defer.Deferred:
    from twisted.internet import task
    return task.deferLater(reactor, seconds, lambda: None)


# -- aiosmpplib ----------------------------------------------------------------

def _aiosmpplib_exchange(port: int, text: str, timeout: float = 20.0) -> list:
    from aiosmpplib import AbstractHook, DeliverSm, ESME, PhoneNumber, SubmitSm, TON, NPI

    received: list = []

    class Hook(AbstractHook):
        async def sending(self, smpp_message, pdu, client_id):
            return None

        async def received(self, smpp_message, pdu, client_id):
            if isinstance(smpp_message, DeliverSm):
                received.append(smpp_message)

        async def send_error(self, smpp_message, error, client_id):
            if error is not None:
                received.append(error)

    async def run():
        esme = ESME(smsc_host="127.0.0.1", smsc_port=port, system_id="smsc",
                    password="secret", hook=Hook(), socket_timeout=5.0, log_level="WARNING",
                    enquire_link_interval=30.0)
        runner = asyncio.create_task(esme.start())
        await esme.broker.enqueue(SubmitSm(
            short_message=text,
            source=PhoneNumber(MSISDN, TON.INTERNATIONAL, NPI.ISDN),
            destination=PhoneNumber(SHORT_CODE, TON.UNKNOWN, NPI.UNKNOWN),
            registered_delivery=0, log_id="mo-1"))
        deadline = time.monotonic() + timeout
        while not received and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.wait_for(esme.stop(), 10)
        runner.cancel()
        try:
            await runner
        except BaseException:  # noqa: BLE001 - the ESME task ends however it ends
            pass
        return received

    return asyncio.run(run())


@pytest_twisted.inlineCallbacks
def test_aiosmpplib_recharge(tmp_path):
    try:
        import aiosmpplib  # noqa: F401 - only checks that it is installed
    except ImportError:
        missing("aiosmpplib")
    stack = Stack(tmp_path)
    try:
        port = yield stack.start(server_settings())
        hrn = stack.hrns[1]
        got = yield with_deadline(threads.deferToThread(
            _aiosmpplib_exchange, port, "TopUp " + hrn[:7] + "-" + hrn[7:]), 40)
        assert len(got) == 1, got
        assert got[0].short_message.startswith("Your account was credited with 10.00 EUR")
    finally:
        yield stack.stop()


# -- node-smpp as the SMSC (ESME client mode) ------------------------------------

def _read_events(proc, until: str, count: int, timeout: float) -> list:
    """JSON events from the node SMSC's stdout until C{count} C{until} events (bounded)."""
    import json
    import selectors
    events = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if sum(1 for e in events if e.get("event") == until) >= count:
            break
        if not sel.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        *lines, buf = buf.split(b"\n")
        events.extend(json.loads(line) for line in lines if line.strip())
    return events


@pytest_twisted.inlineCallbacks
def test_node_smpp_smsc_esme_client_mode(tmp_path):
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "smpp")):
        missing("node and node-smpp (npm ci in tests/integration/node)")
    stack = Stack(tmp_path)
    port = free_port()
    hrn1, hrn2 = stack.hrns[2], stack.hrns[3]
    proc = subprocess.Popen(
        [node, os.path.join(NODE_DIR, "smsc.js"), str(port), "ivoms", "pw", MSISDN,
         "RECHARGE " + spaced(hrn1), "dopuna " + hrn2],
        cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = yield threads.deferToThread(_read_events, proc, "listening", 1, 15)
        assert first and first[0]["event"] == "listening", first
        settings = SmppSettings(
            smsc=[SmscSettings(name="node", system_id="ivoms", password="pw",
                               endpoint="tcp:host=127.0.0.1:port=%d" % (port,),
                               retry_initial=0.2, retry_max=1.0)],
            session=SessionSettings(enquire_link_interval=5))
        yield stack.start(settings)
        events = yield with_deadline(
            threads.deferToThread(_read_events, proc, "reply", 2, 30), 40)
        binds = [e for e in events if e["event"] == "bind"]
        replies = [e for e in events if e["event"] == "reply"]
        assert [b["command"] for b in binds] == ["bind_transceiver"] * 2   # re-bound after loss
        assert [e["status"] for e in events if e["event"] == "deliver_sm_resp"] == [0, 0]
        assert len(replies) == 2, events
        assert all(r["to"] == MSISDN and r["from"] == SHORT_CODE for r in replies)
        assert replies[0]["text"].startswith("Your account was credited with 10.00 EUR")
        assert replies[1]["data_coding"] == 8 and replies[1]["parts"] == 2   # UCS-2, UDH split
        assert replies[1]["text"].startswith("Vaš račun je dopunjen sa 10.00 EUR")
        connector = stack.service.connectors["node"]
        assert all(nodelay_of(s) == 1 for s in connector.sessions)
    finally:
        yield stack.stop()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


# -- Kannel: bearerbox binds to our listener ------------------------------------

KANNEL_CONF = """\
group = core
admin-port = {admin_port}
admin-password = adminpw
admin-interface = 127.0.0.1
admin-allow-ip = 127.0.0.1
smsbox-port = {smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 1
store-type = spool
store-location = "{dir}/spool"

group = smsc
smsc = smpp
smsc-id = ivoms
host = 127.0.0.1
port = {smpp_port}
transceiver-mode = true
smsc-username = smsc
smsc-password = secret
system-type = ""
interface-version = 34
source-addr-ton = 1
source-addr-npi = 1
source-addr-autodetect = false
dest-addr-ton = 0
dest-addr-npi = 0
enquire-link-interval = 30
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 1

group = sendsms-user
username = tester
password = testpw
user-allow-ip = 127.0.0.1

group = sms-service
keyword = default
catch-all = true
get-url = "http://127.0.0.1:{http_port}/mo?from=%p&to=%P&text=%a"
max-messages = 0
"""


def _http_get(url: str) -> tuple[int | None, bytes | None]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, None


@pytest_twisted.inlineCallbacks
def test_kannel_bearerbox_relays_mo(tmp_path):
    bearerbox, smsbox = shutil.which("bearerbox") or "/usr/sbin/bearerbox", \
        shutil.which("smsbox") or "/usr/sbin/smsbox"
    if not (os.path.exists(bearerbox) and os.path.exists(smsbox)):
        missing("Kannel (Debian package kannel)")
    from urllib.parse import quote

    from twisted.web import resource, server

    got = []

    class MoSink(resource.Resource):
        isLeaf = True

        def render_GET(self, request):
            got.append({k.decode(): v[0].decode("utf-8", "replace")
                        for k, v in request.args.items()})
            return b""

    stack = Stack(tmp_path)
    procs = []
    web = None
    try:
        smpp_port = yield stack.start(server_settings())
        web = reactor.listenTCP(0, server.Site(MoSink()), interface="127.0.0.1")
        kdir = tmp_path / "kannel"
        (kdir / "spool").mkdir(parents=True)
        ports = dict(admin_port=free_port(), smsbox_port=free_port(),
                     sendsms_port=free_port(), http_port=web.getHost().port,
                     smpp_port=smpp_port, dir=str(kdir))
        conf = kdir / "kannel.conf"
        conf.write_text(KANNEL_CONF.format(**ports))
        for exe in (bearerbox, smsbox):
            procs.append(subprocess.Popen([exe, str(conf)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, cwd=str(kdir)))
            yield deferLater(0.5)
        sessions = stack.service.server.factory.accounts["smsc"].sessions
        deadline = time.monotonic() + 20
        while not sessions and time.monotonic() < deadline:
            yield deferLater(0.1)
        assert sessions, "bearerbox did not bind"
        assert all(nodelay_of(s) == 1 for s in sessions)
        hrn = stack.hrns[4]
        url = "http://127.0.0.1:%d/cgi-bin/sendsms?username=tester&password=testpw" \
              "&from=%s&to=%s&text=%s" % (ports["sendsms_port"], MSISDN, SHORT_CODE,
                                          quote("RECHARGE " + spaced(hrn)))
        body = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:      # smsbox may still be connecting
            status, body = yield threads.deferToThread(_http_get, url)
            if status == 202:
                break
            yield deferLater(0.3)
        assert body is not None and b"Accepted" in body, body
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            yield deferLater(0.1)
        assert got, "no MO relayed back by Kannel (see %s)" % (kdir,)
        mo = got[0]
        assert mo["from"].lstrip("+") == SHORT_CODE and mo["to"].lstrip("+") == MSISDN
        assert mo["text"].startswith("Your account was credited with 10.00 EUR"), mo
        assert stack.service.channel.counters["activations"] == 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if web is not None:
            yield web.stopListening()
        yield stack.stop()
