"""The [soap] settings: defaults, client accounts, errors naming file and key."""
from __future__ import annotations

import pytest

from core.settings import ConfigError, build
from protocols.soap.config import SoapSettings


def _build(data):
    return build(SoapSettings, data, file="ivoms.toml", key="soap", base_dir="/")


def test_defaults():
    s = _build({})
    assert s.enabled and s.clients == [] and s.max_request_bytes == 65536
    assert s.timestamp_skew_seconds == 300


def test_clients():
    s = _build({"clients": [{"name": "shop1", "password": "x"},
                            {"name": "h", "password_hash": "$argon2id$v=19$abc",
                             "networks": ["10.0.0.0/8"], "query_all": True}]})
    assert [c.name for c in s.clients] == ["shop1", "h"] and s.clients[1].query_all


@pytest.mark.parametrize("data, message", [
    ({"clients": [{"name": "a"}]}, "soap.clients[0]: client 'a': set exactly one"),
    ({"clients": [{"name": "a", "password": "x", "password_hash": "$argon2id$x"}]},
     "set exactly one"),
    ({"clients": [{"name": "a", "password_hash": "md5:abc"}]}, "Argon2"),
    ({"clients": [{"name": "a b", "password": "x"}]}, "soap.clients[0].name"),
    ({"clients": [{"name": "a", "password": "x", "networks": ["nope"]}]}, "networks"),
    ({"clients": [{"name": "a", "password": "x"}, {"name": "a", "password": "y"}]}, "duplicate"),
    ({"public_url": "ftp://x"}, "soap.public_url"),
    ({"bogus": 1}, "unknown key"),
])
def test_bad_settings_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _build(data)
