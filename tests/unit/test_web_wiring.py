"""make_resource(node) of the SOAP and Web channels: settings from the node's config, or defaults."""
from __future__ import annotations

from types import SimpleNamespace

from twisted.internet import task

from protocols.soap import resource as soap_resource
from protocols.soap.config import SoapSettings
from protocols.soap.server import SoapResource
from protocols.web import resource as web_resource
from protocols.web.config import WebSettings


def _node(**main):
    activation = SimpleNamespace(rules=SimpleNamespace(normalise=lambda m: "381" + m[1:]),
                                 activate=None)
    return SimpleNamespace(config=SimpleNamespace(main=SimpleNamespace(**main)),
                           activation=activation, runner=object(), reactor=task.Clock())


def test_defaults_when_the_config_has_no_tables():
    assert isinstance(soap_resource.make_resource(_node()), SoapResource)
    pages = web_resource.make_resource(_node())
    assert pages.normalise("0641234567") == "381641234567"
    assert pages.settings == WebSettings()


def test_disabled_channels_are_not_mounted():
    assert soap_resource.make_resource(_node(soap=SoapSettings(enabled=False))) is None
    assert web_resource.make_resource(_node(web=WebSettings(enabled=False))) is None


def test_configured_settings_are_used():
    res = soap_resource.make_resource(_node(soap=SoapSettings(max_request_bytes=1000,
                                                              public_url="https://x/soap")))
    assert res.max_request_bytes == 1000 and res.public_url == "https://x/soap"
