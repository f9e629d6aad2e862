"""The IVR channel end to end: a DTMF walker calls a real HTTP listener on 127.0.0.1
whose /ivr resource drives a real ActivationService on a temporary SQLite store (issue 8)."""
from __future__ import annotations

import pytest
import pytest_twisted
from twisted.logger import globalLogPublisher
from twisted.web import resource, server

from core.requests import ActivationRequest
from core.results import ResultCode as R
from protocols.ivr.config import IvrSettings, LanguageSettings
from protocols.ivr.resource import build_resource
from protocols.ivr.texts import ENGLISH
from tests.helpers import (FraudSettings, VType, build_service, make_batch, make_store, txn_rows,
                           voucher_row, with_loopback_peer)
from tests.vxml_walker import (
    HANGUP, NOINPUT, NOMATCH, Walker, assert_valid, http_fetch, read_body, vxml21_dtd,
)

pytestmark = pytest.mark.integration

CALLER = "tel:+381641234567"
E164 = "381641234567"
CARE = "tel:+381111234567"
WRONG = "99999999999999"

SERBIAN = dict(ENGLISH, language_choice="Za srpski, pritisnite {key}.",
               welcome="Dobrodošli u servis za dopunu.",
               SUCCESS="Vaš račun je dopunjen sa {amount} {currency}.",
               SUCCESS_EXPIRY="Račun važi do {expiry}.", goodbye="Hvala na pozivu.")


class Env:
    """A listener, a store with vouchers, and what tests need to reach them."""

    def __init__(self, store, cipher, hrns, runner, service, port):
        self.store, self.cipher, self.hrns = store, cipher, hrns
        self.runner, self.service, self.port = runner, service, port
        self.base = "http://127.0.0.1:%d/ivr/" % port.getHost().port

    def hrn(self, i=0):
        return list(self.hrns.values())[i]

    def serial(self, i=0):
        return list(self.hrns)[i]


async def _start(reactor, url, tmp_path, settings=None, fraud=None, count=3):
    store, cipher = make_store(url, str(tmp_path))
    _, hrns = make_batch(store, cipher, count)
    runner, service, _ = build_service(store, cipher, reactor=reactor, fraud=fraud)
    root = resource.Resource()
    root.putChild(b"ivr", build_resource(service,
                                         with_loopback_peer(settings or IvrSettings(care_number=CARE)),
                                         clock=reactor, hrn_lengths={VType().hrn_length}))
    site = server.Site(root)
    site.displayTracebacks = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    return Env(store, cipher, hrns, runner, service, port)


async def _stop(env):
    await env.port.stopListening()
    await env.runner.stop()
    env.store.dispose()


@pytest_twisted.async_yield_fixture
async def env(reactor, sqlite_url, tmp_path):
    e = await _start(reactor, sqlite_url, tmp_path)
    yield e
    await _stop(e)


@pytest.fixture
def make_env(reactor, sqlite_url, tmp_path):
    """For tests needing their own settings: C{await make_env(settings=..., fraud=...)}."""
    def make(**kw):
        return _start(reactor, sqlite_url, tmp_path, **kw)
    return make


@pytest.fixture
def logged():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def _walker(reactor, ani=CALLER, **kw):
    session = {} if ani is None else {"session.connection.remote.uri": ani}
    return Walker(http_fetch(reactor), session, **kw)


def _all_valid(call):
    dtd = vxml21_dtd()
    for url, status, headers, body in call.documents:
        assert headers["content-type"].startswith("application/voicexml+xml"), url
        assert b"Traceback" not in body
        assert_valid(body, dtd)


def _no_hrn_leak(call, hrn, events=()):
    for method, url, fields in call.fetches:
        assert hrn not in url
        if method != "POST":
            assert not fields or all(hrn not in v for _, v in fields)
    from twisted.logger import formatEvent
    for event in events:
        assert hrn not in formatEvent(event)
        assert all(hrn not in repr(v) for v in event.values())


