"""USSD dialogues on a task.Clock with a fake activation service: direct codes, the menu,
another number, help, retries, timeout and release (issue 6)."""

from __future__ import annotations

import pytest
from twisted.internet import task

from core.inbox import request_key
from core.requests import ActivationResult
from core.results import ResultCode as R
from protocols.ussd.dialogue import (DialogueBusy, DialogueManager, State,
                                     TooManyDialogues, UnknownDialogue,
                                     parse_service_string)
from protocols.ussd.replies import Texts, fits
from tests.fakes import FakeActivationService

HRN = "12345678901234"
MSISDN = "+381641234567"
EXPIRY = 4102444800000          # 2100-01-01T00:00:00Z
UNBAR = 1767225600000           # 2026-01-01T00:00:00Z


#: What the fake activation service answers unless a test says otherwise.
SUCCESS = ActivationResult(R.SUCCESS, txn_id="abcdef0123456789", amount=1050, currency="EUR",
                           validity_days=30, new_expiry=EXPIRY)


def reply_of(d):
    """The result of an already-fired Deferred."""
    out = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


@pytest.fixture
def clock():
    return task.Clock()


@pytest.fixture
def fake():
    return FakeActivationService(SUCCESS)


def manager(fake, clock, **kw):
    kw.setdefault("service_codes", {"123": "", "124": "sr"})
    kw.setdefault("hrn_lengths", {14})
    return DialogueManager(fake, clock=clock, texts=Texts(), **kw)


def test_parse_service_string():
    assert parse_service_string("*123#") == ("123", [])
    assert parse_service_string(" *123*%s# " % HRN) == ("123", [HRN])
    assert parse_service_string("*123*1*2#") == ("123", ["1", "2"])
    for bad in ("", "123#", "*123", "*abc#", "#", "*#"):
        assert parse_service_string(bad) is None


def test_direct_code_activates_and_ends(fake, clock):
    m = manager(fake, clock)
    reply = reply_of(m.begin("d1", MSISDN, "*123*%s#" % HRN, source="ussd:10.0.0.1"))
    assert reply.ends and reply.result.code == R.SUCCESS
    assert reply.text == ("Your account was credited with 10.50 EUR. "
                          "Valid until 2100-01-01. Ref abcdef012345")
    (req,) = fake.requests
    assert (req.msisdn, req.hrn, str(req.channel.value), req.channel_ref, req.beneficiary,
            req.source) == (MSISDN, HRN, "ussd", "d1", None, "ussd:10.0.0.1")
    # the replay key names the peer: another gateway's dialogue id never answers for this one
    assert req.idempotency_key == request_key("ussd", "d1", "ussd:10.0.0.1", MSISDN, HRN)
    assert m.sessions == {} and clock.getDelayedCalls() == []


def test_direct_code_for_another_number(fake, clock):
    m = manager(fake, clock)
    reply = reply_of(m.begin("d1", MSISDN, "*123*%s*0647654321#" % HRN))
    assert fake.requests[0].beneficiary == "0647654321"
    assert reply.text.startswith("0647654321 was credited with 10.50 EUR")
    off = manager(fake, clock, allow_other_number=False)
    reply = reply_of(off.begin("d2", MSISDN, "*123*%s*0647654321#" % HRN))
    assert reply.ends and "not available" in reply.text and len(fake.requests) == 1


def test_menu_recharge_my_number(fake, clock):
    m = manager(fake, clock)
    menu = reply_of(m.begin("d1", MSISDN, "*123#"))
    assert not menu.ends
    assert menu.text == "Recharge\n1 Recharge my number\n2 Recharge another number\n3 Help"
    assert m.get("d1").state is State.MENU and len(clock.getDelayedCalls()) == 1
    prompt = reply_of(m.continue_("d1", "1"))
    assert not prompt.ends and prompt.text == "Enter the 14-digit voucher number:"
    done = reply_of(m.continue_("d1", "1234 5678-9012 34"))
    assert done.ends and done.result.ok
    assert fake.requests[0].hrn == "1234 5678-9012 34" and fake.requests[0].beneficiary is None
    assert m.sessions == {} and clock.getDelayedCalls() == []


def test_menu_recharge_another_number(fake, clock):
    m = manager(fake, clock)
    reply_of(m.begin("d1", MSISDN, "*123#"))
    ask = reply_of(m.continue_("d1", "2"))
    assert ask.text == "Enter the phone number to recharge:"
    ask = reply_of(m.continue_("d1", "0647654321"))
    assert ask.text == "Recharge 0647654321. Enter the 14-digit voucher number:"
    done = reply_of(m.continue_("d1", HRN))
    assert done.ends and done.text.startswith("0647654321 was credited")
    assert (fake.requests[0].msisdn, fake.requests[0].beneficiary) == (MSISDN, "0647654321")


