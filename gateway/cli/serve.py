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
    run.add_argument("--log-format", choices=["text", "json"], default=None,
                     help="log as text lines or one JSON object per line "
                          "(default: [logging] format)")
    run.set_defaults(func=cmd_run)

    cc = sub.add_parser("check-config",
                        help="validate the configuration files and list the listeners")
    cc.set_defaults(func=cmd_check_config)


def cmd_run(args):
    import signal

    def stop_before_start(signum, frame):
        raise SystemExit(0)
    # until the reactor runs, SIGTERM ends the command at once (nothing is started yet)
    signal.signal(signal.SIGTERM, stop_before_start)

    from twisted.internet import reactor

    from gateway.lifecycle import NodeRunner
    from gateway.logs import start_logging
    from gateway.service import make_service
    # refuse an uninitialised or old database first, then a missing or unsafe key file
    preflight = open_node(args, reactor=reactor)
    cfg = preflight.config
    preflight.store.dispose()
    top = make_service(cfg, reactor)
    start_logging(cfg.logging, args.log_format, reactor=reactor)
    runner = NodeRunner(top, reactor, cfg, shutdown_timeout=cfg.node.shutdown_timeout)
    status = runner.run()
    if runner.error:
        raise CliError(runner.error)
    return status


def cmd_check_config(args):
    from gateway.listeners import configured_listeners, tls_note
    cfg = config_of(args)
    print("%s: valid" % cfg.path)
    for key, ep, table in configured_listeners(cfg):
        print("  listener %-22s %s (%s)" % (key, ep, tls_note(ep, table)))
    return 0


def cmd_billing_sim(args):
    cfg = config_of(args) if os.path.exists(args.config) else None
    return billing_sim_command(args, cfg)
