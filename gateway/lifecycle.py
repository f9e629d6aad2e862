"""Running the service tree under the reactor: start, fail fast, stop on a signal, bounded.

L{NodeRunner} is what C{ivoms run} does once the configuration and the store
have been checked:

  - the tree starts; when a service cannot start (a port in use, a key file
    gone) the node logs one line naming the endpoint and stops: exit status 1;
  - SIGTERM and SIGINT stop the node in every state, start-up included: the
    services stop one at a time (L{gateway.service.NodeService}), in-flight
    units of work finish;
  - the stop is bounded by C{shutdown_timeout}: past it the node exits
    anyway (status 1), and a second signal stops it without waiting;
  - a watchdog thread ends the process even when the reactor itself is stuck
    (C{shutdown_timeout} plus L{WATCHDOG_GRACE} seconds after the stop began).
"""
from __future__ import annotations

import gc

import os
import signal
import sys
import threading

from twisted.internet import defer
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.listeners import describe_start_failure

#: Seconds the watchdog waits beyond the shutdown timeout before it ends the process.
WATCHDOG_GRACE = 5.0

EXIT_OK, EXIT_FAILED = 0, 1


def walk(svc):
    """C{svc} and every service below it, depth first."""
    yield svc
    try:
        children = list(svc)
    except TypeError:
        return
    for child in children:
        yield from walk(child)


class NodeRunner:
    """Start C{top} under C{reactor}, stop it on a signal or a start-up failure.

    @ivar error: the one-line reason the node could not start or stop, or None.
    """

    log = Logger()

    def __init__(self, top, reactor, config, *, shutdown_timeout: float = 30.0,
                 hard_exit=os._exit):
        """
        @param top: the service tree (L{gateway.service.make_service}).
        @param config: its configuration (to name a failing listener).
        @param shutdown_timeout: seconds the services may take to stop.
        @param hard_exit: called with the exit status by the watchdog.
        """
        self.top = top
        self.reactor = reactor
        self.config = config
        self.shutdown_timeout = shutdown_timeout
        self.hard_exit = hard_exit
        self.error: str | None = None
        self.stopping = False
        self._stopped: defer.Deferred | None = None
        self._watchdog: threading.Timer | None = None

    def run(self) -> int:
        """Run the reactor until the node stopped.

        @return: L{EXIT_OK} after a requested stop, L{EXIT_FAILED} when the
            node could not start or did not stop in time (L{error} says why).
        """
        self.reactor.callWhenRunning(self._start)
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop_services)
        # our handlers for the whole run: the reactor neither installs its own
        # nor puts the default (die at once) back while the services stop
        self.install_signal_handlers()
        self.reactor.run(installSignalHandlers=False)
        # stopped: the process only exits now; a late stop signal must not kill it
        # with -SIGTERM (Python puts the default handlers back while it finalises)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        self.cancel_watchdog()
        return EXIT_FAILED if self.error else EXIT_OK

    def cancel_watchdog(self) -> None:
        """Disarm the watchdog (the process is about to exit by itself)."""
        if self._watchdog is not None:
            self._watchdog.cancel()

    # -- start ---------------------------------------------------------------------------
    def _start(self) -> None:
        if self.stopping:
            return
        try:
            self.top.startService()
        except Exception as e:
            self.fail(e)
            return
        waits = [svc.when_listening() for svc in walk(self.top)
                 if callable(getattr(svc, "when_listening", None))]
        d = defer.gatherResults(waits, consumeErrors=True)
        d.addCallbacks(self._started, lambda f: self.fail(f.value.subFailure.value))

    def _started(self, _):
        if not self.stopping:
            settle_heap()
            self.log.info("node started")

    def fail(self, error: BaseException) -> None:
        """Log why the node cannot start (one line) and stop it."""
        if self.error is None:
            self.error = describe_start_failure(error, self.config)
            self.log.critical("{reason}", reason=self.error)
        self.begin_stop()

    # -- stop ----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """Handle SIGTERM and SIGINT from now on (replacing the reactor's own handlers)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._signal)

    def _signal(self, signum, frame) -> None:
        # runs between two bytecodes of the main thread: hand over to the reactor
        self.reactor.callFromThread(self.on_signal, signum)

    def on_signal(self, signum: int) -> None:
        """A stop signal arrived: stop; a second one: stop without waiting for the services."""
        name = signal.Signals(signum).name
        if not self.stopping:
            self.log.info("received {signal}, stopping", signal=name)
            self.begin_stop()
        else:
            self.log.warn("received {signal} again while stopping: not waiting for the services",
                          signal=name)
            self._give_up("stop interrupted by a second %s" % name)

    def begin_stop(self) -> None:
        """Stop the reactor (which stops the services), once; arm the watchdog."""
        if self.stopping:
            return
        self.stopping = True
        self._arm_watchdog()
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass

    def stop_services(self) -> defer.Deferred:
        """The reactor's "before shutdown" trigger: stop the tree, at most C{shutdown_timeout}.

        @return: a Deferred firing when the services stopped, the timeout
            passed or a second signal came (then L{error} says which).
        """
        self.stopping = True
        self._arm_watchdog()
        self._stopped = defer.Deferred()
        done = defer.maybeDeferred(self.top.stopService) if self.top.running \
            else defer.succeed(None)
        timer = self.reactor.callLater(
            self.shutdown_timeout, self._give_up,
            "the services did not stop within %g s" % self.shutdown_timeout)

        def finished(result):
            if timer.active():
                timer.cancel()
            if isinstance(result, Failure):
                self.log.failure("stopping the node failed", result)
            if self._stopped is not None and not self._stopped.called:
                self._stopped.callback(None)
        done.addBoth(finished)
        return self._stopped

    def _give_up(self, reason: str) -> None:
        self.log.error("{reason}; exiting without waiting", reason=reason)
        if self.error is None:
            self.error = reason
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)
        else:
            self.begin_stop()

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None:
            return
        delay = self.shutdown_timeout + WATCHDOG_GRACE

        def expire():
            sys.stderr.write("ivoms: error: the node did not stop within %g s; exiting\n" % delay)
            sys.stderr.flush()
            self.hard_exit(EXIT_FAILED)
        self._watchdog = threading.Timer(delay, expire)
        self._watchdog.daemon = True
        self._watchdog.start()


def settle_heap() -> None:
    """Move every object alive now (modules, configuration, caches built at start)
    out of the garbage collector's reach (C{gc.freeze}).

    A full collection walks every tracked object; in a started node most of
    them live as long as the process, and walking them stalled the reactor for
    tens of milliseconds, a few times a minute under load: the p99 of SMS
    replies went from about 22 to 45 ms (docs/performance.md, "The writer
    process").  Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()
