"""Helpers shared by the SMPP unit tests (the shared activation fake set up for SMS, transports, PDUs).

Kept in a test module so that the SMPP tests stay within tests/unit/test_smpp_*.py;
the few tests at the bottom check the fakes themselves.
"""

from __future__ import annotations

from twisted.internet import address, task
from twisted.internet.testing import StringTransport

from core.requests import ActivationResult
from core.results import ResultCode
from protocols.smpp.channel import SmsChannel
from protocols.smpp.codec import decode_pdu, encode_pdu, split_frames
from protocols.smpp.config import (
    AccountSettings, ChannelSettings, ServerSettings, SessionSettings)
from protocols.smpp.grammar import Grammar
from protocols.smpp.replies import Replies
from protocols.smpp.server import SmppServerFactory
from tests.fakes import FakeActivationService

HRN = "12345678901234"
MSISDN = "381641234567"
SHORT_CODE = "1555"


def sms_result(req) -> ActivationResult:
    """The success an SMS test expects: the request's MSISDN credited 10.00 EUR for 30 days."""
    return ActivationResult(ResultCode.SUCCESS, txn_id="abcdef0123456789", msisdn=req.msisdn,
                            amount=1000, currency="EUR", validity_days=30,
                            new_expiry=1767225600000)


def sms_activation(result_for=None, hold: bool = False) -> FakeActivationService:
    """The shared activation fake answering with C{result_for(req)} (default L{sms_result})."""
    return FakeActivationService(result_for=result_for or sms_result, hold=hold)


class Transport(StringTransport):
    """A StringTransport that records TCP_NODELAY and has a real peer address."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(peerAddress=address.IPv4Address("TCP", host, 40000))
        self.nodelay = None

    def setTcpNoDelay(self, enabled) -> None:
        self.nodelay = enabled


def session_settings(**kw) -> SessionSettings:
    return SessionSettings(**kw)


def make_channel(activation=None, clock=None, *, allow_beneficiary=False, **channel_kw):
    clock = clock or task.Clock()
    activation = activation or sms_activation()
    grammar = Grammar({"RECHARGE": "en", "TOPUP": "en", "DOPUNA": "sr"},
                      allow_beneficiary=allow_beneficiary, hrn_lengths=[14])
    return SmsChannel(activation, grammar, Replies(), clock=clock,
                      settings=ChannelSettings(**channel_kw))


def make_factory(*accounts, clock=None, channel=None, activation=None, **session_kw):
    clock = clock or task.Clock()
    accounts = accounts or (AccountSettings(system_id="smsc", password="secret"),)
    channel = channel or make_channel(activation, clock)
    server = ServerSettings(enabled=True, accounts=list(accounts))
    return SmppServerFactory(server, session_settings(**session_kw), channel, clock=clock)


def connect(factory, host: str = "127.0.0.1"):
    """A server-mode session on a fresh transport: (protocol, transport)."""
    proto = factory.buildProtocol(address.IPv4Address("TCP", host, 40000))
    transport = Transport(host)
    proto.makeConnection(transport)
    return proto, transport


def received(transport) -> list:
    """Decode and clear everything written to C{transport}."""
    frames, rest = split_frames(transport.value())
    assert rest == b""
    transport.clear()
    return [decode_pdu(f) for f in frames]


def feed(proto, *pdus) -> None:
    proto.dataReceived(b"".join(encode_pdu(p) for p in pdus))


def disconnect(proto, transport) -> None:
    """Finish a connection the protocol asked to close (or that the test drops)."""
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure
    proto.connectionLost(Failure(ConnectionDone()))


# -- the fakes' own checks ---------------------------------------------------

def test_fake_activation_holds_and_releases():
    fake = sms_activation(hold=True)
    got = []
    fake.activate(object.__new__(type("R", (), {"msisdn": "1"}))).addCallback(got.append)
    assert got == [] and len(fake.waiting) == 1
    fake.release()
    assert got[0].code == ResultCode.SUCCESS


def test_transport_records_nodelay():
    t = Transport()
    t.setTcpNoDelay(True)
    assert t.nodelay is True and t.getPeer().host == "127.0.0.1"
