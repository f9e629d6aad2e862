"""The SOAP channel end to end: zeep (a third-party client) built from our WSDL, on a real listener,
over a real ActivationService and SQLite store (issue 7)."""
from __future__ import annotations

import base64
import json

import pytest
import pytest_twisted
import requests
from sqlalchemy import select
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from core.queries import TransactionQueries
from core.requests import ActivationResult
from core.results import ResultCode as R
from core.schema import audit_log, txn
from protocols.soap.config import SoapSettings
from protocols.soap.resource import build_resource
from tests.fakes import FakeActivationService, FakeBilling
from tests.helpers import voucher_row
from tests.integration.soap_fixtures import CLIENTS, in_thread, start_env, stop_env, zeep_client

pytestmark = pytest.mark.integration

MSISDN = "0641234567"
SHOP1 = ("shop1", "s3cret-shop1")


def _audits(store):
    rows = store.run_sync(lambda tx: tx.execute(
        select(audit_log.c.actor, audit_log.c.action, audit_log.c.target, audit_log.c.detail)
        .order_by(audit_log.c.id)).rows)
    return [(a, b, c, json.loads(d) if d else None) for a, b, c, d in rows
            if a.startswith("soap:")]


async def _client(env, **kw):
    return await in_thread(zeep_client, env.url, **kw)


def _post(url, body, *, auth=SHOP1, ctype="text/xml; charset=utf-8"):
    return requests.post(url, data=body, headers={"Content-Type": ctype}, auth=auth, timeout=20)


ENVELOPE = ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns:t="urn:ivoms:soap:1"><s:Body>%s</s:Body></s:Envelope>')


