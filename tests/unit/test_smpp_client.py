"""ESME client mode on a fake endpoint and task.Clock: bind, MO/MT, back-off, re-bind, unbind."""

from __future__ import annotations

from twisted.internet import address, defer, error, task
from twisted.python.failure import Failure

from protocols.smpp import errors as E
from protocols.smpp.codec import (
    BindReceiver, BindReceiverResp, BindTransceiver, BindTransceiverResp,
    BindTransmitter, BindTransmitterResp, DeliverSm, DeliverSmResp, EnquireLink,
    EnquireLinkResp, Outbind, SubmitSm, SubmitSmResp, Unbind, UnbindResp)
from protocols.smpp.config import SessionSettings, SmscSettings
from protocols.smpp.client import SmscConnector
from tests.unit.test_smpp_fakes import (
    HRN, MSISDN, SHORT_CODE, sms_activation, Transport, feed, make_channel, received)


class FakeEndpoint:
    """Connects at once (or refuses) and records each connection."""

    def __init__(self) -> None:
        self.refuse = False
        self.attempts = []

    def connect(self, factory):
        if self.refuse:
            self.attempts.append(None)
            return defer.fail(error.ConnectionRefusedError())
        proto = factory.buildProtocol(address.IPv4Address("TCP", "127.0.0.1", 2775))
        t = Transport()
        proto.makeConnection(t)
        self.attempts.append((proto, t))
        return defer.succeed(proto)

    def last(self):
        return self.attempts[-1]


def lose(proto):
    proto.connectionLost(Failure(error.ConnectionDone()))


def connector(bind="transceiver", clock=None, activation=None, **session):
    clock = clock or task.Clock()
    ep = FakeEndpoint()
    smsc = SmscSettings(name="smsc1", system_id="ivoms", password="pw", bind=bind,
                        retry_initial=1.0, retry_max=8.0, retry_factor=2.0)
    channel = make_channel(activation or sms_activation(), clock)
    c = SmscConnector(smsc, SessionSettings(**session), channel, reactor=clock, clock=clock,
                      endpoint=ep, jitter=lambda: 0.0)
    return c, ep, clock


def accept_bind(proto, t, resp_cls=BindTransceiverResp, status=0):
    (bind,) = received(t)
    feed(proto, resp_cls(sequence_number=bind.sequence_number, command_status=status,
                         system_id="smsc"))
    return bind


def test_binds_as_transceiver_with_tcp_nodelay():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    bind = accept_bind(proto, t)
    assert type(bind) is BindTransceiver
    assert (bind.system_id, bind.password) == ("ivoms", "pw")
    assert t.nodelay is True
    assert len(c.sessions) == 1 and c.sessions[0].can_send_mt


def test_mo_deliver_sm_answered_and_reply_as_submit_sm():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t)
    feed(proto, DeliverSm(sequence_number=5, source_addr=MSISDN, source_addr_ton=1,
                          destination_addr=SHORT_CODE, short_message=b"RECHARGE " + HRN.encode()))
    resp, reply = received(t)
    assert type(resp) is DeliverSmResp and resp.command_status == 0
    assert type(reply) is SubmitSm and reply.destination_addr == MSISDN
    assert reply.source_addr == SHORT_CODE and reply.short_message.startswith(b"Your account")
    (req,) = c.channel.activation.requests
    assert req.channel_ref == "smsc1:1" and req.source == "smsc:smsc1"
    feed(proto, SubmitSmResp(sequence_number=reply.sequence_number, message_id="m1"))
    assert c.channel.counters["replies"] == 1


def test_submit_sm_from_smsc_is_refused():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t)
    feed(proto, SubmitSm(sequence_number=5, source_addr=MSISDN, short_message=b"x"))
    (resp,) = received(t)
    assert resp.command_status == E.ESME_RINVBNDSTS


def test_refused_bind_closes_and_retries_with_backoff():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t, status=E.ESME_RINVPASWD)
    assert t.disconnecting and c.sessions == []
    lose(proto)
    assert len(ep.attempts) == 1
    clock.advance(0.9)
    assert len(ep.attempts) == 1
    clock.advance(0.1)         # first retry after retry_initial
    assert len(ep.attempts) == 2
    proto, t = ep.last()
    accept_bind(proto, t)
    assert len(c.sessions) == 1


