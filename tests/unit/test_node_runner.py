"""L{gateway.lifecycle.NodeRunner}: bounded stop, second signal, start-up failure (issue 18)."""
from __future__ import annotations

import signal

import pytest
from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError

from gateway.lifecycle import NodeRunner
from gateway.service import NodeService


class FakeReactor(task.Clock):
    def __init__(self):
        super().__init__()
        self.stops = 0

    def stop(self):
        self.stops += 1

    def callFromThread(self, f, *args):
        f(*args)


class Stuck(service.Service):
    name = "stuck"

    def stopService(self):
        service.Service.stopService(self)
        return defer.Deferred()          # never fires


class Failing(service.Service):
    name = "http"

    def startService(self):
        service.Service.startService(self)
        raise CannotListenError("127.0.0.1", 8080, OSError(98, "Address already in use"))


class _Cfg:
    path = "ivoms.toml"

    class http:
        enabled, listen = True, "tcp:8080:interface=127.0.0.1"

    class smpp:
        class server:
            enabled = False

    class admin:
        enabled = False

    class metrics:
        enabled, listen = False, ""


@pytest.fixture
def make():
    made = []
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def make(*children, timeout=30.0):
        top = NodeService()
        for c in children:
            c.setServiceParent(top)
        r = NodeRunner(top, FakeReactor(), _Cfg, shutdown_timeout=timeout,
                       hard_exit=lambda code: pytest.fail("watchdog fired"))
        made.append(r)
        return r
    yield make
    for r in made:
        r.cancel_watchdog()
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_a_stop_that_hangs_is_given_up_after_the_shutdown_timeout(make):
    r = make(Stuck(), timeout=30.0)
    r.top.startService()
    r.on_signal(signal.SIGTERM)
    assert r.stopping and r.reactor.stops == 1
    done = r.stop_services()            # the reactor's "before shutdown" trigger
    r.reactor.advance(29.9)
    assert not done.called
    r.reactor.advance(0.2)
    assert done.called and r.error == "the services did not stop within 30 s"


def test_a_second_signal_stops_without_waiting(make):
    r = make(Stuck())
    r.top.startService()
    r.on_signal(signal.SIGTERM)
    done = r.stop_services()
    r.on_signal(signal.SIGINT)
    assert done.called and r.error == "stop interrupted by a second SIGINT"
    assert r.reactor.stops == 1


def test_a_clean_stop_leaves_no_error_and_cancels_the_timer(make):
    r = make(service.Service())
    r.top.startService()
    r.on_signal(signal.SIGTERM)
    done = r.stop_services()
    assert done.called and r.error is None and r.reactor.getDelayedCalls() == []


def test_a_listener_that_cannot_bind_fails_the_start_with_its_endpoint(make):
    later = service.Service()
    r = make(Failing(), later)
    r._start()
    assert r.error == ("cannot listen on tcp:8080:interface=127.0.0.1 (http.listen) in "
                       "ivoms.toml: Address already in use")
    assert r.stopping and r.reactor.stops == 1 and not later.running
    assert r.stop_services().called


def test_a_signal_before_the_tree_started_skips_the_start(make):
    r = make(service.Service())
    r.on_signal(signal.SIGTERM)
    r._start()
    assert not r.top.running and r.error is None
