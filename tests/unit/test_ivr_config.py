"""IVR settings: defaults, the [ivr] table as TOML, and fail-fast validation naming the key."""
from __future__ import annotations

import tomllib

import pytest

from core.settings import ConfigError, build
from protocols.ivr.config import IvrSettings, LanguageSettings
from protocols.ivr.resource import FALLBACK_LENGTHS, build_resource
from protocols.ivr.texts import ENGLISH, KEYS


def _build(text: str) -> IvrSettings:
    return build(IvrSettings, tomllib.loads(text), file="ivoms.toml", key="ivr", base_dir="/tmp")


def test_defaults():
    s = IvrSettings()
    assert s.enabled and [lang.code for lang in s.languages] == ["en"]
    assert s.default.tag == "en-US" and s.language("xx") is s.default
    assert (s.ani_parameter, s.ani_expr) == ("msisdn", "session.connection.remote.uri")
    assert (s.max_noinput, s.max_nomatch, s.max_attempts) == (3, 3, 3)
    assert s.care_number == "" and s.bad_request_status == 200
    assert _build("") == s


def test_full_table():
    s = _build('''
        ani_parameter = "caller"
        ani_expr = "session.callerid"
        care_number = "tel:+381111234567"
        care_transfer = "bridge"
        default_language = "sr"
        timezone = "Europe/Belgrade"
        [[languages]]
        code = "en"
        xml_lang = "en-GB"
        audio = { welcome = "http://media.example/en/welcome.wav" }
        [[languages]]
        code = "sr"
        dtmf = "9"
        prompts = { %s }
    ''' % ", ".join('%s = "t"' % k for k in sorted(KEYS)))
    assert s.default.code == "sr" and s.menu_keys() == {"en": "1", "sr": "9"}
    assert s.languages[0].text("welcome") == ENGLISH["welcome"]
    assert s.languages[1].text("welcome") == "t"


@pytest.mark.parametrize("text,where", [
    ('nope = 1', "ivr.nope"),
    ('ani_parameter = "hrn"', "ivr.ani_parameter"),
    ('ani_parameter = "1abc"', "ivr.ani_parameter"),
    ('ani_expr = "session.x; alert(1)"', "ivr.ani_expr"),
    ('care_number = "0800 123"', "ivr.care_number"),
    ('care_transfer = "warm"', "ivr.care_transfer"),
    ('timezone = "Mars/Olympus"', "ivr.timezone"),
    ('base_url = "https://x.example/ivr"', "ivr.base_url"),
    ('bad_request_status = 302', "ivr.bad_request_status"),
    ('max_noinput = 0', "ivr.max_noinput"),
    ('default_language = "de"', "ivr"),
    ('[[languages]]\ncode = "EN"', "ivr.languages[0].code"),
    ('[[languages]]\ncode = "en"\nprompts = { welcom = "x" }', "ivr.languages[0]"),
    ('[[languages]]\ncode = "en"\nprompts = { SUCCESS = "got {amout}" }', "ivr.languages[0]"),
    ('[[languages]]\ncode = "en"\nprompts = { SUCCESS = "got {amount!r}" }', "ivr.languages[0]"),
    ('[[languages]]\ncode = "en"\naudio = { welcome = "ftp://x" }', "ivr.languages[0]"),
    ('[[languages]]\ncode = "sr"\nprompts = { welcome = "Dobrodošli" }', "ivr.languages[0]"),
    ('[[languages]]\ncode = "en"\n[[languages]]\ncode = "en"', "ivr"),
    ('[[languages]]\ncode = "en"\ndtmf = "2"\n[[languages]]\ncode = "en-GB"', "ivr"),
    ('languages = []', "ivr"),
])
def test_invalid_settings_name_file_and_key(text, where):
    with pytest.raises(ConfigError) as e:
        _build(text)
    assert str(e.value).startswith("ivoms.toml: %s" % where), str(e.value)


def test_missing_keys_are_listed():
    with pytest.raises(ValueError, match="missing: .*SUCCESS"):
        LanguageSettings(code="sr", prompts={"welcome": "x"})


def test_hrn_lengths_given_or_the_fallback():
    from twisted.internet import task

    from tests.fakes import FakeActivationService

    def lengths(given):
        res = build_resource(FakeActivationService(), IvrSettings(max_attempts=5),
                             clock=task.Clock(), hrn_lengths=given)
        assert res.channel.settings.max_attempts == 5
        return res.channel.ctx.lengths
    assert lengths(()) == FALLBACK_LENGTHS
    assert lengths({16, 12}) == (12, 16)