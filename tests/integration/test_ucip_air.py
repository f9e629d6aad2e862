"""The UCIP connector against an independent AIR (standard xmlrpc.server) on 127.0.0.1."""
import re
import socket

import pytest
import pytest_twisted

from billing.ucip.client import UcipClient
from billing.ucip.codec import origin_transaction_id
from billing.ucip.config import UcipAccounts, UcipCodes, UcipSettings
from billing.ucip.connector import UcipBilling
from core.billing import BillingUnavailable
from core.results import ResultCode
from tests.integration.ucip_air import Air

pytestmark = pytest.mark.integration


@pytest.fixture
def air():
    a = Air()
    yield a
    a.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make(reactor, *urls, **kw):
    kw.setdefault("password", "secret")
    kw.setdefault("request_timeout", 2.0)
    s = UcipSettings(hosts=tuple(urls), **kw)
    client = UcipClient(s, reactor=reactor)
    return UcipBilling(client, s, clock=reactor), client


async def failing(d):
    try:
        await d
    except BillingUnavailable as e:
        return e
    raise AssertionError("expected BillingUnavailable")


@pytest_twisted.ensureDeferred
async def test_success_carries_every_ucip_field(reactor, air):
    billing, client = make(reactor, air.url, number_format="national", country_code="381",
                           dedicated_accounts=(5,))
    try:
        out = await billing.credit("381641234567", 1050, "EUR", 30, "txn-1")
        assert out.credited and out.code == ResultCode.SUCCESS and out.balance == 1050
        assert out.new_expiry == 1893456000000
        again = await billing.credit("381641234567", 1050, "EUR", 30, "txn-2")
        assert again.balance == 2100
    finally:
        await client.stopService()
    p = air.requests[0]
    assert p["originNodeType"] == "EXT" and p["originHostName"] == "ivoms"
    assert p["originTransactionID"] == origin_transaction_id("txn-1")
    assert re.fullmatch(r"\d{1,20}", p["originTransactionID"])
    assert p["originTransactionID"] != air.requests[1]["originTransactionID"]
    assert re.fullmatch(r"\d{8}T\d\d:\d\d:\d\d\+0000", p["originTimeStamp"].value)
    assert p["subscriberNumber"] == "0641234567"
    assert p["transactionCurrency"] == "EUR"
    assert p["adjustmentAmountRelative"] == "1050"
    assert p["transactionType"] == "VOUCHER" and p["transactionCode"] == "RECHARGE"
    assert p["supervisionExpiryDateRelative"] == 30 == p["serviceFeeExpiryDateRelative"]
    assert p["dedicatedAccountUpdateInformation"] == [
        {"dedicatedAccountID": 5, "adjustmentAmountRelative": "1050"}]
    assert set(air.versions) == {"HTTP/1.1"}
    assert air.headers[0]["User-Agent"] == "IVOMS/1.0/1.0"
    assert air.headers[0]["Content-Type"] == "text/xml"


@pytest_twisted.ensureDeferred
async def test_dedicated_accounts_per_voucher_type(reactor, air):
    """The voucher type chooses the balances: DA only, main and DA, main only."""
    types = {"DATA1G": UcipAccounts((5,), False), "EUR5": UcipAccounts((1, 7))}
    billing, client = make(reactor, air.url, voucher_types=types)
    try:
        data = await billing.credit("381641234567", 1024, "EUR", 30, "da-1", voucher_type="DATA1G")
        eur5 = await billing.credit("381641234567", 500, "EUR", 30, "da-2", voucher_type="EUR5")
        plain = await billing.credit("381641234567", 100, "EUR", 30, "da-3", voucher_type="T10")
        reward = await billing.credit("381641234567", 10, "EUR", 0, "da-4")
    finally:
        await client.stopService()
    assert data.credited and eur5.credited and plain.credited and reward.credited
    p = air.requests[0]
    assert "adjustmentAmountRelative" not in p
    assert p["dedicatedAccountUpdateInformation"] == [
        {"dedicatedAccountID": 5, "adjustmentAmountRelative": "1024"}]
    assert air.requests[1]["adjustmentAmountRelative"] == "500"
    assert air.requests[1]["dedicatedAccountUpdateInformation"] == [
        {"dedicatedAccountID": 1, "adjustmentAmountRelative": "500"},
        {"dedicatedAccountID": 7, "adjustmentAmountRelative": "500"}]
    for p in air.requests[2:]:
        assert "dedicatedAccountUpdateInformation" not in p
    assert air.dedicated == {("381641234567", 5): 1024, ("381641234567", 1): 500,
                             ("381641234567", 7): 500}
    assert air.balance == {"381641234567": 610}