def test_menu_without_other_number(fake, clock):
    m = manager(fake, clock, allow_other_number=False)
    menu = reply_of(m.begin("d1", MSISDN, "*123#"))
    assert "another" not in menu.text
    again = reply_of(m.continue_("d1", "2"))
    assert not again.ends and again.text.startswith("Invalid choice.\nRecharge")


def test_help_ends(fake, clock):
    m = manager(fake, clock)
    reply_of(m.begin("d1", MSISDN, "*123#"))
    help_ = reply_of(m.continue_("d1", "3"))
    assert help_.ends and "*123*voucher number#" in help_.text and fits(help_.text)
    assert m.sessions == {} and fake.requests == []


def test_menu_choice_in_the_first_string(fake, clock):
    m = manager(fake, clock)
    prompt = reply_of(m.begin("d1", MSISDN, "*123*1#"))
    assert not prompt.ends and m.get("d1").state is State.HRN_SELF
    assert reply_of(m.continue_("d1", HRN)).result.ok
    assert reply_of(m.begin("d2", MSISDN, "*123*3#")).ends
    bad = reply_of(m.begin("d3", MSISDN, "*123*9#"))
    assert bad.ends and bad.text == "Request not understood. Dial *123# for the menu."


def test_bad_input_retries_then_gives_up(fake, clock):
    m = manager(fake, clock, max_attempts=3)
    reply_of(m.begin("d1", MSISDN, "*123#"))
    r1 = reply_of(m.continue_("d1", "7"))
    assert not r1.ends and r1.text.startswith("Invalid choice.\n")
    ok = reply_of(m.continue_("d1", "1"))
    assert not ok.ends
    r2 = reply_of(m.continue_("d1", "12ab"))      # attempts reset at the new prompt
    assert not r2.ends and r2.text == ("The voucher number must have 14 digits.\n"
                                       "Enter the 14-digit voucher number:")
    r3 = reply_of(m.continue_("d1", "123"))
    assert not r3.ends
    r4 = reply_of(m.continue_("d1", ""))
    assert r4.ends and r4.text.startswith("Too many invalid entries. Please dial *123#")
    assert fake.requests == [] and m.sessions == {} and clock.getDelayedCalls() == []


def test_bad_beneficiary_retries(fake, clock):
    m = manager(fake, clock, msisdn_check=lambda n: n.startswith("06"))
    reply_of(m.begin("d1", MSISDN, "*123*2#"))
    again = reply_of(m.continue_("d1", "999"))
    assert not again.ends and again.text.startswith("That is not a valid phone number.\n")
    assert m.get("d1").state is State.NUMBER
    assert not reply_of(m.continue_("d1", "0647654321")).ends


def test_timeout_forgets_the_dialogue(fake, clock):
    m = manager(fake, clock, timeout=60)
    reply_of(m.begin("d1", MSISDN, "*123#"))
    clock.advance(59)
    reply_of(m.continue_("d1", "1"))              # any answer re-arms the timer
    clock.advance(59)
    assert m.get("d1") is not None
    clock.advance(1)
    assert m.get("d1") is None and clock.getDelayedCalls() == []
    with pytest.raises(UnknownDialogue):
        m.continue_("d1", HRN)
    assert m.expired_text() == "Your session has expired. Please dial *123# to start again."
    assert fake.requests == []


def test_release_by_the_network(fake, clock):
    m = manager(fake, clock)
    reply_of(m.begin("d1", MSISDN, "*123#"))
    assert m.release("d1", "aborted") is True
    assert m.release("d1") is False and m.sessions == {} and clock.getDelayedCalls() == []
    with pytest.raises(UnknownDialogue):
        m.continue_("d1", "1")


def test_release_while_activating_still_completes(fake, clock):
    fake.hold = True
    m = manager(fake, clock)
    reply_of(m.begin("d1", MSISDN, "*123#"))
    reply_of(m.continue_("d1", "1"))
    d = m.continue_("d1", HRN)
    with pytest.raises(DialogueBusy):
        m.continue_("d1", HRN)
    clock.advance(10_000)                         # no timeout while the core works
    assert m.get("d1") is not None
    assert m.release("d1") is True
    fake.held[0].callback(fake.result)
    assert reply_of(d).result.ok and m.sessions == {}


def test_too_many_dialogues(fake, clock):
    m = manager(fake, clock, max_sessions=2)
    reply_of(m.begin("a", MSISDN, "*123#"))
    reply_of(m.begin("b", MSISDN, "*123#"))
    with pytest.raises(TooManyDialogues):
        m.begin("c", MSISDN, "*123#")
    reply_of(m.begin("a", MSISDN, "*123*1#"))     # the same id again replaces it
    assert m.get("a").state is State.HRN_SELF and len(clock.getDelayedCalls()) == 2
    m.stop()
    assert m.sessions == {} and clock.getDelayedCalls() == []


