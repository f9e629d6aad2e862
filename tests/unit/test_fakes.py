"""The shared fakes of L{tests.fakes} provide the interfaces they stand in for, and behave."""
from __future__ import annotations

from zope.interface.verify import verifyObject

from core.interfaces import IActivationService, IBillingPort, INumberingPlan, ITransactionQueries
from core.normalise import MsisdnRules
from core.queries import AuditEntry
from core.requests import ActivationRequest, ActivationResult, Channel
from core.results import ResultCode as R
from tests.fakes import (
    FakeActivationService, FakeBilling, FakeNumberingPlan, FakeTransactionQueries)


def fired(d):
    out = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


def request(msisdn="0641234567"):
    return ActivationRequest(msisdn=msisdn, hrn="12345678901234", channel=Channel.WEB,
                             source="test")


def test_every_fake_provides_its_interface():
    assert verifyObject(IActivationService, FakeActivationService())
    assert verifyObject(ITransactionQueries, FakeTransactionQueries())
    assert verifyObject(INumberingPlan, FakeNumberingPlan())
    assert verifyObject(IBillingPort, FakeBilling())


def test_the_real_numbering_plan_provides_its_interface():
    rules = MsisdnRules("381", "0", ["00", "+"], [11, 12])
    assert verifyObject(INumberingPlan, rules)
    fake = FakeNumberingPlan()
    for raw in ("0641234567", "+381641234567", "00381641234567", "x", "", None):
        assert fake.normalise(raw) == rules.normalise(raw), raw


def test_activation_answers_queues_and_holds():
    barred = ActivationResult(R.SUBSCRIBER_BARRED)
    fake = FakeActivationService()
    fake.results.append(barred)
    assert fired(fake.activate(request())) is barred
    assert fired(fake.activate(request())).code == R.SUCCESS
    fake.hold = True
    d = fake.activate(request())
    assert fake.held == [d] and not d.called
    fake.release()
    assert fired(d).code == R.SUCCESS and fake.waiting == [] and len(fake.requests) == 3
    failing = FakeActivationService(RuntimeError("boom"))
    assert fired(failing.activate(request())).check(RuntimeError)


def test_queries_filter_and_record():
    rows = [{"id": "a", "channel_ref": "r", "channel": "soap", "source": "p1",
             "msisdn": "381641234567", "serial": 1, "started_at": 1},
            {"id": "b", "channel_ref": "r", "channel": "soap", "source": "p2",
             "msisdn": "381641234567", "serial": 2, "started_at": 2}]
    q = FakeTransactionQueries(rows, vouchers={1: {"serial": 1, "state": "used"}})
    assert [r["id"] for r in fired(q.transactions(msisdn="381641234567"))] == ["b", "a"]
    assert [r["id"] for r in fired(q.transactions(serial=1))] == ["a"]
    assert fired(q.transaction(txn_id="a"))["serial"] == 1
    assert fired(q.transaction(channel_ref="r"))["id"] == "b"
    assert fired(q.transaction(channel_ref="r", source="p1")) is None
    assert fired(q.voucher(1))["state"] == "used" and fired(q.voucher(9)) is None
    entry = AuditEntry(at=1, actor="p1", action="soap.call")
    fired(q.record(entry))
    assert q.recorded == [entry]
