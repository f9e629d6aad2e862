"""Finding 3 of issue 16 at the HTTP level: anyone who reached /ivr or /ussd could bar a
subscriber.  Now only configured peers are served; a request from anything else is
refused before any voucher is looked up, so it can neither count a failure nor bar.

Real /ivr and /ussd resources on a 127.0.0.1 listener, over the real ActivationService
and a temporary SQLite store."""
from __future__ import annotations

import base64
from urllib.parse import urlencode

import pytest_twisted
from sqlalchemy import select
from twisted.internet import task
from twisted.web import resource, server

from core.requests import ActivationRequest, Channel
from core.results import ResultCode as R
from core.schema import fraud_counter
from protocols.common.peers import PeerSettings
from protocols.ivr.config import IvrSettings
from protocols.ivr.resource import build_resource as build_ivr
from protocols.ussd.config import UssdSettings
from protocols.ussd.resource import build_resource as build_ussd
from tests.helpers import VType, build_service, make_batch, make_store, txn_rows
from tests.unit.test_ussd_http import post

VICTIM = "0641234567"
VICTIM_E164 = "381641234567"
RIGHT = "ivr-platform-secret"


class Passwords:
    """The node's password pool, for a peer whose hash is a marker (no Argon2 in a unit test)."""

    def verify(self, stored_hash, password):
        from twisted.internet import defer
        return defer.succeed(stored_hash == "$argon2id$marker" and password == RIGHT)


async def start(reactor, sqlite_url, tmp_path, ivr_peers, ussd_peers):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    _info, by_serial = make_batch(store, cipher, 2)
    runner, service, _ledger = build_service(store, cipher, reactor=reactor)
    root = resource.Resource()
    clock = task.Clock()
    root.putChild(b"ivr", build_ivr(service, IvrSettings(peers=ivr_peers), clock=clock,
                                    hrn_lengths={VType().hrn_length}, passwords=Passwords()))
    ussd = build_ussd(service, UssdSettings(peers=ussd_peers), clock=clock,
                      hrn_lengths={VType().hrn_length})
    root.putChild(b"ussd", ussd)
    site = server.Site(root)
    site.displayTracebacks = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    base = b"http://127.0.0.1:%d" % port.getHost().port

    async def stop():
        ussd.dialogues.stop()
        await port.stopListening()
        await runner.stop()
        store.dispose()
    return base, store, service, ussd, list(by_serial.values()), stop


def fraud_rows(store):
    return store.run_sync(lambda tx: tx.execute(select(fraud_counter)).rows)


def ivr_form(msisdn, hrn, **extra):
    return urlencode({"msisdn": msisdn, "hrn": hrn, "lang": "en", "attempt": "1",
                      **extra}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest_twisted.ensureDeferred
async def test_unknown_clients_cannot_bar_a_subscriber(reactor, sqlite_url, tmp_path):
    """Five POST /ivr/activate (and five USSD begins) with the victim's MSISDN and random
    HRNs from a client that is not a configured peer: each is refused 403 before any
    lookup, nothing is counted, and the victim's next valid recharge succeeds."""
    lan_only = [PeerSettings(name="ivr-platform", networks=["10.0.0.0/8"])]
    gw_only = [PeerSettings(name="ussd-gw", networks=["10.0.0.0/8"])]
    base, store, service, ussd, hrns, stop = await start(reactor, sqlite_url, tmp_path,
                                                         lan_only, gw_only)
    try:
        for i in range(5):
            r = await post(base + b"/ivr/activate", ivr_form(VICTIM, "1234567890%04d" % i), FORM)
            assert r.code == 403 and r.headers["x-ivoms-error"] == "unknown_peer"
            assert b'name="ivoms-error" content="unknown_peer"' in r.body
            r = await post(base + b"/ussd", b'{"dialogue_id": "x%d", "operation": "begin", '
                           b'"msisdn": "%s", "text": "*123*1234567890%04d#"}'
                           % (i, VICTIM.encode(), i), {"Content-Type": "application/json"})
            assert r.code == 403 and r.json()["detail"].startswith("unknown_peer")
        assert txn_rows(store) == [] and fraud_rows(store) == []
        assert ussd.dialogues.sessions == {}
        result = await service.activate(ActivationRequest(VICTIM, hrns[0], Channel.SOAP,
                                                          source="shop"))
        assert result.code == R.SUCCESS
    finally:
        await stop()


@pytest_twisted.ensureDeferred
async def test_a_peer_with_credentials_is_served_under_its_name(reactor, sqlite_url, tmp_path):
    peers = [PeerSettings(name="vxml-1", networks=["127.0.0.1"], user="vxml-1",
                          password_hash="$argon2id$marker")]
    base, store, _service, _ussd, hrns, stop = await start(reactor, sqlite_url, tmp_path,
                                                           peers, [])
    try:
        r = await post(base + b"/ivr/", b"", FORM, method=b"GET")
        assert r.code == 401 and r.headers["x-ivoms-error"] == "credentials_required"
        assert r.headers["www-authenticate"].startswith("Basic")
        wrong = {**FORM, "Authorization": "Basic " + base64.b64encode(b"vxml-1:guess").decode()}
        r = await post(base + b"/ivr/activate", ivr_form(VICTIM, hrns[0]), wrong)
        assert r.code == 401 and r.headers["x-ivoms-error"] == "bad_credentials"
        assert txn_rows(store) == []
        right = {**FORM, "Authorization": "Basic " + base64.b64encode(
            ("vxml-1:" + RIGHT).encode()).decode()}
        r = await post(base + b"/ivr/activate", ivr_form(VICTIM, hrns[0]), right)
        assert r.code == 200 and r.headers["x-ivoms-result"] == "0"
        [t] = txn_rows(store)
        assert (t["channel"], t["source"], t["msisdn"]) == ("ivr", "ivr:vxml-1", VICTIM_E164)
        # a USSD channel without peers refuses everyone
        r = await post(base + b"/ussd", b'{"dialogue_id": "a", "operation": "begin", '
                       b'"msisdn": "0641234567", "text": "*123#"}',
                       {"Content-Type": "application/json"})
        assert r.code == 403 and r.headers["x-ivoms-error"] == "unknown_peer"
    finally:
        await stop()
