"""The test DTMF walker itself: its ECMAScript subset, event-handler selection and transitions."""
from __future__ import annotations

import pytest
import pytest_twisted

from tests.vxml_script import UNDEFINED, Throw, WalkerError, evaluate
from tests.vxml_walker import HANGUP, NOINPUT, Walker


def _eval(expr, **scope):
    def lookup(name):
        if name in scope:
            return scope[name]
        raise Throw("error.semantic")
    return evaluate(expr, lookup)


@pytest.mark.parametrize("expr,value", [
    ("hrn.substring(0, 4)", "1234"),
    ("hrn.substring(12, 16)", "34"),
    ("hrn.substring(20, 24)", ""),
    ("hrn.length > 12", True),
    ("hrn.length == 14 || hrn.length == 16", True),
    ("!(hrn.length == 12)", True),
    ("String(hrn).indexOf('*') >= 0", False),
    ("'12*'.indexOf('*')", 2),
    ("confirm == '1'", True),
    ("confirm == 1", True),
    ("confirm === 1", False),
    ("care_call == 'busy' || care_call == 'noanswer'", False),
    ("'a' + 1 + 2", "a12"),
    ("1 + 2 * 3", 7),
    ("x == undefined && !x", True),
    ("'it\\'s'", "it's"),
])
def test_expressions(expr, value):
    assert _eval(expr, hrn="12345678901234", confirm="1", care_call="far_end_disconnect",
                 x=UNDEFINED) == value


def test_undefined_variable_is_a_semantic_error():
    with pytest.raises(Throw) as e:
        _eval("session.nothing.deeper", session={})
    assert e.value.event == "error.semantic"
    with pytest.raises(Throw):
        _eval("nobody")


def test_unsupported_syntax_is_a_walker_error():
    with pytest.raises(WalkerError):
        _eval("a = 1", a=1)


DOCS = {
    "http://t/a": b"""<?xml version="1.0"?>
<vxml xmlns="http://www.w3.org/2001/vxml" version="2.1">
  <catch event="error"><prompt>doc error</prompt><exit/></catch>
  <form id="f">
    <var name="n" expr="0"/>
    <field name="x">
      <grammar mode="dtmf" src="builtin:dtmf/digits?minlength=2;maxlength=3"/>
      <prompt>enter</prompt>
      <nomatch>generic nomatch<reprompt/></nomatch>
      <nomatch count="2"><prompt>second</prompt></nomatch>
      <nomatch count="3"><goto next="b?from=a"/></nomatch>
      <filled><assign name="n" expr="n + 1"/><if cond="x == '99'"><throw event="error.custom"/>
        <elseif cond="x.length == 3"/><submit next="c" method="post" namelist="x n"/>
        <else/><prompt>two <value expr="x"/></prompt><goto next="#g"/></if></filled>
    </field>
  </form>
  <form id="g"><block>in g<disconnect/></block></form>
</vxml>""",
    "http://t/b?from=a": b"""<vxml xmlns="http://www.w3.org/2001/vxml" version="2.1">
  <menu id="m"><prompt>menu</prompt><choice dtmf="7" next="a#g">seven</choice>
    <noinput><reprompt/></noinput></menu></vxml>""",
}


def _fetch(record):
    async def fetch(method, url, fields):
        record.append((method, url, fields))
        if url in DOCS:
            return 200, {}, DOCS[url]
        return 404, {}, b""
    return fetch


@pytest_twisted.ensureDeferred
async def test_handler_counts_reprompt_and_transitions():
    seen = []
    call = await Walker(_fetch(seen)).call("http://t/a", ["1", "1", "1", NOINPUT, "7"])
    # count 1 reprompts, count 2 speaks without reprompt, count 3 goes to b, the menu reprompts
    assert call.prompts == ["enter", "generic nomatch", "enter", "second", "menu", "menu",
                            "in g"]
    assert call.ended == "disconnect" and call.events == ["nomatch"] * 3 + ["noinput"]
    assert [u for _, u, _ in seen] == ["http://t/a", "http://t/b?from=a", "http://t/a"]


@pytest_twisted.ensureDeferred
async def test_submit_and_badfetch():
    seen = []
    call = await Walker(_fetch(seen)).call("http://t/a", ["123#"])
    assert seen[-1] == ("POST", "http://t/c", [("x", "123"), ("n", "1")])
    assert call.prompts == ["enter", "doc error"] and call.ended == "exit"


@pytest_twisted.ensureDeferred
async def test_thrown_event_goes_to_the_document_handler_and_local_goto():
    call = await Walker(_fetch([])).call("http://t/a", ["99"])
    assert call.events == ["error.custom"] and call.prompts[-1] == "doc error"
    call = await Walker(_fetch([])).call("http://t/a", ["12"])
    assert call.prompts[-2:] == ["two 12", "in g"]


@pytest_twisted.ensureDeferred
async def test_hangup_and_running_out_of_input():
    call = await Walker(_fetch([])).call("http://t/a", [HANGUP])
    assert call.ended == "hangup"
    with pytest.raises(WalkerError, match="no input left"):
        await Walker(_fetch([])).call("http://t/a", [])