def test_connection_refused_backs_off_exponentially():
    c, ep, clock = connector()
    ep.refuse = True
    c.startService()
    times = [clock.seconds()]
    for _ in range(40):
        clock.advance(0.5)
        if len(ep.attempts) > len(times):
            times.append(clock.seconds())
    gaps = [round(b - a, 1) for a, b in zip(times, times[1:])]
    assert gaps[:4] == [1.0, 2.0, 4.0, 8.0] and max(gaps) == 8.0
    ep.refuse = False
    clock.advance(8.0)
    proto, t = ep.last()
    accept_bind(proto, t)
    assert len(c.sessions) == 1


def test_rebinds_after_the_link_is_lost():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t)
    lose(proto)
    assert c.sessions == []
    clock.advance(1.0)
    proto, t = ep.last()
    assert len(ep.attempts) == 2
    accept_bind(proto, t)
    assert len(c.sessions) == 1


def test_unanswered_enquire_link_drops_and_rebinds():
    c, ep, clock = connector(enquire_link_interval=30, response_timeout=5)
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t)
    clock.advance(30)
    (ping,) = received(t)
    assert type(ping) is EnquireLink
    clock.advance(5)
    assert t.disconnecting
    lose(proto)
    clock.advance(1.0)
    assert len(ep.attempts) == 2


def test_enquire_link_from_smsc_answered():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t)
    feed(proto, EnquireLink(sequence_number=77))
    assert received(t) == [EnquireLinkResp(sequence_number=77)]


def test_receiver_plus_transmitter():
    c, ep, clock = connector(bind="receiver+transmitter")
    c.startService()
    assert len(ep.attempts) == 2
    (rx, trx), (tx, ttx) = ep.attempts
    kinds = {type(accept_bind(rx, trx, BindReceiverResp)), type(accept_bind(tx, ttx,
                                                                            BindTransmitterResp))}
    assert kinds == {BindReceiver, BindTransmitter}
    feed(rx, DeliverSm(sequence_number=5, source_addr=MSISDN, destination_addr=SHORT_CODE,
                       short_message=b"hello"))
    assert [type(p) for p in received(trx)] == [DeliverSmResp]
    (reply,) = received(ttx)
    assert type(reply) is SubmitSm and b"To recharge" in reply.short_message


def test_reply_waits_for_a_transmitter_bind():
    activation = sms_activation(hold=True)
    c, ep, clock = connector(bind="receiver+transmitter", activation=activation)
    c.startService()
    (rx, trx), (tx, ttx) = ep.attempts
    accept_bind(rx, trx, BindReceiverResp)
    received(ttx)               # the transmitter bind is still unanswered
    feed(rx, DeliverSm(sequence_number=5, source_addr=MSISDN, destination_addr=SHORT_CODE,
                       short_message=b"RECHARGE " + HRN.encode()))
    received(trx)
    activation.release()
    assert received(ttx) == []
    feed(tx, BindTransmitterResp(sequence_number=1, system_id="smsc"))
    (reply,) = received(ttx)
    assert type(reply) is SubmitSm


def test_stop_unbinds():
    c, ep, clock = connector()
    c.startService()
    proto, t = ep.last()
    accept_bind(proto, t)
    done = []
    c.stopService().addCallback(done.append)
    (unbind,) = received(t)
    assert type(unbind) is Unbind
    feed(proto, UnbindResp(sequence_number=unbind.sequence_number))
    assert t.disconnecting
    lose(proto)
    assert done
    assert clock.getDelayedCalls() == []


def test_outbind_answered_with_bind_receiver():
    from protocols.smpp.protocol import SmppProtocol
    c, ep, clock = connector()
    session = SmppProtocol(c, SessionSettings(), clock, role="esme")
    t = Transport()
    session.makeConnection(t)
    feed(session, Outbind(sequence_number=3, system_id="smsc", password="x"))
    (bind,) = received(t)
    assert type(bind) is BindReceiver and (bind.system_id, bind.password) == ("ivoms", "pw")
    feed(session, BindReceiverResp(sequence_number=bind.sequence_number, system_id="smsc"))
    assert session.bind_type == "receiver" and session in c.sessions