@pytest_twisted.ensureDeferred
async def test_success_reads_back_in_groups_and_credits(env, reactor, logged):
    hrn = env.hrn()
    call = await _walker(reactor).call(env.base, [hrn + "#", "1"])
    assert call.ended == "exit"
    assert call.said("Welcome to the recharge service.")
    groups = [hrn[0:4], hrn[4:8], hrn[8:12], hrn[12:14]]
    i = call.prompts.index("You entered")
    assert call.prompts[i + 1:i + 5] == groups
    assert call.said("Your account has been credited with 10 EUR.")
    assert call.said("Your account is now valid until")
    assert call.meta == {"ivoms-result": "0", "ivoms-next": "end"}
    assert voucher_row(env.store, env.serial())[:2] == ("used", E164)
    (t,) = txn_rows(env.store)
    assert (t["channel"], t["result_code"], t["msisdn"]) == ("ivr", 0, E164)
    assert t["source"] == "ivr:local"           # the configured peer that posted it
    submit = call.fetches[-1]
    assert submit[0] == "POST" and submit[1] == env.base + "activate"
    assert dict(submit[2]) == {"msisdn": CALLER, "hrn": hrn, "lang": "en", "attempt": "1"}
    _all_valid(call)
    _no_hrn_leak(call, hrn, logged)


@pytest_twisted.ensureDeferred
async def test_wrong_hrn_is_refused_and_offers_another_try(env, reactor, logged):
    call = await _walker(reactor).call(env.base, [WRONG + "#", "1", HANGUP])
    assert call.said("The recharge number you entered is not valid.")
    assert call.said("Please try another recharge number.")
    assert call.fetches[-1][1] == env.base + "collect?lang=en&attempt=2"
    assert call.prompts[-1].startswith("Please enter the 14 digit recharge number")
    assert call.ended == "hangup"
    assert [(t["result_code"], t["channel"]) for t in txn_rows(env.store)] == [(R.INVALID_HRN, "ivr")]
    _all_valid(call)
    _no_hrn_leak(call, WRONG, logged)


@pytest_twisted.ensureDeferred
async def test_wrong_then_right(env, reactor):
    hrn = env.hrn(1)
    call = await _walker(reactor).call(env.base, [WRONG + "#", "1", hrn + "#", "1"])
    assert call.said("not valid") and call.said("credited with 10 EUR")
    assert call.prompts.count("Welcome to the recharge service.") == 1
    assert [dict(f[2])["attempt"] for f in call.fetches if f[0] == "POST"] == ["1", "2"]
    assert voucher_row(env.store, env.serial(1))[:2] == ("used", E164)
    assert call.ended == "exit"
    _all_valid(call)


@pytest_twisted.ensureDeferred
async def test_barred_caller_hears_when_to_try_again(make_env, reactor):
    env = await make_env(fraud=FraudSettings(tiers=((2, 600),)))
    try:
        for _ in range(2):
            r = await env.service.activate(ActivationRequest(E164, WRONG, "sms"))
            assert r.code == R.INVALID_HRN
        call = await _walker(reactor).call(env.base, [env.hrn() + "#", "1"])
        assert call.meta["ivoms-result"] == str(int(R.SUBSCRIBER_BARRED))
        assert call.said("There were too many wrong attempts from your number. "
                         "You can try again in 10 minutes, after ")
        assert call.ended == "exit" and call.transfer is None
        assert voucher_row(env.store, env.serial())[0] == "available"
        _all_valid(call)
    finally:
        await _stop(env)


@pytest_twisted.ensureDeferred
async def test_no_input_reprompts_then_transfers_to_care(env, reactor):
    call = await _walker(reactor).call(env.base, [NOINPUT, NOINPUT, NOINPUT])
    assert call.events == ["noinput"] * 3
    assert call.prompts.count("Sorry, I did not hear anything.") == 2
    assert sum(p.startswith("Please enter the 14 digit") for p in call.prompts) == 3
    assert call.said("Please hold while we transfer you to customer care.")
    assert call.transfer == {"dest": CARE, "type": "blind"} and call.ended == "transfer"
    assert txn_rows(env.store) == []
    _all_valid(call)


@pytest_twisted.ensureDeferred
async def test_no_input_once_then_success(env, reactor):
    call = await _walker(reactor).call(env.base, [NOINPUT, env.hrn() + "#", "1"])
    assert call.said("Sorry, I did not hear anything.") and call.said("credited")


@pytest_twisted.ensureDeferred
async def test_nomatch_wrong_length_and_events_then_transfer(env, reactor):
    call = await _walker(reactor).call(env.base, ["123#", NOMATCH, "1234567890123456789#"])
    assert call.events == ["nomatch"] * 3
    assert call.prompts.count("Sorry, that is not a valid recharge number.") == 2
    assert call.ended == "transfer" and txn_rows(env.store) == []


