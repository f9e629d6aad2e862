"""C{ivoms} commands around activation: activate, transactions, reconcile, fraud."""
from __future__ import annotations

import sys

from core.money import format_money
from gateway.cli.runtime import CliError, current_ms, open_node, run_with_reactor, whoami


def register(sub) -> None:
    """Add this module's sub-commands to the argparse C{sub} parsers."""
    a = sub.add_parser("activate", help="activate a voucher for a subscriber")
    a.add_argument("--msisdn", required=True,
                   help="subscriber number as dialled or E.164 (normalised per [msisdn])")
    a.add_argument("--hrn", required=True, help="the HRN, or - to read it from standard input")
    a.add_argument("--channel", default="cli",
                   help="channel recorded on the transaction (default: %(default)s)")
    a.add_argument("--beneficiary",
                   help="credit this MSISDN instead of --msisdn (if allowed by "
                        "[activation] allow_beneficiary)")
    a.add_argument("--operator", default=None, help="customer-care agent acting for the subscriber")
    a.set_defaults(func=cmd_activate)

    t = sub.add_parser("transactions", help="query transactions")
    grp = t.add_mutually_exclusive_group(required=True)
    grp.add_argument("--msisdn", help="transactions of this subscriber")
    grp.add_argument("--serial", type=int, help="transactions of this voucher serial")
    t.add_argument("--limit", type=int, default=50,
                   help="rows listed, newest first (default: %(default)s)")
    t.set_defaults(func=cmd_transactions)

    r = sub.add_parser("reconcile", help="conclude pending activations with billing now")
    r.add_argument("--older-than", type=float, default=None, help="seconds (default: configured)")
    r.set_defaults(func=cmd_reconcile)

    f = sub.add_parser("fraud", help="failure counters and bars").add_subparsers(metavar="ACTION")
    fl = f.add_parser("list", help="counters per MSISDN and per source")
    fl.add_argument("--prefix", default="",
                    help="only counters whose MSISDN or source starts with this")
    fl.set_defaults(func=cmd_fraud_list)
    fu = f.add_parser("unbar", help="lift the bar of an MSISDN")
    fu.add_argument("msisdn", help="the barred subscriber number")
    fu.set_defaults(func=cmd_fraud_unbar)


def cmd_activate(args):
    from core.requests import ActivationRequest
    from core.timeutil import fmt_ms
    hrn = sys.stdin.readline().strip() if args.hrn == "-" else args.hrn
    req = ActivationRequest(msisdn=args.msisdn, hrn=hrn, channel=args.channel,
                            operator_user=args.operator, beneficiary=args.beneficiary,
                            source="cli")

    def activate(node):
        # wait for loyalty rewards' credits too, before the reactor stops
        return node.activation.activate(req).addCallback(
            lambda r: node.loyalty.drain().addCallback(lambda _: r))
    res = run_with_reactor(args, activate)
    print("result:  %d %s - %s" % (res.code, res.name, res.text))
    if res.txn_id:
        print("transaction: %s" % res.txn_id)
    if res.amount is not None and res.ok:
        print("credited: %s to %s, %d days validity" % (
            format_money(res.amount, res.currency), res.account, res.validity_days))
    if res.unbar_at:
        print("barred until: %s" % fmt_ms(res.unbar_at))
    for g in res.rewards:
        print("loyalty: %s" % g.text)
    return 0 if res.ok else 3


def cmd_transactions(args):
    from core.queries import transactions
    from core.timeutil import fmt_ms
    from core.results import ResultCode
    node = open_node(args, keys=False)
    if args.msisdn:
        from core.normalise import MsisdnRules
        m = MsisdnRules.from_settings(node.config.msisdn).normalise(args.msisdn) or args.msisdn
        crit = {"msisdn": m}
    else:
        crit = {"serial": args.serial}
    rows = node.store.run_sync(lambda tx: transactions(tx, limit=args.limit, **crit),
                               read_only=True)
    print("%-20s %-32s %-13s %-13s %-13s %-11s %-8s %s" % (
        "time", "transaction", "channel", "msisdn", "account", "serial", "state", "result"))
    for r in rows:
        amount = "" if r["amount"] is None else " " + format_money(r["amount"], r["currency"])
        print("%-20s %-32s %-13s %-13s %-13s %-11s %-8s %d %s%s" % (
            fmt_ms(r["started_at"]), r["id"],
            r["channel"] if r["kind"] == "activation" else r["kind"], r["msisdn"] or "-",
            r["account"] or "-", r["serial"] or "-", r["state"], r["result_code"],
            ResultCode(r["result_code"]).name, amount))
    if not rows:
        print("(no transactions)")


def cmd_reconcile(args):
    rep = run_with_reactor(args, lambda node: node.reconciler.run(args.older_than))
    print("examined %d, committed %d, released %d, left pending %d"
          % (rep.examined, rep.committed, rep.released, rep.left))


def cmd_fraud_list(args):
    from core.fraud import list_counters
    from core.timeutil import fmt_ms
    node = open_node(args, keys=False)
    rows = node.store.run_sync(list_counters, args.prefix, read_only=True)
    now = current_ms()
    for r in rows:
        barred = " barred until %s" % fmt_ms(r["barred_until"]) if r["barred_until"] > now else ""
        print("%-40s %5d failures since %s%s" % (r["subject"], r["failures"],
                                                fmt_ms(r["window_start"]), barred))
    if not rows:
        print("(no counters)")


def cmd_fraud_unbar(args):
    from core.audit import audit
    from core.fraud import reset_msisdn
    from core.normalise import MsisdnRules
    node = open_node(args, keys=False)
    m = MsisdnRules.from_settings(node.config.msisdn).normalise(args.msisdn)
    if m is None:
        raise CliError("%r is not a valid MSISDN" % args.msisdn)

    def unit(tx):
        reset_msisdn(tx, m)
        audit(tx, at=current_ms(), actor=whoami(), action="fraud.unbar", target=m, origin="cli")
    node.store.run_sync(unit)
    print("%s unbarred" % m)
