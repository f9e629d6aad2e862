"""Diameter transport on StringTransport and task.Clock: peer state machine,
watchdog, DPR, failover with the T flag, window, timeouts, bad answers."""
import random

import pytest
from twisted.internet import defer, task
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.internet.testing import StringTransport

from billing.diameter.message import (
    LocalIdentity, build_cca, build_cea, build_dwa, build_dpa,
    decode_message)
from billing.diameter.node.client import DiameterClient
from billing.diameter.config import PeerAddress, TransportSettings, from_mapping
from billing.diameter.node.connector import DiameterBilling
from billing.diameter.message.constants import (
    CMD_CAPABILITIES_EXCHANGE, CMD_CREDIT_CONTROL, CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER, FLAG_RETRANSMIT)
from billing.diameter.message.framing import split_frames
from billing.diameter.message.messages import build_dwr, build_dpr
from billing.diameter.message.credit import CreditSettings
from core.billing import BillingUnavailable, IBillingPort
from core.results import ResultCode
from zope.interface.verify import verifyObject

OCS = LocalIdentity("ocs.example.net", "example.net", ("192.0.2.1",))
LOCAL = LocalIdentity("ivoms.example.net", "example.net", ("192.0.2.10",))


class FakeEndpoint:
    """Records connect attempts; the test completes them."""

    def __init__(self):
        self.attempts = []
        self.peers = []

    def connect(self, factory):
        d = defer.Deferred()
        self.attempts.append((factory, d))
        return d


class Peer:
    """One simulated server side of a connection."""

    def __init__(self, endpoint, index=-1):
        factory, d = endpoint.attempts[index]
        self.transport = StringTransport()
        self.proto = factory.buildProtocol(None)
        self.proto.makeConnection(self.transport)
        d.callback(self.proto)
        endpoint.peers.append(self)
        self.lost = False
        self.seen = []
        self._buf = b""

    def received(self):
        """Decoded messages written by the client since last call."""
        self._buf += self.transport.value()
        self.transport.clear()
        frames, self._buf = split_frames(self._buf)
        msgs = [decode_message(f) for f in frames]
        self.seen += msgs
        return msgs

    def feed(self, data):
        self.proto.dataReceived(data)

    def open(self):
        (cer,) = [m for m in self.received()
                  if m.header.command_code == CMD_CAPABILITIES_EXCHANGE]
        self.feed(build_cea(cer, OCS))

    def lose(self):
        self.transport.loseConnection()
        self.lost = True
        self.proto.connectionLost(Failure(ConnectionLost("gone")))

    def close_if_asked(self):
        t = self.transport
        if not self.lost and (t.disconnecting or getattr(t, "disconnected", False)):
            self.lost = True
            self.proto.connectionLost(Failure(ConnectionDone()))


def make(peers=1, **kw):
    clock = task.Clock()
    endpoints = {}

    def endpoint(addr):
        endpoints[addr.label] = FakeEndpoint()
        return endpoints[addr.label]
    settings = TransportSettings(
        peers=tuple(PeerAddress("127.0.0.1", 3868 + i, priority=i,
                                name="p%d" % i) for i in range(peers)),
        **kw)
    client = DiameterClient(LOCAL, settings, reactor=clock, clock=clock,
                            rng=random.Random(1), endpoint_factory=endpoint)
    client.startService()
    client.endpoints = endpoints
    billing = DiameterBilling(client, LOCAL, CreditSettings(
        "example.net", "32274@3gpp.org"), clock=clock)
    return clock, client, billing, endpoints


def ccrs(peer):
    return [m for m in peer.received()
            if m.header.command_code == CMD_CREDIT_CONTROL]


def result(d):
    out = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


def stop(clock, client):
    d = client.stopService()
    for _ in range(100):
        for ep in client.endpoints.values():
            for peer in ep.peers:
                peer.close_if_asked()
        if d.called:
            break
        clock.advance(1)
    assert d.called
    assert not [c for c in clock.getDelayedCalls() if c.active()]


# --- peer state machine ------------------------------------------------------

