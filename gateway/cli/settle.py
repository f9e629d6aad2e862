"""C{ivoms settle}: conclude a pending activation by hand from the billing system's records."""
from __future__ import annotations

from gateway.cli.runtime import CliError, current_ms, open_node, whoami


def register(sub) -> None:
    """Add C{settle} to the argparse C{sub} parsers."""
    s = sub.add_parser("settle", help="conclude a pending activation by hand (billing without lookup)")
    s.add_argument("txn_id", help="the transaction id (ivoms transactions)")
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--credited", dest="credited", action="store_true",
                     help="billing applied the credit: the voucher becomes used")
    how.add_argument("--not-credited", dest="credited", action="store_false",
                     help="billing never applied it (and never will): the voucher is released")
    s.add_argument("--note", default="", help="why (e.g. where the billing record was seen)")
    s.set_defaults(func=cmd_settle)


def cmd_settle(args):
    from core.settle import settle
    node = open_node(args, keys=False)
    result = node.store.run_sync(settle, args.txn_id, args.credited, current_ms(), whoami(), args.note)
    if result in ("used", "released"):
        print("%s: voucher %s" % (args.txn_id, result))
        return 0
    raise CliError("%s: %s" % (args.txn_id, result))