@pytest_twisted.ensureDeferred
async def test_wsdl_is_published_and_names_the_operations(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        r = await in_thread(requests.get, env.url + "?wsdl", timeout=20)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
        for op in (b"ActivateVoucher", b"GetTransactionStatus", b"GetVoucherStatus"):
            assert op in r.content
        assert ('location="%s"' % env.url).encode() in r.content
        client = await _client(env, basic=SHOP1)
        assert {o for o in client.service._operations} >= {
            "ActivateVoucher", "GetTransactionStatus", "GetVoucherStatus"}
    finally:
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_activate_success_then_status_queries_and_audit(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        c = await _client(env, basic=SHOP1)
        hrn = env.hrn(0)
        grouped = hrn[:4] + " " + hrn[4:8] + "-" + hrn[8:]
        r = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=grouped,
                            channelReference="pos-42")
        assert (r.resultCode, r.resultName, r.amount, r.currency, r.validityDays) == \
            (0, "SUCCESS", 1000, "EUR", 30)
        assert r.resultText == "Your account was credited."
        assert r.msisdn == "381641234567" and r.newExpiry is not None and r.unbarTime is None
        assert voucher_row(env.store, env.serial(0))[0] == "used"
        by_id = await in_thread(c.service.GetTransactionStatus, transactionId=r.transactionId)
        by_ref = await in_thread(c.service.GetTransactionStatus, channelReference="pos-42")
        for t in (by_id, by_ref):
            assert t.found and t.transactionId == r.transactionId and t.state == "success"
            assert (t.channel, t.channelReference, t.resultCode, t.serial) == \
                ("soap", "pos-42", 0, env.serial(0))
        v = await in_thread(c.service.GetVoucherStatus, serial=env.serial(0))
        assert (v.found, v.state, v.voucherType, v.serial) == (True, "used", "T10", env.serial(0))
        assert v.expiry is not None and not hasattr(v, "hrn")
        missing = await in_thread(c.service.GetVoucherStatus, serial=999999)
        assert missing.found is False
        # another client does not see shop1's transaction; a query_all client does
        other = await _client(env, basic=("shop2", "s3cret-shop2"))
        assert (await in_thread(other.service.GetTransactionStatus,
                                channelReference="pos-42")).found is False
        assert (await in_thread(other.service.GetTransactionStatus,
                                transactionId=r.transactionId)).found is False
        care = await _client(env, basic=("care", "care-pw"))
        assert (await in_thread(care.service.GetTransactionStatus,
                                channelReference="pos-42")).found is True
        audits = _audits(env.store)
        assert audits[0][:3] == ("soap:shop1", "soap.ActivateVoucher", MSISDN)
        assert audits[0][3]["code"] == 0 and audits[0][3]["channel_ref"] == "pos-42"
        assert [a[1] for a in audits] == [
            "soap.ActivateVoucher", "soap.GetTransactionStatus", "soap.GetTransactionStatus",
            "soap.GetVoucherStatus", "soap.GetVoucherStatus", "soap.GetTransactionStatus",
            "soap.GetTransactionStatus", "soap.GetTransactionStatus"]
        assert hrn not in repr(audits)
    finally:
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_failure_codes_with_the_real_core(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        c = await _client(env, basic=SHOP1)

        async def code(msisdn, hrn, **kw):
            r = await in_thread(c.service.ActivateVoucher, msisdn=msisdn, hrn=hrn, **kw)
            assert r.resultName == R(r.resultCode).name and r.resultText
            return r

        assert (await code("12", env.hrn(1))).resultCode == R.INVALID_MSISDN
        assert (await code(MSISDN, "12ab")).resultCode == R.INVALID_HRN
        assert (await code(MSISDN, env.hrn(1), beneficiary="x")).resultCode == R.INVALID_MSISDN
        assert (await code(MSISDN, env.hrn(1))).resultCode == R.SUCCESS
        assert (await code(MSISDN, env.hrn(1))).resultCode == R.VOUCHER_ALREADY_USED_BY_YOU
        assert (await code("0641111111", env.hrn(1))).resultCode == R.VOUCHER_USED_BY_OTHER
        env.set_state(env.serial(2), "blocked", "stolen")
        assert (await code("0642222222", env.hrn(2))).resultCode == R.VOUCHER_BLOCKED
        env.set_state(env.serial(3), "expired")
        assert (await code("0642222223", env.hrn(3))).resultCode == R.VOUCHER_EXPIRED
        env.set_state(env.serial(4), "generated")
        assert (await code("0642222224", env.hrn(4))).resultCode == R.VOUCHER_NOT_AVAILABLE
        # the test fraud settings bar after 3 counted failures
        for _ in range(3):
            await code("0643333333", "1" * 14)
        barred = await code("0643333333", env.hrn(5))
        assert barred.resultCode == R.SUBSCRIBER_BARRED and barred.unbarTime is not None
        # beneficiary: credited to another account
        r = await code(MSISDN, env.hrn(6), beneficiary="0649999999")
        assert r.resultCode == R.SUCCESS and r.account == "381649999999"
    finally:
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_repeated_call_with_the_same_reference_gets_the_original_answer(
        reactor, sqlite_url, tmp_path):
    """Idempotency key: client, channelReference, MSISDN and HRN (docs/activation.md)."""
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        c = await _client(env, basic=SHOP1)
        first = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0),
                                channelReference="pos-7")
        again = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0),
                                channelReference="pos-7")
        assert first.resultCode == again.resultCode == R.SUCCESS
        assert again.transactionId == first.transactionId and again.amount == first.amount
        # another reference, no reference, or another client is a new request
        other_ref = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0),
                                    channelReference="pos-8")
        no_ref = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0))
        shop2 = await _client(env, basic=("shop2", "s3cret-shop2"))
        other_client = await in_thread(shop2.service.ActivateVoucher, msisdn=MSISDN,
                                       hrn=env.hrn(0), channelReference="pos-7")
        assert [r.resultCode for r in (other_ref, no_ref, other_client)] == \
            [R.VOUCHER_ALREADY_USED_BY_YOU] * 3
        rows = await in_thread(env.store.run_sync, lambda tx: tx.execute(
            select(txn.c.id, txn.c.state).where(txn.c.channel == "soap")).rows)
        assert [state for _, state in rows].count("success") == 1
        assert voucher_row(env.store, env.serial(0))[0] == "used"
    finally:
        await stop_env(env)


@pytest.mark.parametrize("mode, expected", [
    ("reject", R.BILLING_REJECTED), ("unknown-subscriber", R.SUBSCRIBER_UNKNOWN),
    ("down", R.BILLING_UNAVAILABLE)])
@pytest_twisted.ensureDeferred
async def test_billing_outcomes(reactor, sqlite_url, tmp_path, mode, expected):
    env = await start_env(reactor, sqlite_url, tmp_path, billing=FakeBilling(mode))
    try:
        c = await _client(env, basic=SHOP1)
        r = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0))
        assert r.resultCode == expected and r.serial == env.serial(0)
        assert voucher_row(env.store, env.serial(0))[0] == "available"   # released
    finally:
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_lost_billing_answer_leaves_voucher_pending(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path, billing=FakeBilling("hang"),
                          billing_timeout=0.2)
    try:
        c = await _client(env, basic=SHOP1)
        r = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0))
        assert r.resultCode == R.BILLING_UNAVAILABLE
        again = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=env.hrn(0))
        assert again.resultCode == R.VOUCHER_PENDING
        t = await in_thread(c.service.GetTransactionStatus, transactionId=r.transactionId)
        assert t.found and t.state == "pending"
    finally:
        await stop_env(env)