def test_cer_cea_opens_the_peer_and_announces_credit_control():
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    (cer,) = peer.received()
    assert cer.header.command_code == CMD_CAPABILITIES_EXCHANGE
    assert cer.header.is_request and cer.header.application_id == 0
    assert client.open_peers() == []
    peer.feed(build_cea(cer, OCS))
    assert client.open_peers() == ["p0"]
    assert verifyObject(IBillingPort, billing)
    stop(clock, client)


def test_cea_without_credit_control_is_refused_and_closed():
    clock, client, _, eps = make()
    peer = Peer(eps["p0"])
    (cer,) = peer.received()
    from billing.diameter.message.messages import build_answer
    peer.feed(build_answer(cer.header, OCS, 2001))   # no application ids
    assert client.open_peers() == []
    assert peer.transport.disconnecting
    stop(clock, client)


def test_no_cea_in_time_aborts():
    clock, client, _, eps = make(cea_timeout=3)
    peer = Peer(eps["p0"])
    clock.advance(3)
    assert peer.transport.disconnecting or peer.transport.disconnected
    stop(clock, client)


def test_reconnects_with_back_off_after_loss():
    clock, client, _, eps = make(reconnect_initial=2.0)
    peer = Peer(eps["p0"])
    peer.open()
    peer.lose()
    assert len(eps["p0"].attempts) == 1
    clock.advance(10)
    assert len(eps["p0"].attempts) == 2
    stop(clock, client)


def test_watchdog_sends_dwr_after_tw_and_dwa_keeps_peer_open():
    clock, client, _, eps = make(watchdog_interval=30, watchdog_jitter=2)
    peer = Peer(eps["p0"])
    peer.open()
    clock.advance(27.9)
    assert peer.received() == []
    clock.advance(4.2)
    (dwr,) = peer.received()
    assert dwr.header.command_code == CMD_DEVICE_WATCHDOG
    peer.feed(build_dwa(dwr, OCS))
    assert client.open_peers() == ["p0"]
    stop(clock, client)


def test_watchdog_silence_makes_peer_suspect_then_closes():
    clock, client, _, eps = make(watchdog_interval=10, watchdog_jitter=0)
    peer = Peer(eps["p0"])
    peer.open()
    clock.advance(10)            # DWR sent
    assert [m.header.command_code for m in peer.received()] == [280]
    clock.advance(10)            # unanswered: suspect
    assert client.open_peers() == []
    assert not peer.transport.disconnecting
    clock.advance(10)            # still silent: closed
    assert peer.transport.disconnecting or peer.transport.disconnected
    stop(clock, client)


def test_answers_peer_dwr_and_dpr():
    clock, client, _, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    peer.feed(build_dwr(OCS, hop_by_hop=7, end_to_end=8))
    (dwa,) = peer.received()
    assert dwa.header.command_code == 280 and not dwa.header.is_request
    assert (dwa.header.hop_by_hop, dwa.result_code) == (7, 2001)
    peer.feed(build_dpr(OCS, hop_by_hop=9, end_to_end=10))
    (dpa,) = peer.received()
    assert dpa.header.command_code == 282 and dpa.result_code == 2001
    assert client.open_peers() == []
    assert peer.transport.disconnecting
    stop(clock, client)


def test_unknown_request_from_peer_gets_3001():
    clock, client, _, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    from billing.diameter.message.messages import encode_message
    from billing.diameter.message.constants import FLAG_REQUEST
    peer.feed(encode_message(999, FLAG_REQUEST, 0, OCS.origin_avps(),
                             hop_by_hop=5))
    (ans,) = peer.received()
    assert ans.result_code == 3001 and ans.header.is_error
    stop(clock, client)


def test_stop_sends_dpr_and_waits_for_dpa():
    clock, client, _, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d = client.stopService()
    (dpr,) = peer.received()
    assert dpr.header.command_code == CMD_DISCONNECT_PEER
    assert not d.called
    peer.feed(build_dpa(dpr, OCS))
    assert peer.transport.disconnecting
    peer.close_if_asked()
    assert d.called
    assert not [c for c in clock.getDelayedCalls() if c.active()]


