"""IVR document builders: every document the channel can serve validates against the
W3C VoiceXML 2.1 DTD, and says what it should (issue 8)."""
from __future__ import annotations

import pytest
from lxml import etree

from core.requests import ActivationResult
from core.results import ResultCode as R
from protocols.ivr import grammars, spoken
from protocols.ivr.collect import collect_document, readback
from protocols.ivr.config import IvrSettings, LanguageSettings
from protocols.ivr.context import Context, Urls
from protocols.ivr.entry import entry_document
from protocols.ivr.errors import REASONS
from protocols.ivr.replies import NEXT, Next, next_step
from protocols.ivr.page import error_document, seconds
from protocols.ivr.result import result_document
from protocols.ivr.texts import ENGLISH
from protocols.ivr.vxml import el, serialise
from tests.vxml_walker import assert_valid, match_grammar, vxml21_dtd

V = "{http://www.w3.org/2001/vxml}"
URLS = Urls("/ivr/")
NOW = 1_750_000_000_000
SR = LanguageSettings(code="sr", name="Srpski", xml_lang="sr-Latn-RS", prompts=dict(ENGLISH))

SETTINGS = {
    "default": IvrSettings(),
    "care": IvrSettings(care_number="tel:+381111234567", care_transfer="bridge", care_max_time=600,
                        call_ref_expr="session.connection.ccxml.sessionid",
                        wait_audio="http://media.example/hold.wav"),
    "two-languages": IvrSettings(languages=[LanguageSettings(code="en"), SR], default_language="sr",
                                 care_number="sip:care@pbx.example"),
    "audio": IvrSettings(languages=[LanguageSettings(
        code="en", xml_lang="en-GB",
        audio={"welcome": "http://media.example/en/welcome.wav",
               "SUCCESS": "http://media.example/en/ok.wav"})],
        max_noinput=1, max_nomatch=1, base_url="https://ivoms.example/recharge/ivr/"),
}
LENGTHS = {"one": (14,), "range": (12, 13, 14), "gaps": (8, 14, 20)}


@pytest.fixture(scope="module")
def dtd():
    return vxml21_dtd()


def _ctx(name="default", lengths="one"):
    return Context.build(SETTINGS[name], LENGTHS[lengths])


def _doc(root):
    return etree.fromstring(serialise(root))


def _result(code, **kw):
    base = dict(amount=1050, currency="EUR", new_expiry=NOW + 86400000 * 30, unbar_at=NOW + 600_000)
    base.update(kw)
    return ActivationResult(code, **base)


def _all_documents():
    for sname in SETTINGS:
        for lname in LENGTHS:
            ctx = _ctx(sname, lname)
            yield "entry", ctx, entry_document(ctx, URLS)
            for lang in ctx.settings.languages:
                for attempt in (1, 2, 3):
                    yield "collect", ctx, collect_document(ctx, lang, URLS, attempt)
                for reason in REASONS:
                    yield "error", ctx, error_document(ctx, lang, reason)
                for code in R:
                    for attempt in (1, 3):
                        yield "result", ctx, result_document(ctx, lang, URLS, _result(code),
                                                             attempt=attempt, now_ms=NOW)
                yield "result", ctx, result_document(ctx, lang, URLS, ActivationResult(R.SUCCESS),
                                                     attempt=1, now_ms=NOW)


def test_every_document_is_valid_voicexml_2_1(dtd):
    count = 0
    for kind, ctx, root in _all_documents():
        body = serialise(root)
        assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE vxml PUBLIC "
                               b"\"-//W3C//DTD VOICEXML 2.1//EN\"")
        parsed = assert_valid(body, dtd)
        assert parsed.get("version") == "2.1" and parsed.tag == V + "vxml"
        count += 1
    assert count > 500


def test_prompt_text_is_escaped(dtd):
    tricky = LanguageSettings(code="en", prompts={"welcome": "Tom & Jerry's <recharge> \"line\" ]]>"})
    ctx = Context.build(IvrSettings(languages=[tricky]), (14,))
    body = serialise(collect_document(ctx, tricky, URLS))
    assert b"Tom &amp; Jerry's &lt;recharge&gt; \"line\" ]]&gt;" in body
    root = assert_valid(body, dtd)
    assert root.find(".//%sblock/%sprompt" % (V, V)).text == "Tom & Jerry's <recharge> \"line\" ]]>"


