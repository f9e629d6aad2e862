"""C{ivoms loyalty show MSISDN}: a subscriber's loyalty counters, progress and rewards."""
from __future__ import annotations

from core.money import format_money
from core.timeutil import fmt_day, fmt_ms, now_ms
from gateway.cli.runtime import CliError, open_node


def register(sub) -> None:
    """Add the C{loyalty} sub-command to the argparse C{sub} parsers."""
    ly = sub.add_parser("loyalty", help="loyalty plans").add_subparsers(metavar="ACTION")
    s = ly.add_parser("show", help="a subscriber's counters, progress to the next tier, rewards")
    s.add_argument("msisdn", help="the subscriber number")
    s.add_argument("--limit", type=int, default=20, help="rewards listed (newest first)")
    s.set_defaults(func=cmd_loyalty_show)


def _reward_text(reward, plan_currency: str) -> str:
    parts = []
    if reward.bonus:
        parts.append(format_money(reward.bonus, reward.currency or plan_currency
                                  or "(voucher currency)"))
    if reward.validity_days:
        parts.append("%d days validity" % reward.validity_days)
    return " + ".join(parts)


def _to_go(plan, t) -> str:
    parts = []
    if t.to_go_recharges:
        parts.append("%d recharge%s" % (t.to_go_recharges, "" if t.to_go_recharges == 1 else "s"))
    if t.to_go_amount:
        parts.append(format_money(t.to_go_amount, plan.currency))
    return " and ".join(parts) + " to go"


def render(msisdn: str, statuses, rewards) -> list[str]:
    """The lines C{ivoms loyalty show} prints (pure, for tests and other front ends)."""
    lines = ["subscriber %s" % msisdn]
    if not statuses:
        lines.append("(no loyalty plans configured)")
    for s in statuses:
        p = s.plan
        flag = ("disabled" if not p.enabled else "active" if s.active else "inactive")
        if not s.eligible:
            flag += ", not eligible"
        lines.append("plan %s - %s [%s]" % (p.id, p.name, flag))
        if p.period.rolling:
            span = "last %d days (since %s)" % (p.period.days, fmt_ms(s.period_start))
        else:
            span = "%s to %s" % (fmt_day(s.period_start + 1), fmt_day(s.period_end))
        lines.append("  period:   %s, %s" % (p.period.describe(), span))
        lines.append("  counted:  %d recharge%s, %s" % (s.recharges, "" if s.recharges == 1 else "s",
                                                        format_money(s.amount, p.currency)))
        for t in s.tiers:
            name = t.tier.name or t.tier.id
            state = ("rewarded" if t.rewarded else "reached" if t.reached else _to_go(p, t))
            lines.append("  tier %-8s %s -> %s: %s" % (name, t.tier.describe(p.currency),
                                                       _reward_text(t.tier.reward, p.currency), state))
        nxt = s.next_tier
        lines.append("  next:     %s" % ("%s, %s" % (nxt.tier.name or nxt.tier.id, _to_go(p, nxt))
                                         if nxt is not None else "every tier reached"))
    lines.append("rewards:")
    for r in rewards:
        what = []
        if r.amount:
            what.append(format_money(r.amount, r.currency))
        if r.validity_days:
            what.append("%d days" % r.validity_days)
        lines.append("  %s  %-12s %-10s %-10s %-18s %-8s %s" % (
            fmt_ms(r.started_at), r.plan_id, r.period, r.tier, " + ".join(what), r.state, r.txn_id))
    if not rewards:
        lines.append("  (none)")
    return lines


def cmd_loyalty_show(args):
    from core.loyalty.status import subscriber_status
    from core.normalise import MsisdnRules
    node = open_node(args, keys=False)
    m = MsisdnRules.from_settings(node.config.msisdn).normalise(args.msisdn)
    if m is None:
        raise CliError("%r is not a valid MSISDN" % args.msisdn)
    statuses, rewards = node.store.run_sync(subscriber_status, node.config.loyalty_plans, m,
                                            now_ms(), args.limit, read_only=True)
    for line in render(m, statuses, rewards):
        print(line)
    return 0