# --- credits -------------------------------------------------------------------

def credit(billing, key="tx1", account="381641234567"):
    return billing.credit(account, 1050, "EUR", 30, key)


@pytest.mark.parametrize("code, credited, rc", [
    (2001, True, ResultCode.SUCCESS),
    (5030, False, ResultCode.SUBSCRIBER_UNKNOWN),
    (5003, False, ResultCode.BILLING_REJECTED),
    (4012, False, ResultCode.BILLING_REJECTED),
])
def test_credit_outcomes(code, credited, rc):
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d = credit(billing)
    (ccr,) = ccrs(peer)
    assert ccr.header.application_id == 4 and ccr.header.is_proxiable
    peer.feed(build_cca(ccr, OCS, code))
    out = result(d)
    assert out.credited is credited and out.code == rc
    stop(clock, client)


@pytest.mark.parametrize("code", [3002, 3004, 5012, 1001])
def test_transient_results_are_unknown(code):
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d = credit(billing)
    (ccr,) = ccrs(peer)
    peer.feed(build_cca(ccr, OCS, code))
    f = result(d)
    assert isinstance(f.value, BillingUnavailable) and f.value.sent
    stop(clock, client)


def test_experimental_user_unknown():
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d = credit(billing)
    (ccr,) = ccrs(peer)
    peer.feed(build_cca(ccr, OCS, None, experimental=(10415, 5030)))
    assert result(d).code == ResultCode.SUBSCRIBER_UNKNOWN
    stop(clock, client)


def test_no_open_peer_is_unavailable_not_sent():
    clock, client, billing, eps = make()
    f = result(credit(billing))
    assert isinstance(f.value, BillingUnavailable) and f.value.sent is False
    stop(clock, client)


def test_unknown_currency_is_unavailable_not_sent():
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    f = result(billing.credit("381641234567", 100, "XQQ", 0, "k"))
    assert isinstance(f.value, BillingUnavailable) and not f.value.sent
    assert ccrs(peer) == []
    stop(clock, client)


def test_request_timeout_is_unavailable_sent():
    clock, client, billing, eps = make(request_timeout=3)
    peer = Peer(eps["p0"])
    peer.open()
    d = credit(billing)
    (ccr,) = ccrs(peer)
    clock.advance(3)
    f = result(d)
    assert isinstance(f.value, BillingUnavailable) and f.value.sent
    # the late answer is dropped quietly
    peer.feed(build_cca(ccr, OCS, 2001))
    assert client.open_peers() == ["p0"]
    stop(clock, client)


def test_cancelled_request_drops_late_answer():
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d = credit(billing)
    d.addTimeout(1, clock)
    (ccr,) = ccrs(peer)
    clock.advance(1)
    assert isinstance(result(d).value, defer.TimeoutError)
    assert client.outstanding_count() == 0
    peer.feed(build_cca(ccr, OCS, 2001))
    stop(clock, client)


def test_malformed_answer_is_unavailable_and_connection_survives():
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d = credit(billing)
    (ccr,) = ccrs(peer)
    cca = build_cca(ccr, OCS, 2001)
    peer.feed(cca[:25] + b"\xff\xff\xf0" + cca[28:])
    f = result(d)
    assert isinstance(f.value, BillingUnavailable) and f.value.sent
    assert client.open_peers() == ["p0"] and not peer.transport.disconnecting
    stop(clock, client)


def test_answer_with_wrong_session_id_is_unknown():
    clock, client, billing, eps = make()
    peer = Peer(eps["p0"])
    peer.open()
    d1, d2 = credit(billing, "a"), credit(billing, "b")
    c1, c2 = ccrs(peer)
    from billing.diameter.message.messages import build_answer
    wrong = build_answer(c1.header, OCS, 2001, session_id=c2.session_id)
    peer.feed(wrong)
    assert isinstance(result(d1).value, BillingUnavailable)
    peer.feed(build_cca(c2, OCS, 2001))
    assert result(d2).credited
    stop(clock, client)


