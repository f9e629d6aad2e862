"""Loyalty plans in the configuration (loyalty.toml) and 'ivoms loyalty show' (issue 9)."""
from __future__ import annotations

import os

import pytest

from core.loyalty.plans import Period
from gateway.config import ConfigError, load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PLAN = '''
[[plan]]
id = "gold"
name = "Gold"
voucher_types = { EUR10 = 1 }
counter = "recharges"
period = "month"

[[plan.tier]]
recharges = 2
reward = { bonus = 100, currency = "EUR" }
'''


class Conf:
    def __init__(self, folder):
        self.dir = str(folder)
        self.main = os.path.join(self.dir, "ivoms.toml")
        self.types = os.path.join(self.dir, "voucher-types.toml")
        self.loyalty = os.path.join(self.dir, "loyalty.toml")

    def read(self, path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    def write(self, path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def edit(self, path, old, new):
        text = self.read(path)
        assert old in text, "test set-up: %r not in %s" % (old, path)
        self.write(path, text.replace(old, new, 1))

    def error(self) -> str:
        with pytest.raises(ConfigError) as ei:
            load_config(self.main)
        return str(ei.value)


@pytest.fixture
def conf(conf_dir):
    c = Conf(conf_dir)
    c.write(c.loyalty, PLAN)
    return c


def test_shipped_plans_load_and_are_disabled():
    cfg = load_config(os.path.join(REPO, "conf", "ivoms.toml"))
    plans = {p.id: p for p in cfg.loyalty_plans}
    assert set(plans) == {"monthly", "big-spender", "weekly"}
    assert not any(p.enabled for p in plans.values())
    big = plans["big-spender"]
    assert big.period == Period("rolling", 30) and big.counter == "amount"
    assert [str(r) for r in big.eligible] == ["38164", "38165"]
    assert [(t.id, t.reward.validity_days) for t in big.tiers] == [("a5000", 60)]
    assert [t.id for t in plans["monthly"].tiers] == ["r5", "r10"]
    assert [t.id for t in plans["weekly"].tiers] == ["r3a3000"]


def test_a_plan_loads_into_the_core_model(conf):
    (p,) = load_config(conf.main).loyalty_plans
    assert (p.id, p.name, p.enabled, p.voucher_types, p.period.kind) == \
        ("gold", "Gold", True, {"EUR10": 1}, "month")
    assert [(t.recharges, t.reward.bonus, t.reward.currency) for t in p.tiers] == [(2, 100, "EUR")]
    assert p.active_from is None and p.active_until is None


def test_active_dates_are_whole_utc_days(conf):
    conf.edit(conf.loyalty, 'period = "month"',
              'period = "month"\nactive_from = "2026-01-01"\nactive_until = "2026-01-31"')
    (p,) = load_config(conf.main).loyalty_plans
    assert p.active_from == 1767225600000                 # 2026-01-01T00:00:00Z
    assert p.active_until == 1767225600000 + 31 * 86_400_000


@pytest.mark.parametrize("old,new,problem", [
    ('id = "gold"', 'id = "gold plan"', "plan[0].id: must be 1-32 letters"),
    ('counter = "recharges"', 'counter = "visits"', "plan[0].counter: must be one of"),
    ('period = "month"', 'period = "year"', "plan[0].period: must be one of"),
    ('period = "month"', 'period = "rolling"\nrolling_days = 0',
     "plan[0].rolling_days: must be greater than 0"),
    ('voucher_types = { EUR10 = 1 }', 'voucher_types = { EUR99 = 1 }',
     "plan[0].voucher_types.EUR99: unknown voucher type"),
    ('voucher_types = { EUR10 = 1 }', 'voucher_types = { EUR10 = -1 }',
     "plan[0].voucher_types: EUR10: a weight must not be negative"),
    ('period = "month"', 'period = "month"\neligible_prefixes = ["3816-38170"]',
     "plan[0].eligible_prefixes: '3816-38170': both ends"),
    ('period = "month"', 'period = "month"\nactive_from = "2026-13-01"',
     "plan[0].active_from: must be a date YYYY-MM-DD"),
    ('period = "month"', 'period = "month"\nactive_from = "2026-02-01"\nactive_until = "2026-01-01"',
     "plan[0]: active_until (2026-01-01) is before active_from (2026-02-01)"),
    ('recharges = 2\n', 'amount = 2\n', 'tier[0]: counter = "recharges" takes only'),
    ('recharges = 2\n', '', "plan[0].tier[0]: a tier needs a target"),
    ('reward = { bonus = 100, currency = "EUR" }', 'reward = { currency = "EUR" }',
     "plan[0].tier[0].reward: a reward needs a bonus and/or validity_days"),
    ('reward = { bonus = 100, currency = "EUR" }', 'reward = { bonus = 100, currency = "euro" }',
     "plan[0].tier[0].reward.currency: must be an ISO 4217 code"),
    ('name = "Gold"', 'name = "Gold"\ncolour = "gold"', "plan[0].colour: unknown key"),
])
def test_bad_plans_name_the_file_and_key(conf, old, new, problem):
    conf.edit(conf.loyalty, old, new)
    msg = conf.error()
    assert msg.startswith(conf.loyalty + ": "), msg
    assert problem in msg, msg


def test_plan_level_checks(conf):
    conf.write(conf.loyalty, PLAN + PLAN)
    assert "plan[1].id: duplicate plan id 'gold'" in conf.error()
    conf.write(conf.loyalty, PLAN.split("[[plan.tier]]")[0])
    assert "plan[0]: plan 'gold' has no [[plan.tier]]" in conf.error()
    conf.write(conf.loyalty, PLAN.replace('counter = "recharges"', 'counter = "both"'))
    assert 'tier[0]: counter = "both" needs \'recharges\' and \'amount\'' in conf.error()
    tier = "[[plan.tier]]" + PLAN.split("[[plan.tier]]")[1]
    conf.write(conf.loyalty, PLAN + tier)
    assert "plan[0]: plan 'gold' has two tiers with the same targets" in conf.error()
    conf.write(conf.loyalty, PLAN + "".join(tier.replace("recharges = 2", "recharges = %d" % n)
                                            for n in range(3, 11)))
    assert "plan 'gold' has 9 tiers; at most 8" in conf.error()


def test_voucher_types_must_name_existing_plans(conf):
    conf.edit(conf.types, "loyalty = {}", "loyalty = { gold = 2 }")
    assert load_config(conf.main).voucher_type("EUR5").loyalty == {"gold": 2}
    conf.edit(conf.types, "loyalty = { gold = 2 }", "loyalty = { silver = 2 }")
    msg = conf.error()
    assert msg.startswith(conf.types + ": voucher_type[0].loyalty.silver: no such loyalty plan"), msg
    conf.edit(conf.types, "loyalty = { silver = 2 }", "loyalty = { gold = -2 }")
    assert "voucher_type[0].loyalty.gold: must not be negative" in conf.error()


def test_loyalty_file_default_explicit_and_missing(conf):
    os.unlink(conf.loyalty)
    assert conf.error() == "%s: file not found" % conf.loyalty   # named in ivoms.toml
    conf.edit(conf.main, 'loyalty = "loyalty.toml"', '')
    assert load_config(conf.main).loyalty_plans == ()          # the default file may be absent
    conf.write(conf.main, 'loyalty = "plans/loyalty.toml"\n' + conf.read(conf.main))
    assert conf.error() == "%s: file not found" % os.path.join(conf.dir, "plans", "loyalty.toml")
    os.makedirs(os.path.join(conf.dir, "plans"))
    conf.write(os.path.join(conf.dir, "plans", "loyalty.toml"), PLAN)
    assert [p.id for p in load_config(conf.main).loyalty_plans] == ["gold"]
    conf.write(os.path.join(conf.dir, "plans", "loyalty.toml"), "[[plan]\n")
    assert "not valid TOML" in conf.error()


# -- ivoms loyalty show -----------------------------------------------------------------
def test_loyalty_show_prints_counters_progress_and_rewards(conf, capsys):
    from core import keys, migrate
    from core.db import Store
    from core.loyalty.service import count_recharge, select_plans
    from core.timeutil import now_ms
    from gateway.cli import main
    conf.write(conf.loyalty, PLAN + '''
[[plan.tier]]
name = "Platinum"
recharges = 5
reward = { bonus = 500, currency = "EUR", validity_days = 30 }

[[plan]]
id = "spend"
name = "Big spender"
voucher_types = { "*" = 1 }
counter = "amount"
currency = "EUR"
period = "rolling"
rolling_days = 30
eligible_prefixes = ["38165"]

[[plan.tier]]
amount = 5000
reward = { validity_days = 60 }
''')
    cfg = load_config(conf.main)
    os.makedirs(os.path.dirname(cfg.keys.file), exist_ok=True)
    keys.init(cfg.keys.file)
    store = Store(cfg.database_url)
    migrate.upgrade(store)
    now = now_ms()
    for i in range(3):
        counted = select_plans(cfg.loyalty_plans, "381641234567", "EUR10", "{}", 1000, "EUR", now)
        store.run_sync(count_recharge, counted, "381641234567", "t%d" % i, "EUR", now)
    store.dispose()
    assert main(["--config", conf.main, "loyalty", "show", "064 123 4567"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "subscriber 381641234567"
    assert out[1] == "plan gold - Gold [active]"
    assert out[2].startswith("  period:   calendar month, ")
    assert out[3] == "  counted:  3 recharges, 30.00"
    assert out[4] == "  tier r2       2 recharges -> 1.00 EUR: rewarded"
    assert out[5] == "  tier Platinum 5 recharges -> 5.00 EUR + 30 days validity: 2 recharges to go"
    assert out[6] == "  next:     Platinum, 2 recharges to go"
    assert out[7] == "plan spend - Big spender [active, not eligible]"
    assert out[8].startswith("  period:   rolling 30 days, last 30 days (since ")
    assert out[9] == "  counted:  0 recharges, 0.00 EUR"
    assert out[10] == "  tier a5000    50.00 EUR -> 60 days validity: 50.00 EUR to go"
    assert out[12] == "rewards:"
    (reward,) = out[13:]
    assert " gold " in reward and " r2 " in reward and "1.00 EUR" in reward and "pending" in reward
    assert main(["--config", conf.main, "loyalty", "show", "12"]) == 1
    assert "'12' is not a valid MSISDN" in capsys.readouterr().err
