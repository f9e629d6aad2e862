"""What every C{ivoms} command shares: errors, the configuration, the node, the clock, the reactor.

Command modules import this module only; L{gateway.cli.main} imports the
command modules and asks each to register its sub-commands, so imports run
one way (main -> commands -> runtime) and no command module imports another.
"""
from __future__ import annotations

import datetime as dt
import getpass
import os
import sys

from core.timeutil import now_ms
from gateway.config import load_config

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
BILLING_READY_SECONDS = 10.0   # how long a command waits for its billing links


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def config_of(args):
    """The validated configuration named by C{--config}.

    @param args: the parsed command line.
    @return: a L{gateway.config.Config}.
    @raise gateway.config.ConfigError: the file is missing or invalid.
    """
    return load_config(args.config)


def open_node(args, *, keys=True, reactor=None):
    """The node of the configuration named by C{--config}, its schema checked.

    @param args: the parsed command line.
    @param keys: also load the key file (refusing a missing or unsafe one).
    @param reactor: the reactor the node uses, or None for a node that only
        reaches the store.
    @return: a L{gateway.node.Node}.
    """
    # gateway.node pulls in every channel and connector: loaded only by the
    # commands that open a node, so that C{ivoms --help} stays quick
    from gateway.node import Node
    node = Node(config_of(args), reactor)
    node.check_schema()
    if keys:
        node.cipher
    return node


def current_ms() -> int:
    """The current time, in milliseconds since the epoch (UTC)."""
    return now_ms()


def run_with_reactor(args, fn):
    """Run C{fn(node)} under a running reactor and return its result.

    The node is opened with its keys, its unit runner and billing started
    before C{fn} and stopped after it; the reactor stops when C{fn}'s result
    (which may be a Deferred) is known.

    @param args: the parsed command line.
    @param fn: called with the node; may return a Deferred.
    @return: what C{fn} returned or its Deferred fired with.
    @raise Exception: what C{fn} raised or its Deferred failed with.
    """
    from twisted.internet import defer, reactor   # installs the default reactor: only here

    node = open_node(args, reactor=reactor)
    out = {}

    def go():
        node.runner.start()
        node.billing
        if node.billing_service is not None:
            node.billing_service.startService()
        d = when_billing_ready(node.billing)
        d.addCallback(lambda _: fn(node))
        d.addCallbacks(lambda r: out.__setitem__("value", r),
                       lambda f: out.__setitem__("failure", f))
        if node.billing_service is not None:
            d.addBoth(lambda _: node.billing_service.stopService())
        d.addBoth(lambda _: node.runner.stop())
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(go)
    reactor.run()
    if "failure" in out:
        out["failure"].raiseException()
    return out.get("value")


def when_billing_ready(billing, timeout: float = BILLING_READY_SECONDS):
    """A Deferred firing once C{billing} can send requests (or after C{timeout}).

    A connector that opens links first (L{IBillingReadiness}) is waited for,
    so that a short command does not see its requests refused only because
    its link is not up yet; when the link stays down, the command goes on and
    reports what billing answered.
    """
    from twisted.internet import defer

    from core.interfaces import IBillingReadiness
    if not IBillingReadiness.providedBy(billing):
        return defer.succeed(True)

    def said(ready):
        if not ready:
            print("warning: billing not reachable after %d s; going on" % timeout,
                  file=sys.stderr)
        return ready
    return billing.when_ready(timeout).addCallback(said)


def parse_date(text: str) -> dt.date:
    """C{YYYY-MM-DD} as a date.

    @raise CliError: C{text} is not such a date.
    """
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError("%r is not a date (YYYY-MM-DD)" % text)


def confirm(prompt: str) -> bool:
    """Ask a yes/no question on a terminal; False when standard input is not one."""
    if not sys.stdin.isatty():
        return False
    return input(prompt + " [y/N] ").strip().lower() in ("y", "yes")


def whoami() -> str:
    """The actor recorded for the command: C{cli:} and the OS user name (or uid)."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:%d" % os.getuid()