def test_garbage_stream_closes_and_fails_over():
    clock, client, billing, eps = make(peers=2)
    a, b = Peer(eps["p0"]), Peer(eps["p1"])
    a.open()
    b.open()
    d = credit(billing)
    (ccr,) = ccrs(a)
    a.feed(b"\x07garbage-not-diameter")
    assert a.transport.disconnecting or a.transport.disconnected
    a.close_if_asked()
    (again,) = ccrs(b)
    assert again.header.flags & FLAG_RETRANSMIT
    b.feed(build_cca(again, OCS, 2001))
    assert result(d).credited
    stop(clock, client)


def test_priority_then_failover_with_t_flag_same_end_to_end():
    clock, client, billing, eps = make(peers=2)
    a, b = Peer(eps["p0"]), Peer(eps["p1"])
    b.open()
    a.open()
    d = credit(billing)
    (first,) = ccrs(a)                 # priority 0 preferred
    assert ccrs(b) == []
    assert not first.header.is_retransmit
    a.lose()
    (again,) = ccrs(b)
    assert again.header.is_retransmit
    assert again.header.end_to_end == first.header.end_to_end
    assert again.session_id == first.session_id
    b.feed(build_cca(again, OCS, 2001))
    assert result(d).credited
    assert client.stats["retransmitted"] == 1
    assert [link.answers for link in client.links] == [0, 1]      # counted per peer
    stop(clock, client)


def test_suspect_peer_fails_over_outstanding_requests():
    clock, client, billing, eps = make(peers=2, watchdog_interval=10,
                                       watchdog_jitter=0, request_timeout=60)
    a, b = Peer(eps["p0"]), Peer(eps["p1"])
    a.open()
    b.open()
    clock.advance(5)
    b.received()
    d = credit(billing)
    (first,) = ccrs(a)
    clock.advance(10)     # a: DWR (b answers its own)
    for m in b.received():
        if m.header.command_code == 280:
            b.feed(build_dwa(m, OCS))
    clock.advance(10)     # a: suspect
    (again,) = ccrs(b)
    assert again.header.is_retransmit
    b.feed(build_cca(again, OCS, 2001))
    assert result(d).credited
    a.feed(build_cca(first, OCS, 2001))   # late duplicate answer dropped
    stop(clock, client)


def test_lost_without_alternative_resends_after_reconnect():
    clock, client, billing, eps = make(request_timeout=30, reconnect_initial=1)
    a = Peer(eps["p0"])
    a.open()
    d = credit(billing)
    (first,) = ccrs(a)
    a.lose()
    assert not d.called
    clock.advance(5)
    a2 = Peer(eps["p0"])
    a2.open()
    (again,) = ccrs(a2)
    assert again.header.is_retransmit
    assert again.header.end_to_end == first.header.end_to_end
    a2.feed(build_cca(again, OCS, 2001))
    assert result(d).credited
    stop(clock, client)


def test_lost_without_any_peer_times_out_as_sent():
    clock, client, billing, eps = make(request_timeout=5)
    a = Peer(eps["p0"])
    a.open()
    d = credit(billing)
    a.lose()
    clock.advance(5)
    f = result(d)
    assert isinstance(f.value, BillingUnavailable) and f.value.sent
    stop(clock, client)


def test_window_queues_and_drains():
    clock, client, billing, eps = make(window=2, request_timeout=10)
    a = Peer(eps["p0"])
    a.open()
    ds = [credit(billing, "k%d" % i) for i in range(3)]
    sent = ccrs(a)
    assert len(sent) == 2 and len(client.queue) == 1
    a.feed(build_cca(sent[0], OCS, 2001))
    (third,) = ccrs(a)
    assert not third.header.is_retransmit
    for m in (sent[1], third):
        a.feed(build_cca(m, OCS, 2001))
    assert all(result(d).credited for d in ds)
    stop(clock, client)