def test_single_language_entry_is_the_collection_with_welcome():
    ctx = _ctx()
    root = _doc(entry_document(ctx, URLS))
    assert root.find(V + "menu") is None
    assert root.find(".//%sblock[@name='intro']/%sprompt" % (V, V)).text == ENGLISH["welcome"]
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"


def test_language_menu_offers_each_language_in_its_own_voice():
    ctx = _ctx("two-languages")
    root = _doc(entry_document(ctx, URLS))
    menu = root.find(V + "menu")
    prompts = menu.findall(V + "prompt")
    assert [p.get("{http://www.w3.org/XML/1998/namespace}lang") for p in prompts] == ["en", "sr-Latn-RS"]
    assert [(c.get("dtmf"), c.get("next")) for c in menu.findall(V + "choice")] == [
        ("1", "/ivr/collect?lang=en&attempt=1"), ("2", "/ivr/collect?lang=sr&attempt=1")]
    # after the limit: the default language (sr)
    last = menu.findall(V + "noinput")[-1]
    assert (last.get("count"), last.find(V + "goto").get("next")) == ("3", "/ivr/collect?lang=sr&attempt=1")


def test_hrn_field_grammar_and_retry_handlers():
    root = _doc(collect_document(_ctx("default", "range"), SETTINGS["default"].default, URLS))
    field = root.find(".//%sfield[@name='hrn']" % V)
    g = field.findall(V + "grammar")
    assert g[0].get("src") == "builtin:dtmf/digits?minlength=12;maxlength=14"
    assert g[0].get("mode") == g[1].get("mode") == "dtmf"
    assert [(h.tag[len(V):], h.get("count")) for h in field if h.tag in (V + "noinput", V + "nomatch")] == [
        ("noinput", "1"), ("noinput", "3"), ("nomatch", "1"), ("nomatch", "3")]
    assert field.find("%snoinput[@count='3']/%sgoto" % (V, V)).get("next") == "#care"
    # contiguous lengths: the grammar's min/max is the whole check
    assert field.find(".//%selseif" % V) is None
    props = {p.get("name"): p.get("value") for p in root.findall(V + "property")}
    assert props == {"timeout": "7s", "interdigittimeout": "3s", "termchar": "#", "fetchtimeout": "20s"}


def test_lengths_with_gaps_are_checked_after_the_grammar():
    root = _doc(collect_document(_ctx("default", "gaps"), SETTINGS["default"].default, URLS))
    elseif = root.find(".//%sfield[@name='hrn']//%selseif" % (V, V))
    assert elseif.get("cond") == "!(hrn.length == 8 || hrn.length == 14 || hrn.length == 20)"
    # unset with <assign>, not <clear> (which would reset the nomatch counter, §5.3.3)
    unset = elseif.getnext()
    assert (unset.tag, unset.get("name"), unset.get("expr")) == (V + "assign", "hrn", "undefined")
    assert unset.getnext().get("event") == "nomatch"
    assert "8, 14 or 20 digit" in etree.tostring(root, encoding="unicode")


def test_limit_of_one_has_no_reprompt_handler():
    ctx = _ctx("audio")
    root = _doc(collect_document(ctx, ctx.settings.default, URLS))
    field = root.find(".//%sfield[@name='hrn']" % V)
    assert [(h.tag[len(V):], h.get("count")) for h in field if h.tag in (V + "noinput", V + "nomatch")] == [
        ("noinput", "1"), ("nomatch", "1")]


def test_readback_groups_and_conditions():
    ctx = Context.build(IvrSettings(digit_group=4), (12, 16))
    lang = ctx.settings.default
    prompts = readback(ctx, lang)
    assert prompts[0].text == "You entered"
    groups = [(p.find(V + "say-as/" + V + "value").get("expr"), p.get("cond")) for p in prompts[1:]]
    assert groups == [("hrn.substring(0, 4)", None), ("hrn.substring(4, 8)", None),
                      ("hrn.substring(8, 12)", None), ("hrn.substring(12, 16)", "hrn.length > 12")]
    assert {p.find(V + "say-as").get("interpret-as") for p in prompts[1:]} == {"digits"}