def _stub_listener(reactor, env, stub):
    """(port, URL) of /soap on loopback over the activation service C{stub}."""
    from twisted.web import resource, server
    root = resource.Resource()
    root.putChild(b"soap", build_resource(stub, TransactionQueries(env.runner),
                                          SoapSettings(clients=CLIENTS), clock=reactor))
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
    return port, "http://127.0.0.1:%d/soap" % port.getHost().port


@pytest_twisted.ensureDeferred
async def test_every_result_code_renders(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path)
    # queued results, for codes the real core only gives on internal faults
    stub = FakeActivationService()
    port, url = _stub_listener(reactor, env, stub)
    try:
        c = await in_thread(zeep_client, url, basic=SHOP1)
        for code in R:
            unbar = 1_800_000_000_000 if code == R.SUBSCRIBER_BARRED else None
            stub.results.append(ActivationResult(code, txn_id="t%d" % code, unbar_at=unbar))
            r = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn="12345678901234",
                                channelReference="c%d" % code)
            assert (r.resultCode, r.resultName, r.transactionId) == (int(code), code.name,
                                                                    "t%d" % code)
            assert r.resultText == ActivationResult(code).text
        assert stub.requests[0].channel == "soap" and stub.requests[0].source == "shop1"
    finally:
        await port.stopListening()
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_an_answer_the_template_cannot_write_is_spynes(reactor, sqlite_url, tmp_path):
    """A value the template steps aside for (a carriage return) is written by spyne;
    the activation's audit entry goes to the core, and the resource adds no row."""
    env = await start_env(reactor, sqlite_url, tmp_path)
    stub = FakeActivationService(ActivationResult(R.SUCCESS, txn_id="t0", currency="EUR\r"))
    port, url = _stub_listener(reactor, env, stub)
    try:
        raw = await in_thread(_post, url, ENVELOPE % (
            "<t:ActivateVoucher><t:msisdn>%s</t:msisdn><t:hrn>12345678901234</t:hrn>"
            "<t:channelReference>cr-1</t:channelReference></t:ActivateVoucher>" % MSISDN))
        assert raw.status_code == 200 and b"<tns:currency>EUR&#13;</tns:currency>" in raw.content
        assert raw.headers["content-length"] == str(len(raw.content))
        c = await in_thread(zeep_client, url, basic=SHOP1)
        r = await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn="12345678901234")
        assert (r.resultCode, r.currency) == (0, "EUR\r")
        assert [(a.action, a.actor, a.detail) for a in stub.audits] == [
            ("soap.ActivateVoucher", "soap:shop1", {"channel_ref": "cr-1"}),
            ("soap.ActivateVoucher", "soap:shop1", {"channel_ref": None})]
        assert _audits(env.store) == []
    finally:
        await port.stopListening()
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_authentication(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        hrn = env.hrn(0)

        async def refused(**kw):
            c = await _client(env, **kw)
            with pytest.raises(Fault) as e:
                await in_thread(c.service.ActivateVoucher, msisdn=MSISDN, hrn=hrn)
            assert e.value.code.endswith("Client.Authentication")
            assert e.value.message == "authentication failed"

        await refused()                                            # no credentials
        await refused(basic=("shop1", "WrongPw1"))
        await refused(basic=("nobody", "x"))
        await refused(basic=("lan-only", "lan-pw"))                # not from 10/8
        await refused(wsse=UsernameToken("shop1", "WrongPw1"))
        await refused(wsse=UsernameToken("shop1", "WrongPw1", use_digest=True))
        await refused(wsse=UsernameToken("hashed", "h4shed-pw", use_digest=True))
        # raw: 401 with a Basic challenge
        r = await in_thread(_post, env.url, ENVELOPE % "<t:GetVoucherStatus><t:serial>1"
                            "</t:serial></t:GetVoucherStatus>", auth=None)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic realm=")
        assert b"Client.Authentication" in r.content
        assert voucher_row(env.store, env.serial(0))[0] == "available"
        # the accepted ways in
        for kw in ({"basic": ("hashed", "h4shed-pw")},
                   {"wsse": UsernameToken("shop2", "s3cret-shop2")},
                   {"wsse": UsernameToken("shop2", "s3cret-shop2", use_digest=True)}):
            c = await _client(env, **kw)
            v = await in_thread(c.service.GetVoucherStatus, serial=env.serial(0))
            assert v.found
        audits = _audits(env.store)
        failed = [a for a in audits if a[1] == "soap.auth_failed"]
        assert len(failed) == 8 and failed[0][0] == "soap:-"
        assert {a[3]["method"] for a in failed} == {"none", "basic", "wsse-text", "wsse-digest"}
        assert "WrongPw1" not in repr(audits) and "s3cret" not in repr(audits)
        assert [a[0] for a in audits if a[1] == "soap.GetVoucherStatus"] == \
            ["soap:hashed", "soap:shop2", "soap:shop2"]
    finally:
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_digest_replay_is_refused(reactor, sqlite_url, tmp_path):
    from zeep.wsse.username import UsernameToken as ZT
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        c = await _client(env, wsse=ZT("shop1", "s3cret-shop1", use_digest=True))
        msg = c.create_message(c.service, "GetVoucherStatus", serial=env.serial(0))
        from lxml import etree
        body = etree.tostring(msg)
        first = await in_thread(_post, env.url, body, auth=None)
        replay = await in_thread(_post, env.url, body, auth=None)
        assert first.status_code == 200 and b"<tns:found>true" in first.content
        assert replay.status_code == 401 and b"Client.Authentication" in replay.content
    finally:
        await stop_env(env)


@pytest_twisted.ensureDeferred
async def test_bad_requests_get_faults(reactor, sqlite_url, tmp_path):
    env = await start_env(reactor, sqlite_url, tmp_path, max_request_bytes=4096)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    try:
        async def fault(body, status=500, **kw):
            r = await in_thread(_post, env.url, body, **kw)
            assert r.status_code == status, r.content
            assert b"faultcode" in r.content
            return r.content.decode()

        assert "Client.XMLSyntaxError" in await fault("<s:Envelope><oops")
        xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://%s">]>' % secret
               + ENVELOPE[len('<?xml version="1.0"?>'):] % (
                   "<t:ActivateVoucher><t:msisdn>&x;</t:msisdn><t:hrn>1</t:hrn>"
                   "</t:ActivateVoucher>"))
        text = await fault(xxe)
        assert "Client.DTDForbidden" in text and "TOP-SECRET" not in text
        # schema validation: hrn missing, serial not a number, unknown operation
        assert "SchemaValidationError" in await fault(
            ENVELOPE % "<t:ActivateVoucher><t:msisdn>0641234567</t:msisdn></t:ActivateVoucher>")
        assert "SchemaValidationError" in await fault(
            ENVELOPE % "<t:GetVoucherStatus><t:serial>abc</t:serial></t:GetVoucherStatus>")
        assert "Client" in await fault(ENVELOPE % "<t:DropTables/>")
        assert "Client.InvalidArgument" in await fault(
            ENVELOPE % "<t:GetTransactionStatus/>")
        assert "Client.RequestTooLarge" in await fault(
            ENVELOPE % ("<t:GetVoucherStatus><t:serial>1</t:serial></t:GetVoucherStatus>"
                        + " " * 5000), status=413)
        assert "Client.UnsupportedMediaType" in await fault(
            "{}", status=415, ctype="application/json")
        # the listener is still fine
        c = await _client(env, basic=SHOP1)
        assert (await in_thread(c.service.GetVoucherStatus, serial=env.serial(0))).found
        faults = [a for a in _audits(env.store) if a[3] and "fault" in a[3]]
        assert len(faults) == 8 and all(a[0] == "soap:shop1" for a in faults)
    finally:
        await stop_env(env)


def test_basic_header_encoding_helper():
    # requests sends Basic as latin-1; our parser decodes UTF-8 names and passwords
    from protocols.soap.auth import parse_basic
    raw = base64.b64encode("šop:pässword".encode())
    assert parse_basic(b"Basic " + raw) == ("šop", "pässword")


@pytest_twisted.ensureDeferred
async def test_failed_logins_are_throttled_and_audited_up_to_a_cap(reactor, sqlite_url, tmp_path):
    """Finding 4: 300 wrong passwords for one client leave at most the account's limit of
    audit rows; the rest are refused unchecked (401) without a row."""
    env = await start_env(reactor, sqlite_url, tmp_path)
    try:
        body = ENVELOPE % "<t:GetVoucherStatus><t:serial>1</t:serial></t:GetVoucherStatus>"

        def storm():
            return [_post(env.url, body, auth=("shop1", "WrongPw1")).status_code
                    for _ in range(300)]
        codes = await in_thread(storm)
        assert set(codes) == {401}
        failed = [a for a in _audits(env.store) if a[1] == "soap.auth_failed"]
        assert len(failed) == 10
        r = await in_thread(_post, env.url, body)            # right password, same account
        assert r.status_code == 401                          # still throttled this minute
    finally:
        await stop_env(env)
