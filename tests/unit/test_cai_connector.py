"""CAI connector on StringTransport and task.Clock: login, pool, re-login, timeouts, code mapping."""
import pytest
from twisted.internet import defer, task
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from billing.cai.codec import (
    CaiSyntaxError, CaiTemplates, format_response, parse_command, parse_response)
from billing.cai.config import CaiSettings
from billing.cai.connector import CaiBilling
from billing.cai.pool import CaiPool
from core.billing import BillingUnavailable, IBillingPort
from core.results import ResultCode


class Endpoint:
    def __init__(self):
        self.attempts = []

    def connect(self, factory):
        d = defer.Deferred()
        self.attempts.append((factory, d))
        return d


class Line:
    def __init__(self, ep, i=-1):
        factory, self.d = ep.attempts[i]
        self.t = StringTransport()
        self.p = factory.buildProtocol(None)
        self.p.makeConnection(self.t)
        self.d.callback(self.p)

    def sent(self):
        v = self.t.value().decode()
        self.t.clear()
        return [x for x in v.split("\r\n") if x]

    def answer(self, text):
        self.p.dataReceived(text.encode() + b"\r\n")

    def lose(self):
        self.p.connectionLost(Failure(ConnectionLost()))


def make(pool_size=1, **kw):
    clock, ep = task.Clock(), Endpoint()
    settings = CaiSettings(pool_size=pool_size, **kw)
    pool = CaiPool(settings, reactor=clock, clock=clock, endpoint_factory=lambda: ep)
    pool.startService()
    return clock, ep, pool, CaiBilling(pool, settings)


def login(ep, i=-1):
    line = Line(ep, i)
    assert line.sent() == ["LOGIN:ivoms:ivoms;"]
    line.answer("RESP:0;")
    return line


def fired(d):
    out = []
    d.addBoth(out.append)
    assert out
    return out[0]


def test_codec_round_trip_and_errors():
    r = parse_response("RESP:0:BALANCE,1050,EXPIRY,20300101000000;")
    assert r.code == 0 and r.get("BALANCE") == "1050"
    assert parse_response(format_response(1003)).code == 1003
    for bad in ("RESP?", "RESP:0:A;", "OK;", "RESP:x;"):
        with pytest.raises(CaiSyntaxError):
            parse_response(bad)
    assert parse_command("SET:SUBSCRIBER:381:RECHARGE,AMOUNT,5,REF,k;") == (
        ["SET", "SUBSCRIBER", "381", "RECHARGE"], {"AMOUNT": "5", "REF": "k"})
    with pytest.raises(CaiSyntaxError):
        CaiTemplates().render("credit", msisdn="1;DROP", amount=1, currency="EUR",
                              days=0, key="k")
    with pytest.raises(ValueError):
        CaiTemplates(credit="SET:{nope};")


def test_login_then_credit_maps_success():
    clock, ep, pool, billing = make()
    assert verifyObject(IBillingPort, billing)
    line = login(ep)
    d = billing.credit("381641234567", 1050, "EUR", 30, "tx1")
    assert line.sent() == ["SET:SUBSCRIBER:381641234567:RECHARGE,AMOUNT,1050,"
                           "CURRENCY,EUR,VALIDITY,30,REF,tx1;"]
    line.answer("RESP:0:BALANCE,2050,EXPIRY,20300101000000;")
    out = fired(d)
    assert out.credited and out.balance == 2050 and out.new_expiry == 1893456000000


@pytest.mark.parametrize("code, rc", [(1002, ResultCode.SUBSCRIBER_UNKNOWN),
                                      (1003, ResultCode.BILLING_REJECTED)])
def test_refusals(code, rc):
    clock, ep, pool, billing = make()
    line = login(ep)
    d = billing.credit("381641234567", 1, "EUR", 0, "tx1")
    line.answer("RESP:%d;" % code)
    out = fired(d)
    assert not out.credited and out.code == rc


def test_busy_and_garbage_are_unknown_sent():
    clock, ep, pool, billing = make()
    line = login(ep)
    d = billing.credit("381641234567", 1, "EUR", 0, "tx1")
    line.answer("RESP:1004;")
    assert fired(d).value.sent
    d = billing.credit("381641234567", 1, "EUR", 0, "tx2")
    line.answer("#@!garbage")
    f = fired(d)
    assert isinstance(f.value, BillingUnavailable) and f.value.sent
    assert line.t.disconnecting


def test_no_connection_is_not_sent():
    clock, ep, pool, billing = make()
    f = fired(billing.credit("381641234567", 1, "EUR", 0, "tx1"))
    assert isinstance(f.value, BillingUnavailable) and f.value.sent is False