def test_submit_posts_the_caller_number_and_never_puts_the_hrn_in_a_url():
    ctx = _ctx("care")
    root = _doc(collect_document(ctx, ctx.settings.default, URLS, attempt=2))
    submit = root.find(".//" + V + "submit")
    assert (submit.get("next"), submit.get("method")) == ("/ivr/activate", "post")
    assert submit.get("namelist") == "msisdn hrn lang attempt callref"
    assert submit.get("fetchaudio") == "http://media.example/hold.wav"
    variables = {v.get("name"): v.get("expr") for v in root.find(V + "form").findall(V + "var")}
    assert variables == {"lang": "'en'", "attempt": "2", "msisdn": "session.connection.remote.uri",
                         "callref": "session.connection.ccxml.sessionid"}
    assert root.find(".//%sblock[@name='intro']" % V) is None       # welcome only on the first voucher
    for node in root.iter():
        for name in ("next", "src", "expr"):
            value = node.get(name) or ""
            assert "hrn" not in value or name == "expr"


def test_custom_ani_parameter():
    s = IvrSettings(ani_parameter="caller", ani_expr="session.callerid")
    ctx = Context.build(s, (14,))
    root = _doc(collect_document(ctx, s.default, URLS))
    assert root.find(".//" + V + "submit").get("namelist") == "caller hrn lang attempt"
    assert root.find("%sform/%svar[@name='caller']" % (V, V)).get("expr") == "session.callerid"


def test_care_form_with_and_without_a_number():
    ctx = _ctx("care")
    root = _doc(collect_document(ctx, ctx.settings.default, URLS))
    transfer = root.find("%sform[@id='care']/%stransfer" % (V, V))
    assert (transfer.get("dest"), transfer.get("type"), transfer.get("connecttimeout"),
            transfer.get("maxtime")) == ("tel:+381111234567", "bridge", "30s", "600s")
    assert "care_call == 'busy'" in transfer.find(V + "filled/" + V + "if").get("cond")
    plain = _doc(collect_document(_ctx(), SETTINGS["default"].default, URLS))
    care = plain.find("%sform[@id='care']" % V)
    assert care.find(V + "transfer") is None
    assert [c.tag[len(V):] for c in care.find(V + "block")] == ["prompt", "exit"]


def test_recorded_audio_keeps_the_text_as_fallback():
    ctx = _ctx("audio")
    root = _doc(collect_document(ctx, ctx.settings.default, URLS))
    audio = root.find(".//%sblock[@name='intro']/%sprompt/%saudio" % (V, V, V))
    assert (audio.get("src"), audio.text) == ("http://media.example/en/welcome.wav", ENGLISH["welcome"])


@pytest.mark.parametrize("code", list(R))
def test_result_document_per_code(code):
    ctx = _ctx("care")
    lang = ctx.settings.default
    root = _doc(result_document(ctx, lang, URLS, _result(code), attempt=1, now_ms=NOW))
    meta = {m.get("name"): m.get("content") for m in root.findall(V + "meta")}
    step = NEXT[code]
    assert meta == {"ivoms-result": str(int(code)), "ivoms-next": step.value}
    block = root.find("%sform[@id='result']/%sblock" % (V, V))
    first = "".join(block.find(V + "prompt").itertext())
    assert first.startswith(ENGLISH[code.name].split("{")[0].strip())
    last = block[-1]
    if step is Next.RETRY:
        assert last.get("next") == "/ivr/collect?lang=en&attempt=2"
    elif step is Next.CARE:
        assert last.get("next") == "#care" and root.find("%sform[@id='care']" % V) is not None
    else:
        assert last.tag == V + "exit" and root.find("%sform[@id='care']" % V) is None


def test_success_speaks_amount_currency_and_expiry():
    lang = LanguageSettings(code="en", currency_names={"EUR": "euros"})
    ctx = Context.build(IvrSettings(languages=[lang], timezone="Europe/Belgrade"), (14,))
    root = _doc(result_document(ctx, lang, URLS, _result(R.SUCCESS, new_expiry=1_767_225_600_000),
                                attempt=1, now_ms=NOW))
    prompts = root.findall("%sform/%sblock/%sprompt" % (V, V, V))
    assert "".join(prompts[0].itertext()) == "Your account has been credited with 10.50 euros."
    say = prompts[1].find(V + "say-as")
    assert (say.get("interpret-as"), say.get("format"), say.text) == ("date", "ymd", "2026-01-01")