@pytest_twisted.ensureDeferred
async def test_replay_repeats_the_voucher_types_dedicated_account(reactor, air):
    air.mode, air.duplicates = "drop", "code"
    billing, client = make(reactor, air.url, lookup="replay",
                           voucher_types={"DATA1G": UcipAccounts((5,), False)},
                           codes=UcipCodes(duplicate=(air.duplicate_code,)))
    try:
        await failing(billing.credit("381641234567", 64, "EUR", 0, "rd", voucher_type="DATA1G"))
        air.mode = "ok"
        out = await billing.lookup("rd", account="381641234567", amount=64, currency="EUR",
                                   validity_days=0, voucher_type="DATA1G")
    finally:
        await client.stopService()
    assert out.credited and air.dedicated == {("381641234567", 5): 64}
    assert [r["dedicatedAccountUpdateInformation"] for r in air.requests] == \
        [[{"dedicatedAccountID": 5, "adjustmentAmountRelative": "64"}]] * 2


@pytest.mark.parametrize("code,expected", [
    (102, ResultCode.SUBSCRIBER_UNKNOWN),
    (104, ResultCode.BILLING_REJECTED),
    (124, ResultCode.BILLING_REJECTED),
    (126, ResultCode.BILLING_REJECTED),
    (123, ResultCode.BILLING_REJECTED),
])
@pytest_twisted.ensureDeferred
async def test_response_codes_are_mapped(reactor, air, code, expected):
    air.mode, air.code = "code", code
    billing, client = make(reactor, air.url)
    try:
        out = await billing.credit("381641234567", 100, "EUR", 0, "t-%d" % code)
    finally:
        await client.stopService()
    assert not out.credited and out.code == expected and str(code) in out.detail
    assert "supervisionExpiryDateRelative" not in air.requests[0]   # no validity asked


@pytest.mark.parametrize("code", [1, 2])
@pytest_twisted.ensureDeferred
async def test_success_with_warning_codes(reactor, air, code):
    air.mode, air.code = "code", code
    billing, client = make(reactor, air.url)
    try:
        assert (await billing.credit("381641234567", 100, "EUR", 0, "w")).credited
    finally:
        await client.stopService()


@pytest_twisted.ensureDeferred
async def test_other_error_is_unknown_outcome(reactor, air):
    air.mode, air.code = "code", 100
    billing, client = make(reactor, air.url)
    try:
        e = await failing(billing.credit("381641234567", 100, "EUR", 0, "o"))
    finally:
        await client.stopService()
    assert e.sent


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_not_sent(reactor, air):
    billing, client = make(reactor, air.url, password="wrong")
    try:
        e = await failing(billing.credit("381641234567", 100, "EUR", 0, "p"))
    finally:
        await client.stopService()
    assert not e.sent and air.credits() == 0


@pytest_twisted.ensureDeferred
async def test_air_down_is_not_sent(reactor):
    billing, client = make(reactor, "http://127.0.0.1:%d/Air" % free_port())
    try:
        e = await failing(billing.credit("381641234567", 100, "EUR", 0, "d"))
    finally:
        await client.stopService()
    assert not e.sent


