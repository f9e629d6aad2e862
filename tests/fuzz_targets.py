"""The decoders under fuzzing: one entry per decoder, shared by the property tests and bench/fuzz.py.

Each target is a function of raw bytes that feeds them to one decoder and
returns normally or raises one of the decoder's documented error types
(C{Target.errors}).  Anything else escaping (IndexError, KeyError,
RecursionError, UnicodeError, struct.error, ...) is a bug in the decoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable


def _fuzz_settings():
    from hypothesis import HealthCheck, settings
    return settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


#: Hypothesis settings of the property tests: a modest example count, so the set stays fast.
#: (Call the test's inner function from a plain test: pytest-twisted runs tests in a greenlet.)
FUZZ = _fuzz_settings()


@dataclass(frozen=True)
class Target:
    """One decoder: its name, the function of bytes and the errors it may raise."""

    name: str
    run: Callable[[bytes], object]
    errors: tuple


def _smpp(data: bytes):
    from protocols.smpp.codec import decode_pdu, split_frames
    frames, _rest = split_frames(data)
    for frame in frames:
        decode_pdu(frame)
    return decode_pdu(data)


def _smpp_tlvs(data: bytes):
    from protocols.smpp.tlv import decode_tlvs
    return decode_tlvs(data, command_id=0x00000004, sequence_number=1)


def _ber(data: bytes):
    from protocols.ussd.ber import read_tlv
    return read_tlv(data)


def _tcap(data: bytes):
    from protocols.ussd.tcap import decode_tcap
    return decode_tcap(data)


def _map(data: bytes):
    from protocols.ussd.map import decode_map_argument, decode_ussd_res
    for opcode in (59, 60, 61):
        try:
            decode_map_argument(opcode, data)
        except _ussd_error():
            pass
    return decode_ussd_res(data)


def _ussd_error():
    from protocols.ussd.errors import UssdDecodeError
    return UssdDecodeError


def fake_request(headers: dict[bytes, bytes]):
    """The little of a twisted.web request the USSD envelope parser reads."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return SimpleNamespace(getHeader=lambda name: lowered.get(name.lower()))


def _envelope_json(data: bytes):
    from protocols.ussd import envelope
    return envelope.parse(fake_request({b"content-type": b"application/json"}), data)


def _envelope_binary(data: bytes):
    from protocols.ussd import envelope
    head, _, body = data.partition(b"\n")
    fields = head.split(b"|")
    names = [b"x-ussd-dialogue-id", b"x-ussd-operation", b"x-ussd-msisdn",
             b"x-ussd-language", b"x-ussd-opcode", b"x-ussd-payload"]
    headers = {b"content-type": b"application/octet-stream", **dict(zip(names, fields))}
    return envelope.parse(fake_request(headers), body)


def _diameter(data: bytes):
    from billing.diameter.message.framing import decode_message
    from billing.diameter.message.parsing import parse_capabilities
    msg = decode_message(data)
    for getter in (lambda: msg.session_id, lambda: msg.origin_host, lambda: msg.origin_realm,
                   lambda: msg.result_code, lambda: msg.error_message,
                   lambda: msg.experimental_result, lambda: parse_capabilities(msg)):
        try:
            getter()
        except _diameter_error():
            pass
    return msg


def _diameter_error():
    from billing.diameter.message.errors import DiameterDecodeError
    return DiameterDecodeError


def _cai(data: bytes):
    from billing.cai.codec import CaiSyntaxError, parse_command, parse_response, parse_time
    line = data.decode("latin-1")
    for fn in (parse_command, parse_time):
        try:
            fn(line)
        except CaiSyntaxError:
            pass
    return parse_response(line)


def _soap(data: bytes):
    from protocols.soap.codec import parse_envelope
    return parse_envelope(data)


class _FormRequest:
    """A request carrying form fields as twisted.web parses them (name -> [bytes])."""

    def __init__(self, body: bytes):
        from urllib.parse import parse_qs
        self.args = {k.encode("latin-1"): [v.encode("latin-1") for v in vs]
                     for k, vs in parse_qs(body.decode("latin-1"), keep_blank_values=True,
                                          encoding="latin-1").items()}


def _form(data: bytes):
    from admin import web
    request = _FormRequest(data)
    out = []
    for name in ("serial", "batch", "count", "before"):
        out.append(web.opt_int(request, name, minimum=1))
    out.append(web.opt_day(request, "day"))
    out.append(web.day_range(request))
    out.append(web.serial_range(web.arg(request, "range")))
    return out


def _web_form(data: bytes):
    from protocols.web.csrf import CsrfGuard
    from protocols.web.resource import RechargePages
    cookie, _, body = data.partition(b"\n")
    request = _FormRequest(body)
    request.getCookie = lambda name: cookie
    guard = CsrfGuard("fuzz")
    fields = [RechargePages._arg(None, request, name, 64)
              for name in (b"msisdn", b"hrn", b"lang", b"csrf")]
    return guard.check(request), guard.cookie_token(request), fields


_LOGIN_FORMS = None


def _login_token(data: bytes):
    from twisted.internet.task import Clock
    from admin.auth import LoginForms
    global _LOGIN_FORMS
    if _LOGIN_FORMS is None:
        clock = Clock()
        clock.advance(1_800_000_000)
        _LOGIN_FORMS = LoginForms(clock, max_age=1800, secret=b"fuzz")
    cookie, _, token = data.decode("ascii", "replace").partition("\n")
    nonce = _LOGIN_FORMS.nonce(cookie)
    return _LOGIN_FORMS.check(cookie, token), _LOGIN_FORMS.check(nonce, token)


def _config_error():
    from core.settings import ConfigError
    return ConfigError


_CONFIG_DIR = None


def _config(data: bytes):
    import os
    import tempfile
    from gateway.config import IvomsFile, read_toml
    from core.settings import build
    global _CONFIG_DIR
    if _CONFIG_DIR is None:
        _CONFIG_DIR = tempfile.mkdtemp(prefix="ivoms-fuzz-")
    path = os.path.join(_CONFIG_DIR, "ivoms.toml")
    with open(path, "wb") as f:
        f.write(data)
    raw = read_toml(path)
    return build(IvomsFile, raw, file=path, key="", base_dir=_CONFIG_DIR)


def targets() -> dict[str, Target]:
    """Every decoder under fuzzing, by name."""
    from billing.cai.codec import CaiSyntaxError
    from billing.diameter.message.errors import DiameterDecodeError
    from protocols.smpp.errors import DecodeError
    from protocols.soap.errors import SoapFault
    from protocols.ussd.ber import BerError
    from protocols.ussd.envelope import HttpError
    from protocols.ussd.errors import UssdDecodeError
    from admin.web import FormError
    return {t.name: t for t in (
        Target("smpp", _smpp, (DecodeError,)),
        Target("smpp_tlv", _smpp_tlvs, (DecodeError,)),
        Target("ber", _ber, (BerError,)),
        Target("tcap", _tcap, (UssdDecodeError,)),
        Target("map", _map, (UssdDecodeError,)),
        Target("ussd_json", _envelope_json, (HttpError,)),
        Target("ussd_binary", _envelope_binary, (HttpError,)),
        Target("diameter", _diameter, (DiameterDecodeError,)),
        Target("cai", _cai, (CaiSyntaxError,)),
        Target("soap", _soap, (SoapFault,)),
        Target("form", _form, (FormError,)),
        Target("web_form", _web_form, ()),
        Target("login_token", _login_token, ()),
        Target("config", _config, (_config_error(),)),
    )}