def test_success_without_expiry_says_no_date():
    ctx = _ctx()
    root = _doc(result_document(ctx, ctx.settings.default, URLS,
                                _result(R.SUCCESS, new_expiry=None, amount=1000), attempt=1, now_ms=NOW))
    texts = ["".join(p.itertext()) for p in root.iter(V + "prompt")][1:]   # [0]: the error catch
    assert texts == ["Your account has been credited with 10 EUR.", ENGLISH["goodbye"]]


def test_barred_says_minutes_and_local_time():
    ctx = Context.build(IvrSettings(timezone="Europe/Belgrade"), (14,))
    unbar = 1_750_003_600_000     # 2025-06-15 16:06:40 UTC = 18:06 in Belgrade
    root = _doc(result_document(ctx, ctx.settings.default, URLS,
                                _result(R.SUBSCRIBER_BARRED, unbar_at=unbar), attempt=1, now_ms=NOW))
    text = "".join(root.find("%sform/%sblock/%sprompt" % (V, V, V)).itertext())
    assert text.endswith("You can try again in 60 minutes, after 18:06.")


def test_unknown_code_renders_as_system_error():
    ctx = _ctx()
    root = _doc(result_document(ctx, ctx.settings.default, URLS, ActivationResult(999),
                                attempt=1, now_ms=NOW))
    assert "".join(root.find("%sform/%sblock/%sprompt" % (V, V, V)).itertext()) == ENGLISH["SYSTEM_ERROR"]


def test_error_document_apologises_and_exits():
    ctx = _ctx("two-languages")
    root = _doc(error_document(ctx, ctx.settings.language("sr"), "bad_hrn"))
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "sr-Latn-RS"
    assert root.find(V + "meta").get("content") == "bad_hrn"
    block = root.find("%sform[@id='error']/%sblock" % (V, V))
    assert [c.tag[len(V):] for c in block] == ["prompt", "exit"]


def test_next_step_table():
    assert set(NEXT) == set(R)
    assert next_step(R.INVALID_HRN, 1, 3) is Next.RETRY
    assert next_step(R.INVALID_HRN, 3, 3) is Next.CARE
    assert next_step(R.SUBSCRIBER_BARRED, 3, 3) is Next.END
    assert next_step(R.SUCCESS, 9, 3) is Next.END
    assert next_step(12345, 1, 3) is Next.END


def test_grammars_match_what_a_platform_would():
    digits = grammars.hrn_digits((12, 14))
    assert match_grammar(digits, "1" * 12) == "1" * 12
    assert match_grammar(digits, "1" * 11) is None and match_grammar(digits, "1" * 15) is None
    restart = grammars.restart()
    assert match_grammar(restart, "*") == "*" and match_grammar(restart, "123*") == "123*"
    assert match_grammar(restart, "12*3") is None
    confirm = grammars.confirm()
    assert [match_grammar(confirm, k) for k in "123"] == ["1", "2", None]


def test_spoken_helpers():
    from zoneinfo import ZoneInfo
    assert spoken.amount(1050, "EUR") == "10.50" and spoken.amount(1000, "EUR") == "10"
    assert spoken.amount(500, "JPY") == "500" and spoken.amount(1234, "KWD") == "1.234"
    assert spoken.amount(None, "EUR") == ""
    assert spoken.lengths([14], "or") == "14" and spoken.lengths([16, 12, 14], "ili") == "12, 14 ili 16"
    assert spoken.minutes_until(NOW + 61_000, NOW) == "2" and spoken.minutes_until(NOW - 5, NOW) == "1"
    assert spoken.time(NOW, ZoneInfo("UTC"), "%H:%M") == "15:06"
    assert spoken.date(NOW, ZoneInfo("UTC"), "%d.%m.%Y", False) == "15.06.2025"
    assert seconds(7.0) == "7s" and seconds(0.5) == "500ms"


def test_builder_skips_none_and_maps_attribute_names():
    node = el("say-as", "a", None, el("break"), "b", interpret_as="digits", format=None, xml_lang="en")
    assert etree.tostring(node) == (b'<say-as xmlns="http://www.w3.org/2001/vxml" interpret-as="digits" '
                                    b'xml:lang="en">a<break/>b</say-as>')
