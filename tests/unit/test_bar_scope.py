"""Where a failed attempt bars its MSISDN (issue 16, point 3; finding 3): failures on a
channel where the MSISDN is only self-asserted (Web/WAP, SOAP) bar it for that source
only; failures on a network-asserted channel (SMS, USSD, IVR from a configured peer)
bar it everywhere.  On SQLite and PostgreSQL (where a success with the embedded ledger
runs in the server function, which must check the scoped counter too)."""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from core import fraud
from core.requests import ActivationRequest
from core.results import ResultCode as R
from tests.helpers import FraudSettings, build_service, make_batch, make_store

VICTIM = "0641234567"
E164 = "381641234567"
WRONG = "1111111111%04d"


@pytest.fixture
def env(db_url, tmp_path):
    store, cipher = make_store(db_url, str(tmp_path))
    _, hrns = make_batch(store, cipher, 6)
    yield store, cipher, list(hrns.values())
    store.dispose()


def req(hrn, channel, source, msisdn=VICTIM, beneficiary=None):
    return ActivationRequest(msisdn=msisdn, hrn=hrn, channel=channel, source=source,
                             beneficiary=beneficiary)


async def guesses(svc, n, channel, source, **kw):
    return [(await svc.activate(req(WRONG % i, channel, source, **kw))).code for i in range(n)]


def counters(store):
    return {c["subject"]: (c["failures"], c["barred_until"] > 0)
            for c in store.run_sync(fraud.list_counters, "msisdn:")}


@pytest_twisted.ensureDeferred
async def test_web_and_soap_guesses_cannot_bar_the_victim_elsewhere(env, reactor):
    """Finding 3: five failures with a victim's MSISDN made the victim's next valid
    recharge over SOAP answer 103.  From the public page or a SOAP client acting for a
    beneficiary they now bar the MSISDN only there."""
    store, cipher, hrns = env
    runner, svc, _ = build_service(store, cipher, reactor=reactor,
                                   fraud=FraudSettings(tiers=((5, 900),)))
    try:
        assert await guesses(svc, 5, "web", "203.0.113.9") == [R.INVALID_HRN] * 5
        assert await guesses(svc, 5, "soap", "rogue-partner", msisdn="0649999999",
                             beneficiary=VICTIM) == [R.INVALID_HRN] * 5
        assert await guesses(svc, 5, "soap", "rogue-app") == [R.INVALID_HRN] * 5
        # the guesser's own source is barred now, even with a valid HRN
        assert (await svc.activate(req(hrns[0], "web", "203.0.113.9"))).code == R.SUBSCRIBER_BARRED
        assert (await svc.activate(req(hrns[0], "soap", "rogue-app"))).code == R.SUBSCRIBER_BARRED
        # the victim recharges through its shop's SOAP client, SMS and another address
        assert (await svc.activate(req(hrns[0], "soap", "shop"))).code == R.SUCCESS
        assert (await svc.activate(req(hrns[1], "sms", "smpp:smsc"))).code == R.SUCCESS
        assert (await svc.activate(req(hrns[2], "web", "198.51.100.4"))).code == R.SUCCESS
    finally:
        await runner.stop()
    assert counters(store) == {
        "msisdn:%s@web:203.0.113.9" % E164: (5, True),
        "msisdn:%s@soap:rogue-app" % E164: (5, True),
        "msisdn:381649999999@soap:rogue-partner": (5, True)}


@pytest_twisted.ensureDeferred
async def test_network_asserted_failures_bar_everywhere(env, reactor):
    store, cipher, hrns = env
    runner, svc, _ = build_service(store, cipher, reactor=reactor,
                                   fraud=FraudSettings(tiers=((3, 900),)))
    try:
        assert await guesses(svc, 3, "ussd", "ussd:gw-1") == [R.INVALID_HRN] * 3
        for channel, source in (("web", "198.51.100.4"), ("soap", "shop"), ("sms", "smpp:smsc"),
                                ("ivr", "ivr:platform")):
            result = await svc.activate(req(hrns[0], channel, source))
            assert result.code == R.SUBSCRIBER_BARRED and result.unbar_at, channel
    finally:
        await runner.stop()
    assert counters(store) == {"msisdn:" + E164: (3, True)}


