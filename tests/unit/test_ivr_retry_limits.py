"""Refused entries reach the retry limit on a browser that keeps VoiceXML 2.0's counters exactly.

The walker applies §5.3.3 (C{<clear>} resets the item's prompt and event
counters) and §4.1.6 (prompts chosen by C{count}); the documents must count
every refusal, including lengths the grammar accepts and the document refuses.
"""

import pytest
import pytest_twisted

from protocols.ivr.config import IvrSettings
from tests.fakes import FakeActivationService
from tests.unit.test_ivr_resource import ANI, CREDITED, memory_fetch
from tests.vxml_script import WalkerError
from tests.vxml_walker import NOINPUT, NOMATCH, Walker

CARE = "tel:+381111234567"


def _doc(filled: str) -> bytes:
    return ("""<?xml version="1.0"?>
<vxml xmlns="http://www.w3.org/2001/vxml" version="2.1">
  <form id="f">
    <field name="x">
      <grammar mode="dtmf" src="builtin:dtmf/digits?minlength=2;maxlength=3"/>
      <prompt>enter</prompt>
      <prompt count="2">enter again</prompt>
      <nomatch>no<reprompt/></nomatch>
      <nomatch count="3"><prompt>limit</prompt><exit/></nomatch>
      <filled><if cond="x.length == 3">%s<throw event="nomatch"/></if>
        <prompt>ok</prompt><exit/></filled>
    </field>
  </form>
</vxml>""" % filled).encode()


def _fetch(body):
    async def fetch(method, url, fields):
        return 200, {}, body
    return fetch


@pytest_twisted.ensureDeferred
async def test_clear_resets_counters_so_the_limit_is_never_reached():
    with pytest.raises(WalkerError) as ei:                   # §5.3.3: count stays at 1
        await Walker(_fetch(_doc('<clear namelist="x"/>'))).call("http://t/a", ["123"] * 6)
    assert "no input left" in str(ei.value)
    assert "limit" not in str(ei.value) and "enter again" not in str(ei.value)


@pytest_twisted.ensureDeferred
async def test_assign_keeps_counters_and_the_limit_is_reached():
    call = await Walker(_fetch(_doc('<assign name="x" expr="undefined"/>'))).call(
        "http://t/a", ["123"] * 3)
    # the prompt counter goes on too: the second visit plays the count="2" prompt
    assert call.prompts == ["enter", "no", "enter again", "no", "enter again", "limit"]


@pytest.fixture
def root():
    """/ivr/ with two voucher types of 14 and 16 digits: 15 passes the grammar, not the document."""
    from twisted.internet import task
    from twisted.web import resource
    from protocols.ivr.resource import build_resource
    from tests.helpers import with_loopback_peer
    ivr = build_resource(FakeActivationService(CREDITED),
                         with_loopback_peer(IvrSettings(care_number=CARE)),
                         clock=task.Clock(), hrn_lengths={14, 16})
    top = resource.Resource()
    top.putChild(b"ivr", ivr)
    return top


async def _walk(root, inputs):
    return await Walker(memory_fetch(root), ANI, transfer_outcome=None).call(
        "http://ivr.test/ivr/", inputs)


@pytest_twisted.ensureDeferred
async def test_repeated_wrong_length_reaches_customer_care(root):
    call = await _walk(root, ["123456789012345#"] * 3)
    assert call.events == ["nomatch"] * 3
    assert call.transfer["dest"] == CARE and call.ended == "transfer"


@pytest_twisted.ensureDeferred
async def test_every_kind_of_refusal_counts_together(root):
    # grammar nomatch, a length the document refuses, a restart with '*', then 15 digits again
    call = await _walk(root, [NOMATCH, "123456789012345#", "12*", "123456789012345#"])
    assert call.events == ["nomatch"] * 3 and call.transfer["dest"] == CARE


@pytest_twisted.ensureDeferred
async def test_reentering_after_confirm_keeps_the_counts(root):
    call = await _walk(root, ["123456789012345#", "12345678901234#", "2",
                              "123456789012345#", "123456789012345#"])
    assert call.events == ["nomatch"] * 3 and call.transfer["dest"] == CARE


@pytest_twisted.ensureDeferred
async def test_noinput_limit_survives_a_restart(root):
    call = await _walk(root, [NOINPUT, "1*", NOINPUT, NOINPUT])
    assert call.events == ["noinput"] * 3 and call.transfer["dest"] == CARE
