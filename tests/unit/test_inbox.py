"""The request inbox: repeats answered as first, MOs acknowledged once durable, replies surviving a crash."""
from __future__ import annotations

import time

import pytest
import pytest_twisted
from sqlalchemy import bindparam, select, update
from twisted.internet import task
from twisted.internet.defer import Deferred

from core import inbox
from core.requests import ActivationRequest
from core.results import ResultCode as R
from core.schema import request_inbox
from protocols.smpp.codec import BindTransceiver, DeliverSm, DeliverSmResp, SubmitSm, SubmitSmResp
from protocols.smpp.durable import SmsOutbox, make_route
from tests.helpers import build_service, credited_entries, make_batch, txn_rows
from tests.unit.test_smpp_fakes import (
    MSISDN, SHORT_CODE, connect, feed, make_channel, make_factory, received)


def _req(hrn, key=None, msisdn="0641234567"):
    return ActivationRequest(msisdn=msisdn, hrn=hrn, channel="soap", idempotency_key=key)


async def _until(cond, timeout=10.0):
    from twisted.internet import reactor
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        d = Deferred()
        reactor.callLater(0.005, d.callback, None)
        await d


async def _written(t, n=1):
    out = []
    await _until(lambda: out.extend(received(t)) or len(out) >= n)
    return out


def _inbox_states(store):
    return store.run_sync(lambda tx: tx.execute(
        select(request_inbox.c.reply_state, request_inbox.c.attempts)).rows)