@pytest_twisted.ensureDeferred
async def test_a_success_forgets_only_its_own_counter(env, reactor):
    store, cipher, hrns = env
    runner, svc, _ = build_service(store, cipher, reactor=reactor)
    try:
        await guesses(svc, 2, "web", "203.0.113.9")
        await guesses(svc, 2, "sms", "smpp:smsc")
        assert counters(store) == {"msisdn:" + E164: (2, False),
                                   "msisdn:%s@web:203.0.113.9" % E164: (2, False)}
        assert (await svc.activate(req(hrns[0], "web", "203.0.113.9"))).code == R.SUCCESS
        assert counters(store) == {"msisdn:" + E164: (2, False)}
        assert (await svc.activate(req(hrns[1], "sms", "smpp:smsc"))).code == R.SUCCESS
        assert counters(store) == {}
    finally:
        await runner.stop()


@pytest_twisted.ensureDeferred
async def test_concurrent_web_guesses_evaluate_at_most_the_threshold(env, reactor):
    """The scoped counter keeps the atomic increment-and-check of the bar."""
    store, cipher, _hrns = env
    runner, svc, _ = build_service(store, cipher, reactor=reactor,
                                   workers=1 if store.is_sqlite else 10,
                                   fraud=FraudSettings(tiers=((5, 900),)))
    try:
        results = await defer.gatherResults([
            svc.activate(req(WRONG % i, "web", "203.0.113.9")) for i in range(25)])
    finally:
        await runner.stop()
    codes = [r.code for r in results]
    assert codes.count(R.INVALID_HRN) <= 5
    assert codes.count(R.INVALID_HRN) + codes.count(R.SUBSCRIBER_BARRED) == 25
    assert counters(store) == {"msisdn:%s@web:203.0.113.9" % E164: (5, True)}


def test_an_unbar_forgets_every_counter_of_the_msisdn(env):
    store, _cipher, _hrns = env
    settings = FraudSettings(tiers=((1, 900),))

    def plant(tx):
        for subject in (fraud.msisdn_subject(E164), fraud.msisdn_subject(E164, "web:1.2.3.4"),
                        fraud.msisdn_subject(E164, "soap:shop"),
                        fraud.msisdn_subject(E164 + "1", "web:1.2.3.4"),
                        fraud.msisdn_subject(E164 + "1")):
            fraud.claim(tx, subject, 1_000, settings)
    store.run_sync(plant)
    assert store.run_sync(fraud.reset_msisdn, E164) == 3
    assert sorted(counters(store)) == ["msisdn:3816412345671", "msisdn:3816412345671@web:1.2.3.4"]


def test_scope_of_each_channel():
    s = FraudSettings()
    assert [fraud.bar_scope(s, c, "x") for c in ("sms", "ussd", "ivr", "customer_care", "cli")] \
        == [None] * 5
    assert [fraud.bar_scope(s, c, "x") for c in ("web", "wap", "soap")] == \
        ["web:x", "wap:x", "soap:x"]
    s.self_asserted_channels = ["web"]
    assert fraud.bar_scope(s, "soap", "shop") is None and fraud.bar_scope(s, "web", None) == "web:-"
    assert fraud.split_subject("msisdn:381641234567@web:::1") == ("381641234567", "web:::1")
    assert fraud.split_subject("msisdn:381641234567") == ("381641234567", None)


def test_self_asserted_channels_are_configured_and_checked():
    from core.settings import ConfigError, build
    from gateway.config import FraudSettings as Table, load_config
    assert load_config("conf/ivoms.toml").fraud.self_asserted_channels == ["web", "wap", "soap"]
    assert build(Table, {"self_asserted_channels": ["web"]}, file="f", key="fraud",
                 base_dir=".").self_asserted_channels == ["web"]
    with pytest.raises(ConfigError) as e:
        build(Table, {"self_asserted_channels": ["webb"]}, file="f", key="fraud", base_dir=".")
    assert "fraud.self_asserted_channels" in str(e.value) and "'webb'" in str(e.value)
