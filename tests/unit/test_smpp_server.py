"""Server-mode sessions on StringTransport and task.Clock: binds, state, keep-alive, window, throttling."""

from __future__ import annotations

import pytest
from twisted.internet import task

from protocols.smpp import errors as E
from protocols.smpp.codec import (
    BindReceiver, BindReceiverResp, BindTransceiver, BindTransceiverResp,
    BindTransmitter, BindTransmitterResp, DataSm, DataSmResp, DeliverSm,
    DeliverSmResp, EnquireLink, EnquireLinkResp, GenericNack, Outbind,
    SubmitSm, SubmitSmResp, Unbind, UnbindResp, tlvs)
from protocols.smpp.config import AccountSettings
from protocols.smpp.protocol import BOUND, OPEN, TRANSCEIVER
from tests.unit.test_smpp_fakes import (
    HRN, MSISDN, SHORT_CODE, sms_activation, connect, disconnect, feed,
    make_factory, received)


def bound(factory, bind=BindTransceiver, system_id="smsc", password="secret", host="127.0.0.1"):
    proto, t = connect(factory, host)
    feed(proto, bind(sequence_number=1, system_id=system_id, password=password))
    (resp,) = received(t)
    assert resp.command_status == E.ESME_ROK, E.status_name(resp.command_status)
    return proto, t


def mo(text=b"RECHARGE " + HRN.encode(), seq=2, **kw):
    fields = dict(sequence_number=seq, source_addr=MSISDN, source_addr_ton=1,
                  source_addr_npi=1, destination_addr=SHORT_CODE, short_message=text)
    fields.update(kw)
    return SubmitSm(**fields)


# -- binds -------------------------------------------------------------------

@pytest.mark.parametrize("bind,resp_cls", [
    (BindTransmitter, BindTransmitterResp), (BindReceiver, BindReceiverResp),
    (BindTransceiver, BindTransceiverResp)])
def test_bind_success(bind, resp_cls):
    factory = make_factory()
    proto, t = connect(factory)
    feed(proto, bind(sequence_number=7, system_id="smsc", password="secret"))
    (resp,) = received(t)
    assert type(resp) is resp_cls
    assert (resp.sequence_number, resp.command_status, resp.system_id) == (7, 0, "ivoms")
    assert proto.state == BOUND and proto in factory.accounts["smsc"].sessions


@pytest.mark.parametrize("system_id,password,status", [
    ("nobody", "secret", E.ESME_RINVSYSID),
    ("smsc", "wrong", E.ESME_RINVPASWD),
    ("smsc", "", E.ESME_RINVPASWD),
])
def test_bind_refused(system_id, password, status):
    factory = make_factory()
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=3, system_id=system_id, password=password))
    (resp,) = received(t)
    assert type(resp) is BindTransceiverResp and resp.command_status == status
    assert proto.state != BOUND and t.disconnecting     # closed after the bind_resp
    # a later correct bind on a new connection works
    proto2, t2 = connect(factory)
    feed(proto2, BindTransceiver(sequence_number=4, system_id="smsc", password="secret"))
    assert received(t2)[0].command_status == E.ESME_ROK


