"""The node's service tree stops one service at a time, in reverse, skipping unstarted ones."""
from __future__ import annotations

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError

from gateway.listeners import describe_start_failure
from gateway.service import NodeService


class Step(service.Service):
    def __init__(self, name, log, wait=None):
        self.name, self.log, self.wait = name, log, wait

    def stopService(self):
        service.Service.stopService(self)
        self.log.append("stop " + self.name)
        return self.wait


def test_children_stop_in_reverse_one_after_the_other():
    log = []
    gate = defer.Deferred()
    top = NodeService()
    store = Step("store", log)
    store.setServiceParent(top)
    Step("jobs", log, wait=gate).setServiceParent(top)
    Step("http", log).setServiceParent(top)
    top.startService()
    done = top.stopService()
    assert log == ["stop http", "stop jobs"]      # the store waits for the jobs
    assert store.running
    gate.callback(None)
    assert log == ["stop http", "stop jobs", "stop store"]
    assert done.called


def test_a_child_that_never_started_is_not_stopped_and_a_failing_stop_does_not_block():
    log = []
    top = NodeService()
    Step("store", log).setServiceParent(top)
    Step("bad", log, wait=defer.fail(RuntimeError("x"))).setServiceParent(top)
    late = Step("late", log)
    late.setServiceParent(top)
    service.Service.startService(top)
    for child in list(top)[:2]:
        child.startService()
    top.stopService()
    assert log == ["stop bad", "stop store"]


class _Cfg:
    path = "/etc/ivoms/ivoms.toml"

    class http:
        enabled, listen = True, "tcp:8080:interface=127.0.0.1"

    class smpp:
        class server:
            enabled, endpoint = True, "tcp:2775:interface=127.0.0.1"

    class admin:
        enabled, listen = False, "tcp:8081:interface=127.0.0.1"

    class metrics:
        enabled, listen = True, "tcp:9464:interface=127.0.0.1"


def test_a_bind_failure_names_endpoint_key_and_file():
    e = CannotListenError("127.0.0.1", 2775, OSError(98, "Address already in use"))
    assert describe_start_failure(e, _Cfg) == (
        "cannot listen on tcp:2775:interface=127.0.0.1 (smpp.server.endpoint) in "
        "/etc/ivoms/ivoms.toml: Address already in use")
    metrics = CannotListenError("127.0.0.1", 9464, OSError(98, "Address already in use"))
    assert describe_start_failure(metrics, _Cfg).startswith(
        "cannot listen on tcp:9464:interface=127.0.0.1 (metrics.listen) in ")
    other = CannotListenError("127.0.0.1", 9999, OSError(13, "Permission denied"))
    assert describe_start_failure(other, _Cfg) == \
        "cannot listen on 127.0.0.1 port 9999: Permission denied"
    assert describe_start_failure(RuntimeError("key file missing\nmore"), _Cfg) == \
        "cannot start: key file missing"