@pytest_twisted.ensureDeferred
async def test_failover_to_the_second_air(reactor, air):
    dead = "http://127.0.0.1:%d/Air" % free_port()
    billing, client = make(reactor, dead, air.url)
    try:
        assert (await billing.credit("381641234567", 100, "EUR", 0, "f1")).credited
        assert client.down_until.get(dead)                      # remembered as down
        assert (await billing.credit("381641234567", 100, "EUR", 0, "f2")).credited
    finally:
        await client.stopService()
    assert air.credits() == 2


@pytest_twisted.ensureDeferred
async def test_slow_air_is_unknown_and_never_credited_twice(reactor, air):
    air.mode, air.delay = "slow", 1.5
    billing, client = make(reactor, air.url, request_timeout=0.5)
    try:
        e = await failing(billing.credit("381641234567", 100, "EUR", 0, "s"))
        assert e.sent
        e = await failing(billing.lookup("s", account="381641234567", amount=100,
                                         currency="EUR", validity_days=0))
        assert "operator" in str(e)
    finally:
        await client.stopService()
    from twisted.internet import task
    await task.deferLater(reactor, 1.5, lambda: None)
    assert air.credits() == 1 and len(air.requests) == 1


@pytest_twisted.ensureDeferred
async def test_dropped_answer_no_failover_and_no_resend(reactor):
    first, second = Air(), Air()
    first.mode = "drop"
    billing, client = make(reactor, first.url, second.url)
    try:
        e = await failing(billing.credit("381641234567", 100, "EUR", 0, "x"))
        assert e.sent                                   # applied, answer lost
        await failing(billing.lookup("x", account="381641234567", amount=100, currency="EUR"))
    finally:
        await client.stopService()
        first.stop()
        second.stop()
    assert first.credits() == 1 and second.requests == []   # never sent elsewhere


@pytest_twisted.ensureDeferred
async def test_replay_on_an_air_with_duplicate_detection_concludes_once(reactor):
    air = Air()
    air.mode, air.duplicates = "drop", "code"
    billing, client = make(reactor, air.url, lookup="replay",
                           codes=UcipCodes(duplicate=(air.duplicate_code,)))
    try:
        await failing(billing.credit("381641234567", 100, "EUR", 0, "r"))
        air.mode = "ok"
        out = await billing.lookup("r", account="381641234567", amount=100, currency="EUR",
                                   validity_days=0)
        assert out.credited
        # never sent: the replay applies it now, once
        out = await billing.lookup("r2", account="381641234567", amount=100, currency="EUR",
                                   validity_days=0)
        assert out.credited
    finally:
        await client.stopService()
        air.stop()
    assert air.applied == {origin_transaction_id("r"): 1, origin_transaction_id("r2"): 1}


@pytest_twisted.ensureDeferred
async def test_answer_body_that_stalls_is_unknown_and_its_connection_dropped(reactor):
    """The AIR sends the answer's head, then stalls: one timer covers head and body."""
    import threading
    import time as _time
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    closed = threading.Event()

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 500\r\n\r\n"
                     b"<?xml version='1.0'?><methodResponse>")
        conn.settimeout(5)
        try:
            while conn.recv(65536):       # until the client drops the connection
                pass
            closed.set()
        except OSError:
            pass
        conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    billing, client = make(reactor, "http://127.0.0.1:%d/Air" % srv.getsockname()[1],
                           request_timeout=0.5)
    try:
        started = _time.monotonic()
        e = await failing(billing.credit("381641234567", 100, "EUR", 0, "b"))
        assert e.sent and "answer body lost" in str(e)
        assert _time.monotonic() - started < 2.0
    finally:
        await client.stopService()
    from twisted.internet import threads
    await threads.deferToThread(t.join, 6)     # the reactor keeps running meanwhile
    srv.close()
    assert closed.is_set()