@pytest_twisted.ensureDeferred
async def test_transfer_after_repeated_failed_vouchers(env, reactor):
    inputs = [WRONG + "#", "1", "99999999999998#", "1", "99999999999997#", "1"]
    call = await _walker(reactor).call(env.base, inputs)
    assert call.prompts.count("The recharge number you entered is not valid.") == 3
    assert call.prompts.count("Please try another recharge number.") == 2
    assert call.meta == {"ivoms-result": str(int(R.INVALID_HRN)), "ivoms-next": "care"}
    assert call.transfer == {"dest": CARE, "type": "blind"}
    assert len(txn_rows(env.store)) == 3
    _all_valid(call)


@pytest_twisted.ensureDeferred
async def test_busy_care_apologises_and_says_goodbye(env, reactor):
    call = await _walker(reactor, transfer_outcome="busy").call(env.base, [NOINPUT] * 3)
    assert call.said("Customer care cannot take your call right now.")
    assert call.prompts[-1] == "Thank you for calling. Goodbye." and call.ended == "exit"


@pytest_twisted.ensureDeferred
async def test_star_starts_again_without_counting_a_failure(env, reactor):
    call = await _walker(reactor).call(env.base, ["1234*", env.hrn() + "#", "1"])
    assert call.events == [] and call.said("Starting again.") and call.said("credited")


@pytest_twisted.ensureDeferred
async def test_two_re_enters_the_number(env, reactor):
    hrn = env.hrn()
    call = await _walker(reactor).call(env.base, [WRONG + "#", "2", hrn + "#", "1"])
    assert call.said("Let us enter the number again.") and call.said("credited")
    assert [dict(f[2])["hrn"] for f in call.fetches if f[0] == "POST"] == [hrn]
    assert len(txn_rows(env.store)) == 1


@pytest_twisted.ensureDeferred
async def test_sip_ani_and_no_trailing_slash(env, reactor):
    call = await _walker(reactor, ani="<sip:0641234567@gw.example;user=phone>").call(
        env.base.rstrip("/"), [env.hrn() + "#", "1"])
    assert call.said("credited") and call.fetches[-1][1] == env.base + "activate"
    assert voucher_row(env.store, env.serial())[:2] == ("used", E164)


@pytest_twisted.ensureDeferred
async def test_platform_without_the_session_variable_gets_the_apology(env, reactor):
    call = await _walker(reactor, ani=None).call(env.base, [env.hrn() + "#", "1"])
    assert call.events == ["error.semantic"]
    assert call.said("We are sorry, the recharge service cannot handle your call right now.")
    assert call.ended == "exit" and len(call.fetches) == 1


@pytest_twisted.ensureDeferred
async def test_language_menu_then_serbian_dialogue(make_env, reactor):
    langs = [LanguageSettings(code="en", name="English", xml_lang="en-US"),
             LanguageSettings(code="sr", name="Srpski", xml_lang="sr-Latn-RS", prompts=SERBIAN,
                              currency_names={"EUR": "evra"})]
    env = await make_env(settings=IvrSettings(languages=langs, care_number=CARE))
    try:
        call = await _walker(reactor).call(env.base, [NOMATCH, "2", env.hrn() + "#", "1"])
        assert call.prompts[:2] == ["For English, press 1.", "Za srpski, pritisnite 2."]
        assert call.prompts[2:4] == call.prompts[:2]      # reprompt after the nomatch
        assert call.said("Dobrodošli u servis za dopunu.")
        assert call.said("Vaš račun je dopunjen sa 10 evra.")
        assert call.prompts[-1] == "Hvala na pozivu."
        assert dict(call.fetches[-1][2])["lang"] == "sr"
        _all_valid(call)
        # no choice at all: the default language after the retry limit
        call = await _walker(reactor).call(env.base, [NOINPUT, NOINPUT, NOINPUT, HANGUP])
        assert call.fetches[-1][1] == env.base + "collect?lang=en&attempt=1"
    finally:
        await _stop(env)