def test_bind_brute_force_is_cut_short():
    """Finding 5: 300 wrong passwords: each connection closes after its bind_resp, and after
    10 failures from one address its binds are refused without a password check."""
    clock = task.Clock()
    factory = make_factory(clock=clock)
    statuses = []
    for i in range(300):
        proto, t = connect(factory, host="10.6.6.6")
        feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="pw%d" % i))
        statuses.append(received(t)[0].command_status)
        assert t.disconnecting
    assert statuses.count(E.ESME_RINVPASWD) == 10
    assert statuses.count(E.ESME_RBINDFAIL) == 290
    other, t = connect(factory, host="10.7.7.7")       # the account, too, is throttled
    feed(other, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    assert received(t)[0].command_status == E.ESME_RBINDFAIL
    clock.advance(61)                                   # the minute is over
    bound(factory, host="10.7.7.7")


def test_bind_type_not_allowed():
    factory = make_factory(AccountSettings(system_id="smsc", password="secret",
                                           bind_types=["transmitter"]))
    proto, t = connect(factory)
    feed(proto, BindReceiver(sequence_number=1, system_id="smsc", password="secret"))
    assert received(t)[0].command_status == E.ESME_RBINDFAIL


def test_address_not_allowed():
    factory = make_factory(AccountSettings(system_id="smsc", password="secret",
                                           allowed_addresses=["10.0.0.0/8"]))
    proto, t = connect(factory, host="192.168.1.5")
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    assert received(t)[0].command_status == E.ESME_RBINDFAIL
    proto2, t2 = connect(factory, host="10.1.2.3")
    feed(proto2, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    assert received(t2)[0].command_status == E.ESME_ROK


def test_max_binds_and_release_on_disconnect():
    factory = make_factory(AccountSettings(system_id="smsc", password="secret", max_binds=2))
    a, _ = bound(factory)
    bound(factory)
    third, t = connect(factory)
    feed(third, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    assert received(t)[0].command_status == E.ESME_RBINDFAIL
    assert t.disconnecting
    disconnect(a, None)
    bound(factory)


def test_bind_when_bound_is_ralybnd():
    proto, t = bound(make_factory())
    feed(proto, BindTransceiver(sequence_number=9, system_id="smsc", password="secret"))
    (resp,) = received(t)
    assert resp.command_status == E.ESME_RALYBND and proto.state == BOUND


def test_bind_timeout_closes_unbound_connection():
    clock = task.Clock()
    factory = make_factory(clock=clock, bind_timeout=5)
    proto, t = connect(factory)
    clock.advance(4.9)
    assert not t.disconnecting
    clock.advance(0.2)
    assert t.disconnecting
    disconnect(proto, t)
    assert clock.getDelayedCalls() == []


def test_tcp_nodelay_set():
    proto, t = connect(make_factory())
    assert t.nodelay is True


# -- state ---------------------------------------------------------------------

@pytest.mark.parametrize("pdu,resp_cls", [
    (SubmitSm(sequence_number=5, source_addr=MSISDN), SubmitSmResp),
    (DeliverSm(sequence_number=5, source_addr=MSISDN), DeliverSmResp),
    (DataSm(sequence_number=5, source_addr=MSISDN), DataSmResp),
    (Unbind(sequence_number=5), UnbindResp),
])
def test_pdu_before_bind_is_rinvbndsts(pdu, resp_cls):
    proto, t = connect(make_factory())
    feed(proto, pdu)
    (resp,) = received(t)
    assert type(resp) is resp_cls
    assert (resp.sequence_number, resp.command_status) == (5, E.ESME_RINVBNDSTS)
    assert not t.disconnecting


def test_outbind_to_server_is_nacked():
    proto, t = connect(make_factory())
    feed(proto, Outbind(sequence_number=5, system_id="x"))
    (resp,) = received(t)
    assert type(resp) is GenericNack and resp.command_status == E.ESME_RINVBNDSTS


def test_receiver_may_not_submit():
    factory = make_factory()
    proto, t = bound(factory, bind=BindReceiver)
    feed(proto, mo())
    (resp,) = received(t)
    assert type(resp) is SubmitSmResp and resp.command_status == E.ESME_RINVBNDSTS
    assert factory.channel.activation.requests == []


def test_enquire_link_answered_before_and_after_bind():
    proto, t = connect(make_factory())
    feed(proto, EnquireLink(sequence_number=11))
    assert received(t) == [EnquireLinkResp(sequence_number=11)]
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    received(t)
    feed(proto, EnquireLink(sequence_number=12))
    assert received(t) == [EnquireLinkResp(sequence_number=12)]


def test_enquire_link_sent_when_idle_and_link_closed_when_unanswered():
    clock = task.Clock()
    factory = make_factory(clock=clock, enquire_link_interval=30, response_timeout=10)
    proto, t = bound(factory)
    clock.advance(20)
    feed(proto, EnquireLink(sequence_number=2))   # traffic: not idle
    received(t)
    clock.advance(20)
    assert received(t) == []                      # 20 s since the last PDU
    clock.advance(10)
    (ping,) = received(t)
    assert type(ping) is EnquireLink
    feed(proto, EnquireLinkResp(sequence_number=ping.sequence_number))
    assert proto.outstanding == 0 and not t.disconnecting
    clock.advance(30)
    (ping,) = received(t)
    clock.advance(10)                             # unanswered
    assert t.disconnecting
    disconnect(proto, t)
    assert clock.getDelayedCalls() == []


def test_unbind_from_peer():
    factory = make_factory()
    proto, t = bound(factory)
    feed(proto, Unbind(sequence_number=8))
    assert received(t) == [UnbindResp(sequence_number=8)]
    assert t.disconnecting
    disconnect(proto, t)
    assert factory.accounts["smsc"].sessions == [] and proto not in factory.sessions


def test_unbind_from_us_waits_for_resp():
    clock = task.Clock()
    factory = make_factory(clock=clock)
    proto, t = bound(factory)
    done = []
    factory.stop().addCallback(done.append)
    (unbind,) = received(t)
    assert type(unbind) is Unbind and not t.disconnecting
    feed(proto, UnbindResp(sequence_number=unbind.sequence_number))
    assert t.disconnecting
    disconnect(proto, t)
    assert done and clock.getDelayedCalls() == []


def test_unbind_from_us_closes_after_timeout():
    clock = task.Clock()
    factory = make_factory(clock=clock, unbind_timeout=5)
    proto, t = bound(factory)
    proto.unbind()
    clock.advance(5)
    assert t.disconnecting


# -- MO and replies ---------------------------------------------------------------

def test_mo_acknowledged_then_reply_as_deliver_sm_on_same_bind():
    factory = make_factory()
    proto, t = bound(factory)
    feed(proto, mo())
    resp, reply = received(t)
    assert type(resp) is SubmitSmResp and resp.command_status == 0 and resp.message_id
    assert type(reply) is DeliverSm
    assert (reply.source_addr, reply.destination_addr) == (SHORT_CODE, MSISDN)
    assert reply.dest_addr_ton == 1
    assert b"credited with 10.00 EUR" in reply.short_message
    (req,) = factory.channel.activation.requests
    assert req.msisdn == "+" + MSISDN and req.hrn == HRN and req.channel_ref == resp.message_id
    assert req.source == "smpp:smsc"
    feed(proto, DeliverSmResp(sequence_number=reply.sequence_number))
    assert proto.outstanding == 0


def test_reply_goes_to_receiver_bind_of_same_account():
    factory = make_factory()
    tx, ttx = bound(factory, bind=BindTransmitter)
    other = make_factory()          # another listener's bind must not be used
    bound(other, bind=BindReceiver)
    rx, trx = bound(factory, bind=BindReceiver)
    feed(tx, mo())
    (resp,) = received(ttx)
    assert type(resp) is SubmitSmResp
    (reply,) = received(trx)
    assert type(reply) is DeliverSm


def test_reply_without_receiver_is_dropped_not_fatal():
    factory = make_factory()
    tx, t = bound(factory, bind=BindTransmitter)
    feed(tx, mo())
    (resp,) = received(t)
    assert resp.command_status == 0
    assert factory.channel.counters["reply_failures"] == 1


def test_deliver_sm_and_data_sm_accepted_as_mo():
    factory = make_factory()
    proto, t = bound(factory)
    feed(proto, DeliverSm(sequence_number=3, source_addr=MSISDN, destination_addr=SHORT_CODE,
                          short_message=b"TOPUP " + HRN.encode()))
    resp, reply = received(t)
    assert type(resp) is DeliverSmResp and resp.command_status == 0 and resp.message_id == ""
    feed(proto, DataSm(sequence_number=4, source_addr=MSISDN, destination_addr=SHORT_CODE,
                       optional=tlvs(message_payload=b"RECHARGE " + HRN.encode())))
    resp, reply = received(t)
    assert type(resp) is DataSmResp and resp.command_status == 0 and resp.message_id
    assert len(factory.channel.activation.requests) == 2


def test_response_goes_out_before_reply_even_when_activation_is_slow():
    activation = sms_activation(hold=True)
    factory = make_factory(activation=activation)
    proto, t = bound(factory)
    feed(proto, mo())
    (resp,) = received(t)
    assert type(resp) is SubmitSmResp
    activation.release()
    (reply,) = received(t)
    assert type(reply) is DeliverSm


# -- throttling and window -----------------------------------------------------------

def test_throughput_limit_gives_rthrottled_and_recovers():
    clock = task.Clock()
    factory = make_factory(AccountSettings(system_id="smsc", password="secret", throughput=2),
                           clock=clock)
    proto, t = bound(factory, bind=BindTransmitter)
    feed(proto, mo(seq=2), mo(seq=3), mo(seq=4))
    statuses = [p.command_status for p in received(t) if isinstance(p, SubmitSmResp)]
    assert statuses == [0, 0, E.ESME_RTHROTTLED]
    clock.advance(0.5)
    feed(proto, mo(seq=5))
    assert [p.command_status for p in received(t)] == [0]


def test_throughput_is_shared_by_the_account_binds():
    clock = task.Clock()
    factory = make_factory(AccountSettings(system_id="smsc", password="secret", throughput=1),
                           clock=clock)
    a, ta = bound(factory, bind=BindTransmitter)
    b, tb = bound(factory, bind=BindTransmitter)
    feed(a, mo(seq=2))
    feed(b, mo(seq=2))
    assert received(ta)[0].command_status == 0
    assert received(tb)[0].command_status == E.ESME_RTHROTTLED


def test_window_limits_outstanding_deliver_sm():
    clock = task.Clock()
    factory = make_factory(clock=clock, window=2)
    proto, t = bound(factory)
    for seq in range(2, 6):
        feed(proto, mo(seq=seq))
    out = received(t)
    replies = [p for p in out if isinstance(p, DeliverSm)]
    assert len(replies) == 2 and proto.outstanding == 2 and proto.queued == 2
    feed(proto, DeliverSmResp(sequence_number=replies[0].sequence_number))
    (more,) = received(t)
    assert type(more) is DeliverSm and proto.queued == 1
    feed(proto, DeliverSmResp(sequence_number=replies[1].sequence_number),
         DeliverSmResp(sequence_number=more.sequence_number))
    (last,) = received(t)
    feed(proto, DeliverSmResp(sequence_number=last.sequence_number))
    assert proto.outstanding == 0 and proto.queued == 0
    assert factory.channel.counters["replies"] == 4


def test_unanswered_deliver_sm_times_out_and_frees_the_window():
    clock = task.Clock()
    factory = make_factory(clock=clock, window=1, response_timeout=10)
    proto, t = bound(factory)
    feed(proto, mo(seq=2), mo(seq=3))
    assert len([p for p in received(t) if isinstance(p, DeliverSm)]) == 1
    clock.advance(10)
    assert len([p for p in received(t) if isinstance(p, DeliverSm)]) == 1
    assert factory.channel.counters["reply_failures"] == 1
    assert not t.disconnecting


def test_each_request_times_out_at_its_own_deadline_on_one_timer():
    clock = task.Clock()
    factory = make_factory(clock=clock, window=5, response_timeout=10)
    proto, t = bound(factory)
    feed(proto, mo(seq=2))
    clock.advance(4)
    feed(proto, mo(seq=3))
    clock.advance(4)
    feed(proto, mo(seq=4))
    first, second, third = [p for p in received(t) if isinstance(p, DeliverSm)]
    feed(proto, DeliverSmResp(sequence_number=second.sequence_number))
    expiry = [c for c in clock.getDelayedCalls() if c.func == proto._expire_due]
    assert len(expiry) == 1                           # one timer for the session
    clock.advance(1.9)                                # t=9.9: nothing due yet
    assert factory.channel.counters["reply_failures"] == 0
    clock.advance(0.1)                                # t=10: the first is due
    assert factory.channel.counters["reply_failures"] == 1
    clock.advance(7.9)                                # t=17.9: the third is not
    assert factory.channel.counters["reply_failures"] == 1 and proto.outstanding == 1
    clock.advance(0.1)                                # t=18: the third is due
    assert factory.channel.counters["reply_failures"] == 2
    assert factory.channel.counters["replies"] == 1 and proto.outstanding == 0
    assert [c for c in clock.getDelayedCalls() if c.func == proto._expire_due] == []


def test_answered_requests_leave_no_expiry_timer():
    clock = task.Clock()
    factory = make_factory(clock=clock, response_timeout=10)
    proto, t = bound(factory)
    feed(proto, mo(seq=2))
    (_, reply) = received(t)
    feed(proto, DeliverSmResp(sequence_number=reply.sequence_number))
    assert [c for c in clock.getDelayedCalls() if c.func == proto._expire_due] == []


def test_refused_deliver_sm_counts_as_failure():
    factory = make_factory()
    proto, t = bound(factory)
    feed(proto, mo())
    _, reply = received(t)
    feed(proto, DeliverSmResp(sequence_number=reply.sequence_number,
                              command_status=E.ESME_RX_P_APPN))
    assert factory.channel.counters["reply_failures"] == 1


def test_in_flight_limit_gives_rthrottled():
    activation = sms_activation(hold=True)
    from tests.unit.test_smpp_fakes import make_channel
    channel = make_channel(activation, max_in_flight=1)
    factory = make_factory(channel=channel)
    proto, t = bound(factory)
    feed(proto, mo(seq=2), mo(seq=3))
    assert [p.command_status for p in received(t)] == [0, E.ESME_RTHROTTLED]
    activation.release()
    feed(proto, mo(seq=4))
    assert [p.command_status for p in received(t) if isinstance(p, SubmitSmResp)] == [0]


def test_connection_lost_fails_pending_and_cancels_timers():
    clock = task.Clock()
    factory = make_factory(clock=clock, window=1)
    proto, t = bound(factory)
    feed(proto, mo(seq=2), mo(seq=3))
    disconnect(proto, t)
    assert clock.getDelayedCalls() == []
    assert factory.channel.counters["reply_failures"] == 2


def test_session_counts_state_name():
    proto, t = bound(make_factory())
    assert proto.bind_type == TRANSCEIVER and proto.system_id == "smsc"
