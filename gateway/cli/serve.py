"""C{ivoms run} (start the node) and C{ivoms billing-sim} (run the billing simulator)."""
from __future__ import annotations

import os

from billing.sim.cli import add_arguments, billing_sim_command
from gateway.cli.runtime import CliError, config_of, open_node


def register(sub) -> None:
    """Add this module's sub-commands to the argparse C{sub} parsers."""
    bs = sub.add_parser("billing-sim", help="run the billing simulator (Diameter server, CAI, UCIP)")
    add_arguments(bs)
    bs.set_defaults(func=cmd_billing_sim)

    run = sub.add_parser("run", help="start the node (all configured listeners and jobs)")
    run.add_argument("--log-format", choices=["text", "json"], default=None)
    run.set_defaults(func=cmd_run)


def cmd_run(args):
    from twisted.internet import reactor

    from gateway.logs import start_logging
    from gateway.service import make_service
    # refuse an uninitialised or old database first, then a missing or unsafe key file
    preflight = open_node(args, reactor=reactor)
    cfg = preflight.config
    preflight.store.dispose()
    top = make_service(cfg, reactor)
    start_logging(cfg.logging, args.log_format)
    failed = []

    def start():
        try:
            top.startService()
        except Exception as e:
            failed.append(e)
            reactor.stop()
    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    if failed:
        raise CliError("cannot start: %s" % failed[0])
    return 0


def cmd_billing_sim(args):
    cfg = config_of(args) if os.path.exists(args.config) else None
    return billing_sim_command(args, cfg)