@pytest.mark.parametrize("in_transaction", [True, False], ids=["one-unit", "saga"])
@pytest_twisted.ensureDeferred
async def test_repeat_with_same_key_gets_the_original_success(env, reactor, in_transaction):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor, in_transaction=in_transaction)
    try:
        first = await svc.activate(_req(hrn, key="client-1\0ref-7"))
        again = await svc.activate(_req(hrn, key="client-1\0ref-7"))
        assert first.code == again.code == R.SUCCESS
        assert (again.txn_id, again.serial, again.amount, again.balance) == \
            (first.txn_id, first.serial, first.amount, first.balance)
        assert (first.replay, again.replay) == ("", "answered")
        assert len(txn_rows(store)) == 1 and len(credited_entries(store)) == 1
        other = await svc.activate(_req(hrn, key="client-1\0ref-8"))
        assert other.code == R.VOUCHER_ALREADY_USED_BY_YOU
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_repeat_after_the_window_or_after_a_failure_is_a_new_request(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        bad = await svc.activate(_req("99999999999999", key="k-bad"))
        assert bad.code == R.INVALID_HRN
        assert (await svc.activate(_req("99999999999999", key="k-bad"))).replay == ""
        assert len(txn_rows(store)) == 2          # a failure is tried again
        assert (await svc.activate(_req(hrn, key="k"))).code == R.SUCCESS
        svc.replay_window_ms = -1                 # every success is now too old
        late = await svc.activate(_req(hrn, key="k"))
        assert late.code == R.VOUCHER_ALREADY_USED_BY_YOU and late.replay == ""
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_durable_is_told_before_the_result(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    seen = []
    try:
        d = svc.activate(_req(next(iter(hrns.values())), key="x"), durable=seen.append)
        d.addCallback(lambda r: seen.append(r.code))
        await d
        assert seen == [True, R.SUCCESS]
        seen.clear()
        await svc.activate(_req("12"), durable=seen.append)     # malformed: nothing to keep
        assert seen == [True]
    finally:
        await runner.stop()


# -- the SMS channel with an outbox ------------------------------------------

def _sms(runner, clock, cipher=None, svc=None, **outbox_kw):
    """A server-mode factory whose channel acknowledges MOs once durable."""
    outbox = SmsOutbox(runner, clock, **outbox_kw)
    channel = make_channel(svc, clock)
    channel.outbox = outbox
    outbox.render = channel.render_parts
    factory = make_factory(clock=clock, channel=channel)
    outbox.route = make_route(factory, {})
    proto, t = connect(factory)
    feed(proto, BindTransceiver(sequence_number=1, system_id="smsc", password="secret"))
    received(t)
    return factory, outbox, proto, t


def _mo(seq, hrn):
    return SubmitSm(sequence_number=seq, source_addr=MSISDN, source_addr_ton=1,
                    destination_addr=SHORT_CODE, short_message=("RECHARGE " + hrn).encode())


@pytest_twisted.ensureDeferred
async def test_mo_acknowledged_only_once_committed_and_reply_marked_sent(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    clock = task.Clock()
    try:
        _, outbox, proto, t = _sms(runner, clock, svc=svc)
        feed(proto, _mo(2, hrn))
        assert received(t) == []                  # nothing said before the commit
        out = []
        await _until(lambda: out.extend(received(t)) or len(out) >= 2)
        resp, reply = out
        assert type(resp) is SubmitSmResp and resp.command_status == 0
        assert type(reply) is DeliverSm and b"credited" in reply.short_message
        assert _inbox_states(store) == [("due", 0)]
        feed(proto, DeliverSmResp(sequence_number=reply.sequence_number))
        clock.advance(outbox.mark_delay)          # confirmations gathered, marked in one unit
        await _until(lambda: _inbox_states(store) == [("sent", 0)])
        # the subscriber sends the same text again: the original success again
        feed(proto, _mo(3, hrn))
        out = []
        await _until(lambda: out.extend(received(t)) or len(out) >= 2)
        assert b"credited" in out[1].short_message
        assert len(txn_rows(store)) == 1 and len(credited_entries(store)) == 1
        assert outbox.counters["sent"] == 1
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_reply_due_at_a_crash_is_sent_once_after_restart(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 1)
    hrn = next(iter(hrns.values()))
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    clock = task.Clock()
    clock.advance(time.time())
    try:
        _, _, proto, t = _sms(runner, clock, svc=svc)
        feed(proto, _mo(2, hrn))
        out = []
        await _until(lambda: out.extend(received(t)) or len(out) >= 2)
        # the node dies before deliver_sm_resp: the reply is still due
        _, outbox, proto2, t2 = _sms(runner, clock, svc=svc, retry_seconds=5)
        assert await outbox.sweep() == 0          # too fresh: may still be under way
        clock.advance(6)
        sweep = outbox.sweep()
        (reply,) = await _written(t2)
        assert b"credited" in reply.short_message and reply.destination_addr == MSISDN
        feed(proto2, DeliverSmResp(sequence_number=reply.sequence_number))
        assert await sweep == 1
        clock.advance(outbox.mark_delay)
        await _until(lambda: _inbox_states(store) == [("sent", 0)])
        clock.advance(6)
        assert await outbox.sweep() == 0 and received(t2) == []
        assert outbox.counters["resent"] == 1
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_due_replies_retried_a_bounded_number_of_times_then_dropped(env, reactor):
    store, cipher = env
    _, hrns = make_batch(store, cipher, 2)
    h1, h2 = list(hrns.values())
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    clock = task.Clock()
    clock.advance(time.time())
    try:
        _, _, proto, t = _sms(runner, clock, svc=svc)
        feed(proto, _mo(2, h1))
        out = []
        await _until(lambda: out.extend(received(t)) or len(out) >= 2)
        _, outbox, proto2, t2 = _sms(runner, clock, svc=svc, retry_seconds=5, max_attempts=2,
                                     expiry_seconds=3600)
        for attempt in range(2):
            clock.advance(6)
            sweep = outbox.sweep()
            (reply,) = await _written(t2)
            feed(proto2, DeliverSmResp(sequence_number=reply.sequence_number,
                                       command_status=0x58))
            assert await sweep == 0
        assert _inbox_states(store) == [("due", 2)]
        clock.advance(6)
        await outbox.sweep()
        assert _inbox_states(store) == [("expired", 2)] and outbox.counters["given_up"] == 1
        # a reply due for longer than the expiry is dropped without a try
        feed(proto2, _mo(3, h2))
        out = []
        await _until(lambda: out.extend(received(t2)) or len(out) >= 2)
        clock.advance(3601)
        await outbox.sweep()
        assert not [p for p in received(t2) if isinstance(p, DeliverSm)]
        assert outbox.counters["expired"] == 1
        assert sorted(_inbox_states(store)) == [("expired", 0), ("expired", 2)]
    finally:
        await runner.stop()


def test_mark_sent_closes_only_the_due_replies_of_the_keys_given(env):
    store, _ = env

    def row(key, state):
        return {"key": key, "txn_id": key[:16].hex(), "channel": "sms", "received_at": 1,
                "source": "smpp:x", "reply_to": "{}", "language": "en", "reply_state": state,
                "attempts": 0, "replied_at": None}

    def fill(tx):
        for key, state in ((b"a" * 32, inbox.DUE), (b"b" * 32, inbox.DUE),
                           (b"c" * 32, inbox.NONE), (b"d" * 32, inbox.EXPIRED)):
            tx.insert(request_inbox, row(key, state))
    store.run_sync(fill)
    closed = store.run_sync(inbox.mark_sent, [b"a" * 32, b"c" * 32, b"d" * 32, b"z" * 32], 77)
    assert closed == 1
    states = dict(store.run_sync(lambda tx: tx.execute(
        select(request_inbox.c.key, request_inbox.c.reply_state)).rows))
    assert states == {b"a" * 32: inbox.SENT, b"b" * 32: inbox.DUE,
                      b"c" * 32: inbox.NONE, b"d" * 32: inbox.EXPIRED}
    assert store.run_sync(inbox.mark_sent, [], 78) == 0


def test_execute_each_needs_every_other_parameter(env):
    store, _ = env
    stamp = update(request_inbox).where(request_inbox.c.key == bindparam("key")) \
        .values(replied_at=bindparam("now"))
    # no "now": refused, never bound as NULL (KeyError where parameters are positional)
    with pytest.raises(KeyError if store.is_sqlite else Exception):
        store.run_sync(lambda tx: tx.execute_each(stamp, "key", [b"a" * 32]))
