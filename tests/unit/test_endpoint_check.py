"""Listener endpoint strings checked before anything listens (issue 18)."""
from __future__ import annotations

import pytest

from core.endpoint_check import listen_port, server_endpoint_problem
from core.settings import ConfigError
from gateway.config import HttpSettings
from core.settings import build


@pytest.mark.parametrize("text,port", [
    ("tcp:8080:interface=127.0.0.1", 8080), ("tcp:0:interface=127.0.0.1", 0), ("tcp:2775", 2775),
    ("tcp:port=8081:interface=127.0.0.1", 8081), ("tcp:65535:backlog=100", 65535),
    ("tcp6:8080:interface=\\:\\:1", 8080), ("tcp:8080:interface=0.0.0.0", 8080),
    ("ssl:8443:interface=127.0.0.1:privateKey=/dev/null:certKey=/dev/null", 8443),
    ("unix:/run/ivoms/http.sock:mode=660", None),
])
def test_valid_endpoints(text, port):
    assert server_endpoint_problem(text) is None
    assert listen_port(text) == port


@pytest.mark.parametrize("text,reason", [
    ("tcp:80x:interface=127.0.0.1", "port '80x' is not a number from 0 to 65535"),
    ("tcp:99999", "port '99999' is not a number from 0 to 65535"),
    ("tcp:-1", "port '-1' is not a number from 0 to 65535"),
    ("tcp:interface=127.0.0.1", "no port"),
    ("tcp:8080:interface=localhost", "interface 'localhost' is not an IP address"),
    ("tcp:8080:interface=127.0.0.1:80", "value '80' after a keyword option"),
    ("tcp:8080:bogus=1", "unknown tcp option 'bogus'"),
    ("tcp:8080:8081", "too many values"),
    ("tcp:8080:backlog=0", "backlog '0' is not a positive number"),
    ("tcp6:8080:interface=127.0.0.1", "must be an IPv6 address"),
    ("http:8080", "unknown endpoint type 'http'"),
    ("8080", "must be an endpoint string"),
    ("unix:", "no socket path"),
    ("unix:/x.sock:mode=9", "mode '9' is not an octal number"),
])
def test_invalid_endpoints_say_why(text, reason):
    assert reason in server_endpoint_problem(text)


def test_the_config_check_names_file_key_and_reason():
    with pytest.raises(ConfigError) as e:
        build(HttpSettings, {"listen": "tcp:80x:interface=127.0.0.1"}, file="conf/ivoms.toml",
              key="http", base_dir=".")
    assert str(e.value) == ("conf/ivoms.toml: http.listen: port '80x' is not a number "
                            "from 0 to 65535")