def test_timeout_aborts_and_relogin_after_reconnect():
    clock, ep, pool, billing = make(command_timeout=2, reconnect_initial=1)
    line = login(ep)
    d = billing.credit("381641234567", 1, "EUR", 0, "tx1")
    clock.advance(2)
    f = fired(d)
    assert isinstance(f.value, BillingUnavailable) and f.value.sent
    assert line.t.disconnecting
    line.lose()
    clock.advance(5)
    line2 = login(ep)
    d = billing.credit("381641234567", 1, "EUR", 0, "tx2")
    assert line2.sent()[0].startswith("SET:")
    line2.answer("RESP:0;")
    assert fired(d).credited
    assert pool.logins == 2


def test_not_logged_in_answer_relogs_and_retries_once():
    clock, ep, pool, billing = make()
    line = login(ep)
    d = billing.credit("381641234567", 1, "EUR", 0, "tx1")
    line.sent()
    line.answer("RESP:1008;")
    assert line.sent() == ["LOGIN:ivoms:ivoms;"]
    line.answer("RESP:0;")
    assert line.sent()[0].startswith("SET:")
    line.answer("RESP:0;")
    assert fired(d).credited


def test_login_refused_never_sends_commands():
    clock, ep, pool, billing = make()
    line = Line(ep)
    line.sent()
    line.answer("RESP:1001;")
    f = fired(billing.credit("381641234567", 1, "EUR", 0, "tx1"))
    assert f.value.sent is False


def test_pool_queues_until_a_connection_is_free():
    clock, ep, pool, billing = make(pool_size=1)
    line = login(ep)
    d1 = billing.credit("381641234567", 1, "EUR", 0, "a")
    d2 = billing.credit("381641234567", 1, "EUR", 0, "b")
    assert len(line.sent()) == 1
    line.answer("RESP:0;")
    assert fired(d1).credited
    assert "REF,b;" in line.sent()[0]
    line.answer("RESP:0;")
    assert fired(d2).credited


def test_lookup_mapping():
    clock, ep, pool, billing = make()
    line = login(ep)
    d = billing.lookup("tx1")
    assert line.sent() == ["GET:RECHARGE:REF,tx1;"]
    line.answer("RESP:0:STATUS,CREDITED,BALANCE,5,EXPIRY,20300101000000;")
    assert fired(d).credited
    d = billing.lookup("tx2")
    line.answer("RESP:1010;")
    assert fired(d) is None
    d = billing.lookup("tx3")
    line.answer("RESP:0:STATUS,REFUSED,CODE,1002;")
    assert fired(d).code == ResultCode.SUBSCRIBER_UNKNOWN


def test_lookup_answers_as_documented_conclude():
    """docs/billing.md: RESP:0; = credited, a refusal code = that refusal, 1010 = none."""
    clock, ep, pool, billing = make()
    line = login(ep)
    d = billing.lookup("tx1")
    line.answer("RESP:0;")
    out = fired(d)
    assert out.credited and out.code == ResultCode.SUCCESS
    d = billing.lookup("tx2")
    line.answer("RESP:1003;")
    assert fired(d).code == ResultCode.BILLING_REJECTED
    d = billing.lookup("tx3")
    line.answer("RESP:1002;")
    assert fired(d).code == ResultCode.SUBSCRIBER_UNKNOWN
    d = billing.lookup("tx4")
    line.answer("RESP:0:STATUS,REFUSED;")
    assert fired(d).code == ResultCode.BILLING_REJECTED
    d = billing.lookup("tx5")
    line.answer("RESP:0:STATUS,MAYBE;")
    assert isinstance(d.result.value, BillingUnavailable)
    d.addErrback(lambda _: None)


def test_lookup_answer_fields_are_configurable():
    from billing.cai.answers import CaiLookupAnswer
    clock, ep, pool, billing = make(lookup_answer=CaiLookupAnswer(
        status_field="ST", credited_values=("OK",), refused_values=("KO",), code_field="ERR",
        status_required=True, balance_field="BAL"))
    line = login(ep)
    d = billing.lookup("tx1")
    line.answer("RESP:0:ST,OK,BAL,77;")
    assert fired(d).balance == 77
    d = billing.lookup("tx2")
    line.answer("RESP:0:ST,KO,ERR,1002;")
    assert fired(d).code == ResultCode.SUBSCRIBER_UNKNOWN
    d = billing.lookup("tx3")
    line.answer("RESP:0;")                       # status required: unknown
    assert isinstance(d.result.value, BillingUnavailable)
    d.addErrback(lambda _: None)


def test_ready_once_a_pooled_connection_has_logged_in():
    from core.interfaces import IBillingReadiness
    clock, ep, pool, billing = make()
    assert verifyObject(IBillingReadiness, billing)
    waiting = billing.when_ready(5)
    clock.advance(1)
    assert not waiting.called            # connected, login not answered
    login(ep)
    clock.advance(0.02)
    assert fired(waiting) is True
    late = billing.when_ready(0.5)
    clock.advance(0)
    assert fired(late) is True
