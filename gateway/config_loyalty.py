"""Typed settings of the loyalty plans file (C{loyalty.toml}, DESIGN §7) and their validation."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from core.settings import ConfigError, build, non_negative, one_of, positive, setting

#: Most tiers a plan may have (their rewarded marks share one counter column).
MAX_TIERS = 8


def _currency_or_empty(v):
    return None if v == "" or re.fullmatch(r"[A-Z]{3}", v) else \
        "must be an ISO 4217 code such as 'EUR' (or \"\")"


def _date_or_empty(v):
    if v == "":
        return None
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        return "must be a date YYYY-MM-DD (or \"\")"
    return None


def _plan_id(v):
    return None if re.fullmatch(r"[A-Za-z0-9_-]{1,32}", v) else \
        "must be 1-32 letters, digits, '-' or '_'"


def _prefixes(v):
    from core.loyalty.plans import PrefixRange
    for item in v:
        try:
            PrefixRange.parse(item)
        except ValueError as e:
            return str(e)
    return None


def _weights(v):
    for code, w in v.items():
        if w < 0:
            return "%s: a weight must not be negative" % code
    return None


@dataclass(frozen=True)
class RewardSettings:
    """C{reward = { bonus = 500, currency = "EUR", validity_days = 7 }}."""

    bonus: int = setting(0, check=non_negative)
    currency: str = setting("", check=_currency_or_empty)
    validity_days: int = setting(0, check=non_negative)

    def __post_init__(self):
        if not self.bonus and not self.validity_days:
            raise ValueError("a reward needs a bonus and/or validity_days above 0")


@dataclass(frozen=True)
class TierSettings:
    """C{[[plan.tier]]}: targets (recharges and/or amount) and the reward."""

    reward: RewardSettings
    recharges: int = setting(0, check=non_negative)
    amount: int = setting(0, check=non_negative)
    name: str = ""

    def __post_init__(self):
        if not self.recharges and not self.amount:
            raise ValueError("a tier needs a target: 'recharges' and/or 'amount' above 0")


@dataclass(frozen=True)
class PlanSettings:
    """C{[[plan]]}: one loyalty plan."""

    id: str = setting(check=_plan_id)
    name: str = setting(check=lambda v: None if v.strip() else "must not be empty")
    enabled: bool = True
    active_from: str = setting("", check=_date_or_empty)
    active_until: str = setting("", check=_date_or_empty)
    voucher_types: dict[str, int] = setting(factory=dict, check=_weights)
    counter: str = setting("recharges", check=one_of("recharges", "amount", "both"))
    currency: str = setting("", check=_currency_or_empty)
    period: str = setting("month", check=one_of("day", "week", "month", "rolling"))
    rolling_days: int = setting(30, check=positive)
    eligible_prefixes: list[str] = setting(factory=list, check=_prefixes)
    tier: list[TierSettings] = setting(factory=list)

    def __post_init__(self):
        if not self.tier:
            raise ValueError("plan %r has no [[plan.tier]]" % self.id)
        if len(self.tier) > MAX_TIERS:
            raise ValueError("plan %r has %d tiers; at most %d" % (self.id, len(self.tier), MAX_TIERS))
        for i, t in enumerate(self.tier):
            if self.counter == "recharges" and t.amount:
                raise ValueError("tier[%d]: counter = \"recharges\" takes only 'recharges' targets" % i)
            if self.counter == "amount" and t.recharges:
                raise ValueError("tier[%d]: counter = \"amount\" takes only 'amount' targets" % i)
            if self.counter == "both" and not (t.recharges and t.amount):
                raise ValueError("tier[%d]: counter = \"both\" needs 'recharges' and 'amount'" % i)
        keys = [(t.recharges, t.amount) for t in self.tier]
        if len(set(keys)) != len(keys):
            raise ValueError("plan %r has two tiers with the same targets" % self.id)
        if self.active_from and self.active_until and self.active_until < self.active_from:
            raise ValueError("active_until (%s) is before active_from (%s)"
                             % (self.active_until, self.active_from))


@dataclass(frozen=True)
class LoyaltyFile:
    """The tables of C{loyalty.toml}."""

    plan: list[PlanSettings] = setting(factory=list)


def load_plans(path: str, data: dict, voucher_types: dict) -> tuple:
    """Build and check the plans of C{path} (its parsed TOML C{data}).

    @param voucher_types: code -> L{gateway.config.VoucherType}, for cross checks.
    @return: a tuple of L{core.loyalty.plans.Plan}, in file order.
    @raise ConfigError: naming C{path} and the key.
    """
    import os
    f = build(LoyaltyFile, data, file=path, key="", base_dir=os.path.dirname(path))
    seen = set()
    plans = []
    for i, p in enumerate(f.plan):
        if p.id in seen:
            raise ConfigError("%s: plan[%d].id: duplicate plan id %r" % (path, i, p.id))
        seen.add(p.id)
        for code in p.voucher_types:
            if code != "*" and code not in voucher_types:
                raise ConfigError("%s: plan[%d].voucher_types.%s: unknown voucher type (configured: %s)"
                                  % (path, i, code, ", ".join(sorted(voucher_types)) or "none"))
        plans.append(to_plan(p))
    return tuple(plans)


def to_plan(p: PlanSettings):
    """The core's typed L{core.loyalty.plans.Plan} for validated settings."""
    from core.loyalty.plans import Period, Plan, PrefixRange, Reward, Tier, day_start_ms
    tiers = sorted((Tier(t.recharges, t.amount,
                         Reward(t.reward.bonus, t.reward.currency, t.reward.validity_days), t.name)
                    for t in p.tier), key=lambda t: (t.recharges, t.amount))
    start = day_start_ms(dt.date.fromisoformat(p.active_from)) if p.active_from else None
    until = (day_start_ms(dt.date.fromisoformat(p.active_until) + dt.timedelta(days=1))
             if p.active_until else None)
    return Plan(id=p.id, name=p.name, tiers=tuple(tiers),
                period=Period(p.period, p.rolling_days), counter=p.counter,
                voucher_types=dict(p.voucher_types), currency=p.currency,
                eligible=tuple(PrefixRange.parse(x) for x in p.eligible_prefixes),
                active_from=start, active_until=until, enabled=p.enabled)
