"""The node's HTTP channels are built from explicit arguments (L{gateway.adapters})."""
from __future__ import annotations

from types import SimpleNamespace

from twisted.internet import task

from core.passwords import PasswordPool
from core.shared_state import MemoryCounters, MemoryDialogues, MemoryNonces

from gateway.adapters import channel_resources
from protocols.ivr.config import IvrSettings
from protocols.ivr.resource import IvrResource
from protocols.soap import resource as soap_resource
from protocols.soap.config import SoapSettings
from protocols.soap.server import SoapResource
from protocols.ussd.config import UssdSettings
from protocols.ussd.resource import UssdResource
from protocols.web import resource as web_resource
from protocols.web.config import WebSettings
from core.metrics import NULL_METRICS
from protocols.web.resource import RechargePages
from tests.fakes import (
    FakeActivationService, FakeNumberingPlan, FakeTransactionQueries)


def node(shared=None, **tables):
    """The parts of a node the channels' wiring reads; every table at its default.

    @param shared: (counters, nonces, dialogue store) the nodes share, or None.
    """
    config = SimpleNamespace(ussd=UssdSettings(), ivr=IvrSettings(), soap=SoapSettings(),
                             web=WebSettings(), voucher_types={"A": SimpleNamespace(hrn_length=14)})
    for name, table in tables.items():
        setattr(config, name, table)
    counters, nonces, dialogues = shared or (None, None, None)
    return SimpleNamespace(config=config, activation=FakeActivationService(),
                           queries=FakeTransactionQueries(), numbering=FakeNumberingPlan(),
                           clock=task.Clock(), reactor=task.Clock(), passwords=PasswordPool(task.Clock()),
                           metrics=NULL_METRICS, counters=counters, nonces=nonces,
                           dialogue_store=dialogues)


def test_every_channel_is_built_from_the_node_parts():
    n = node()
    built = dict(channel_resources(n))
    assert list(built) == [b"ussd", b"ivr", b"soap", b"web"]
    assert isinstance(built[b"ussd"], UssdResource) and isinstance(built[b"ivr"], IvrResource)
    assert isinstance(built[b"soap"], SoapResource) and isinstance(built[b"web"], RechargePages)
    assert built[b"ussd"].dialogues.activation is n.activation
    assert built[b"ussd"].dialogues.hrn_lengths == {14}
    assert built[b"ivr"].channel.ctx.lengths == (14,)
    assert built[b"ussd"].peers.passwords is n.passwords and built[b"ivr"].peers.metrics is n.metrics
    assert built[b"soap"].queries is n.queries
    assert built[b"web"].activation is n.activation
    assert built[b"web"].normalise("0641234567") == "381641234567"


def test_shared_state_goes_to_the_channels_that_use_it():
    counters, nonces, dialogues = MemoryCounters(), MemoryNonces(task.Clock()), MemoryDialogues()
    built = dict(channel_resources(node(shared=(counters, nonces, dialogues))))
    assert built[b"ussd"].bridge.shared.store is dialogues
    auth = built[b"soap"].auth
    assert auth.nonces is nonces and auth.throttle.shared is counters
    alone = dict(channel_resources(node()))
    assert alone[b"ussd"].bridge.shared is None
    assert alone[b"soap"].auth.throttle.shared is None
    assert isinstance(alone[b"soap"].auth.nonces, MemoryNonces)


def test_disabled_channels_are_not_built():
    n = node(soap=SoapSettings(enabled=False), web=WebSettings(enabled=False),
             ussd=UssdSettings(enabled=False))
    assert [segment for segment, _ in channel_resources(n)] == [b"ivr"]


def test_configured_settings_are_used():
    res = soap_resource.build_resource(
        FakeActivationService(), FakeTransactionQueries(),
        SoapSettings(max_request_bytes=1000, public_url="https://x/soap"), clock=task.Clock())
    assert res.max_request_bytes == 1000 and res.public_url == "https://x/soap"
    pages = web_resource.build_resource(FakeActivationService(), WebSettings(), clock=task.Clock())
    assert pages.settings == WebSettings() and pages.normalise("0641234567") is None