# -- bad requests ------------------------------------------------------------
BAD = [
    ("missing_msisdn", [("hrn", "12345678901234"), ("lang", "en")]),
    ("missing_msisdn", [("msisdn", " "), ("hrn", "12345678901234")]),
    ("missing_hrn", [("msisdn", CALLER)]),
    ("bad_hrn", [("msisdn", CALLER), ("hrn", "1234abcd901234")]),
    ("bad_hrn", [("msisdn", CALLER), ("hrn", "1234")]),
    ("bad_hrn", [("msisdn", CALLER), ("hrn", "١٢٣٤٥٦٧٨٩٠١٢٣٤")]),   # non-ASCII digits
    ("bad_parameter", [("msisdn", CALLER), ("hrn", "12345678901234"), ("hrn", "12345678901234")]),
    ("bad_parameter", [("msisdn", CALLER), ("hrn", "12345678901234"), ("attempt", "x")]),
    ("bad_parameter", [("msisdn", CALLER), ("hrn", "12345678901234"), ("lang", "<en>")]),
    ("oversize", [("msisdn", "1" * 300), ("hrn", "12345678901234")]),
    ("oversize", [("msisdn", CALLER), ("hrn", "12345678901234"), ("junk", "x" * 5000)]),
]


@pytest.mark.parametrize("reason,fields", BAD)
@pytest_twisted.ensureDeferred
async def test_bad_activation_posts_get_the_spoken_apology(env, reactor, reason, fields):
    fetch = http_fetch(reactor)
    status, headers, body = await fetch("POST", env.base + "activate", fields)
    assert (status, headers.get("x-ivoms-error")) == (200, reason)
    assert_valid(body)
    assert b"Traceback" not in body and b"12345678901234" not in body
    call = await _walker(reactor).play(env.base + "activate", body, [])
    assert call.prompts == ["We are sorry, the recharge service cannot handle your call right "
                            "now. Please try again later."] and call.ended == "exit"
    assert txn_rows(env.store) == []


@pytest_twisted.ensureDeferred
async def test_non_utf8_and_other_bad_requests(env, reactor):
    from io import BytesIO

    from twisted.web.client import Agent, FileBodyProducer
    from twisted.web.http_headers import Headers
    agent = Agent(reactor)
    cases = [
        (b"POST", b"activate", b"msisdn=%FF%FE&hrn=12345678901234", "bad_parameter"),
        (b"GET", b"activate", None, "method_not_allowed"),
        (b"GET", b"nope", None, "not_found"),
        (b"GET", b"collect?attempt=0", None, "bad_parameter"),
        (b"POST", b"collect", b"x" * 5000, "oversize"),
    ]
    for method, path, data, reason in cases:
        body = FileBodyProducer(BytesIO(data)) if data is not None else None
        hdrs = Headers({b"content-type": [b"application/x-www-form-urlencoded"]})
        resp = await agent.request(method, env.base.encode() + path, hdrs, body)
        content = await read_body(resp)
        assert resp.code == 200, path
        assert resp.headers.getRawHeaders(b"x-ivoms-error") == [reason.encode()], path
        root = assert_valid(content)
        assert root.find("{http://www.w3.org/2001/vxml}meta").get("content") == reason
    assert txn_rows(env.store) == []


@pytest_twisted.ensureDeferred
async def test_configured_error_status(make_env, reactor):
    env = await make_env(settings=IvrSettings(bad_request_status=400))
    try:
        status, headers, body = await http_fetch(reactor)("POST", env.base + "activate", [])
        assert status == 400 and headers["x-ivoms-error"] == "missing_msisdn"
        assert_valid(body)
    finally:
        await _stop(env)


@pytest_twisted.ensureDeferred
async def test_activation_replayed_with_the_same_call_id_gets_the_original_answer(env, reactor):
    """Idempotency key: call id (C{callref}), MSISDN and HRN (docs/activation.md)."""
    fetch = http_fetch(reactor)
    fields = [("msisdn", CALLER), ("hrn", env.hrn()), ("lang", "en"), ("attempt", "1"),
              ("callref", "call-77")]
    first = await fetch("POST", env.base + "activate", fields)
    again = await fetch("POST", env.base + "activate", fields)
    other_call = await fetch("POST", env.base + "activate", fields[:-1] + [("callref", "call-78")])
    no_call_id = await fetch("POST", env.base + "activate", fields[:-1])
    for status, _, body in (first, again, other_call, no_call_id):
        assert status == 200
        assert_valid(body)
    assert again[2] == first[2]                              # the same document, word for word
    assert b'content="0"' in first[2]                        # ivoms-result 0: success
    for _, _, body in (other_call, no_call_id):              # new requests: already used by you
        assert b'content="%d"' % R.VOUCHER_ALREADY_USED_BY_YOU in body
    rows = txn_rows(env.store)
    assert [t["result_code"] for t in rows].count(0) == 1
    assert voucher_row(env.store, env.serial())[:2] == ("used", E164)