def test_one_peer_cannot_fill_the_dialogue_table(fake, clock):
    """Finding 8 of issue 16: one client opened 9,999 menu dialogues and every other
    gateway's real dialogues were refused until they timed out.  Each peer now holds
    at most its own share; the others keep theirs."""
    m = manager(fake, clock, max_sessions=100, max_sessions_per_peer=50)
    for i in range(50):
        reply_of(m.begin("flood-%d" % i, MSISDN, "*123#", source="ussd:flooder"))
    with pytest.raises(TooManyDialogues):
        m.begin("flood-50", MSISDN, "*123#", source="ussd:flooder")
    assert m.open_by_source == {"ussd:flooder": 50}
    for i in range(50):                      # the real gateway still gets its whole share
        reply = reply_of(m.begin("real-%d" % i, MSISDN, "*123#", source="ussd:gw-1"))
        assert not reply.ends
    with pytest.raises(TooManyDialogues):    # and the total cap still holds
        m.begin("real-50", MSISDN, "*123#", source="ussd:gw-2")
    m.release("flood-0")
    clock.advance(121)                       # timed out dialogues give their slots back
    assert m.sessions == {} and m.open_by_source == {}
    reply_of(m.begin("flood-51", MSISDN, "*123#", source="ussd:flooder"))
    assert m.open_by_source == {"ussd:flooder": 1}


def test_two_peers_may_use_the_same_dialogue_id(fake, clock):
    """Each gateway numbers its own dialogues: one peer's begin, continue or release
    never reaches another peer's dialogue of the same id."""
    m = manager(fake, clock)
    reply_of(m.begin("1", MSISDN, "*123#", source="ussd:gw-a"))
    reply_of(m.begin("1", MSISDN, "*123*1#", source="ussd:gw-b"))
    assert m.get("1", "ussd:gw-a").state is State.MENU
    assert m.get("1", "ussd:gw-b").state is State.HRN_SELF
    assert m.release("1", source="ussd:gw-b") is True
    assert m.get("1", "ussd:gw-a") is not None and m.get("1", "ussd:gw-b") is None
    with pytest.raises(UnknownDialogue):
        m.continue_("1", "1", source="ussd:gw-b")
    assert not reply_of(m.continue_("1", "1", source="ussd:gw-a")).ends
    assert m.open_by_source == {"ussd:gw-a": 1}


def test_per_peer_dialogue_limit_defaults_to_a_share_of_the_total():
    from protocols.ussd.config import DialogueSettings
    assert DialogueSettings().per_peer_limit(1) == 10000      # one gateway: the whole table
    assert DialogueSettings().per_peer_limit(4) == 5000       # several: half the table at most
    assert DialogueSettings(max_sessions_per_peer=300).per_peer_limit(4) == 300


def test_unknown_service_code_and_garbage(fake, clock):
    m = manager(fake, clock)
    assert reply_of(m.begin("d1", MSISDN, "*999#")).text == "Unknown service code."
    assert reply_of(m.begin("d2", MSISDN, "hello")).text.startswith("Request not understood")
    assert reply_of(m.begin("d3", MSISDN, "*123**#")).ends
    assert reply_of(m.begin("d4", MSISDN, "*123*1*2*3#")).ends
    assert m.sessions == {} and fake.requests == []


def test_language_choice(fake, clock):
    m = manager(fake, clock)
    assert reply_of(m.begin("a", MSISDN, "*124#")).text.startswith("Dopuna\n1 Dopuna mog")
    assert reply_of(m.begin("b", MSISDN, "*123#", dcs_language="sr")).text.startswith(
        "Dopuna")
    assert reply_of(m.begin("c", MSISDN, "*124#", language="en")).text.startswith(
        "Recharge")
    assert reply_of(m.begin("d", MSISDN, "*123#", language="xx")).text.startswith(
        "Recharge")


@pytest.mark.parametrize("code", list(R))
def test_every_result_code_has_a_text_that_fits(code, clock):
    fake = FakeActivationService(ActivationResult(code, txn_id="t" * 32, amount=123456789,
                                           currency="EUR", new_expiry=EXPIRY,
                                           unbar_at=UNBAR))
    for language in ("en", "sr"):
        reply = reply_of(manager(fake, clock, service_codes={"123": language}).begin(
            "d", MSISDN, "*123*%s#" % HRN))
        assert reply.ends and fits(reply.text) and "{" not in reply.text
    if code == R.SUBSCRIBER_BARRED:
        assert "2026-01-01 00:00" in reply.text


def test_activation_errback_becomes_system_error(clock):
    broken = FakeActivationService(RuntimeError("boom"))
    reply = reply_of(manager(broken, clock).begin("d", MSISDN, "*123*%s#" % HRN))
    assert reply.ends and reply.result.code == R.SYSTEM_ERROR
    assert reply.text.startswith("Sorry, the recharge failed")