def test_queued_request_that_never_left_times_out_as_not_sent():
    clock, client, billing, eps = make(window=1, request_timeout=2)
    a = Peer(eps["p0"])
    a.open()
    d1, d2 = credit(billing, "a"), credit(billing, "b")
    a.lose()                  # d1 waits (sent), d2 never left
    clock.advance(2)
    assert result(d1).value.sent is True
    assert result(d2).value.sent is False
    stop(clock, client)


def test_hop_by_hop_identifiers_differ_per_request():
    clock, client, billing, eps = make()
    a = Peer(eps["p0"])
    a.open()
    for i in range(5):
        credit(billing, "k%d" % i)
    msgs = ccrs(a)
    assert len({m.header.hop_by_hop for m in msgs}) == 5
    assert len({m.header.end_to_end for m in msgs}) == 5
    for m in msgs:
        a.feed(build_cca(m, OCS, 2001))
    stop(clock, client)


def test_lookup_resends_same_ccr_with_t_flag():
    clock, client, billing, eps = make(request_timeout=2)
    a = Peer(eps["p0"])
    a.open()
    d = credit(billing)
    (first,) = ccrs(a)
    clock.advance(2)
    assert isinstance(result(d).value, BillingUnavailable)
    look = billing.lookup("tx1")
    (again,) = ccrs(a)
    assert again.header.is_retransmit
    assert again.session_id == first.session_id
    assert again.raw[20:] == first.raw[20:]    # the very same AVPs
    a.feed(build_cca(again, OCS, 2001))
    assert result(look).credited
    stop(clock, client)


def test_lookup_credit_rebuilds_after_restart_and_maps_refusal():
    clock, client, billing, eps = make()
    a = Peer(eps["p0"])
    a.open()
    f = result(billing.lookup("never-seen"))
    assert isinstance(f.value, BillingUnavailable)
    look = billing.lookup_credit("tx9", "381641234567", 1050, "EUR", 30)
    (ccr,) = ccrs(a)
    assert ccr.header.is_retransmit
    a.feed(build_cca(ccr, OCS, 5003))
    out = result(look)
    assert not out.credited and out.code == ResultCode.BILLING_REJECTED
    stop(clock, client)


def test_lookup_with_no_peer_is_unknown_sent():
    clock, client, billing, eps = make()
    f = result(billing.lookup_credit("tx9", "381641234567", 1, "EUR", 0))
    assert isinstance(f.value, BillingUnavailable) and f.value.sent


def test_from_mapping_builds_settings():
    local, cs, ts, extra = from_mapping({
        "origin_host": "a.example", "origin_realm": "example",
        "peers": [{"host": "127.0.0.1", "port": 3868, "priority": 1},
                  {"host": "127.0.0.2"}],
        "validity_avps": [{"vendor_id": 32473, "code": 1}],
        "requested_action": 1, "window": 8, "session_host": "ivoms.example"})
    assert local.origin_host == "a.example" and cs.requested_action == 1
    assert ts.window == 8 and len(ts.peers) == 2
    assert extra["session_host"] == "ivoms.example"
    with pytest.raises(ValueError):
        TransportSettings(peers=())
    with pytest.raises(ValueError):
        TransportSettings(peers=(PeerAddress("h"),), watchdog_interval=3)


def test_ready_once_a_peer_answers_cea_and_not_before():
    from core.interfaces import IBillingReadiness
    clock, client, billing, eps = make()
    assert verifyObject(IBillingReadiness, billing)
    waiting = billing.when_ready(5)
    clock.advance(1)
    assert not waiting.called            # CER sent, no CEA yet
    peer = Peer(eps["p0"])
    (cer,) = peer.received()
    peer.feed(build_cea(cer, OCS))
    clock.advance(0.02)
    assert result(waiting) is True
    stop(clock, client)


def test_not_ready_after_the_timeout_when_no_peer_answers():
    clock, client, billing, eps = make()
    waiting = billing.when_ready(2)
    clock.advance(1.5)
    assert not waiting.called
    clock.advance(0.6)
    assert result(waiting) is False
    stop(clock, client)
