"""Frames to and from the writer process, and what travels in them (core.unit_frames)."""
from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import given, strategies as st
from zope.interface.verify import verifyObject

from billing.ledger import EmbeddedLedger
from core import activation_audit, inbox, saga
from core.db_activate import activate_in_one, in_store_ledger
from core.housekeeping.pacing import ChunkPacer
from core.metrics import IMetrics, RecordedMetrics, replay
from core.unit_frames import MAX_FRAME, FrameReader, encode

def double(tx, n):
    return n * 2


messages = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=20)


@given(st.lists(messages, min_size=1, max_size=6), st.data())
def test_messages_come_out_whole_and_in_order_however_the_stream_is_cut(msgs, data):
    stream = b"".join(encode(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    reader, out, last = FrameReader(), [], 0
    for c in cuts + [len(stream)]:
        out.extend(reader.feed(stream[last:c]))
        last = c
    assert out == msgs


def test_a_frame_announcing_more_than_the_limit_is_refused():
    with pytest.raises(ValueError, match="frame of %d bytes" % (MAX_FRAME + 1)):
        FrameReader().feed(struct.pack(">I", MAX_FRAME + 1) + b"x")


def test_a_partial_frame_waits_for_the_rest():
    frame = encode(("units", [1], b"abc"))
    reader = FrameReader()
    assert reader.feed(frame[:3]) == [] and reader.feed(frame[3:-1]) == []
    assert reader.feed(frame[-1:]) == [("units", [1], b"abc")]


def test_the_embedded_ledger_travels_as_its_in_transaction_credit():
    ledger = EmbeddedLedger(object(), clock=object(), auto_create=False)
    credit_in = pickle.loads(pickle.dumps(ledger.credit_in))
    there = in_store_ledger(credit_in)            # PostgreSQL's one-statement path still applies
    assert there is not None and there.auto_create is False and there.runner is None


def test_an_activation_unit_with_loyalty_and_audit_travels(tmp_path):
    """The embedded-ledger activation unit as the service builds it, wrapped in the
    inbox and audit units, with a loyalty hook: it pickles, and comes out the same."""
    from core.activation import loyalty_hook
    from core.keys import init
    from core.crypto import VoucherCipher
    from core.loyalty.service import LoyaltyService
    from core.queries import AuditEntry
    import functools
    cipher = VoucherCipher(init(str(tmp_path / "keys.json")))
    ledger = EmbeddedLedger(object(), clock=object())
    loyalty = LoyaltyService((), object(), ledger, clock=object())
    a = saga.Attempt("t1", "381641234567", "381641234567", cipher.blind_index("1" * 14), "sms",
                     None, None, "src", 1000)
    entry = inbox.Entry(cipher.request_digest("k"), "sms", "src", '{"to": 1}', "en")
    unit = (activation_audit.audited, AuditEntry(1, "a", "act", "t", "o", {}), "t1",
            inbox.keyed, entry, "t1", 1000, 60_000,
            activate_in_one, a, None, ledger.credit_in, True,
            functools.partial(loyalty_hook, loyalty, a))
    back = pickle.loads(pickle.dumps(unit))
    assert back[:10] == unit[:10]
    assert back[11].__self__.auto_create is True
    hook = back[13]
    assert hook.func is loyalty_hook and hook.args[1] == a and hook.args[0].plans == ()
    again = pickle.loads(pickle.dumps(cipher))       # the export unit takes one
    assert again.blind_index("1" * 14) == cipher.blind_index("1" * 14)
    assert again.decrypt(5, cipher.active_key_id, cipher.encrypt(5, "1" * 14)) == "1" * 14


def test_a_paced_housekeeping_unit_travels_and_reports_its_time():
    pacer = ChunkPacer(100)
    unit = pickle.loads(pickle.dumps(pacer.timed(double)))
    value, seconds = unit(None, 21)
    assert value == 42 and seconds >= 0
    assert pacer.took((value, 0.5)) is value and pacer.elapsed == 0.5


def test_measurements_in_the_writer_are_replayed_in_the_node():
    rec = RecordedMetrics()
    verifyObject(IMetrics, rec)
    rec.unit_batch(7)
    rec.billing_request("ledger", "local", "credit", "SUCCESS", 0.001)
    calls = pickle.loads(pickle.dumps(rec.take()))
    assert rec.take() == []
    seen = []

    class Node:
        def unit_batch(self, size):
            seen.append(("batch", size))

        def billing_request(self, *args):
            seen.append(args)
    replay(Node(), calls)
    assert seen == [("batch", 7), ("ledger", "local", "credit", "SUCCESS", 0.001)]
    with pytest.raises(AttributeError):
        rec.no_such_measurement
