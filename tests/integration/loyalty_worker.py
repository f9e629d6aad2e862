"""A separate process activating vouchers for one subscriber with a loyalty plan, for multi-process tests.

    python -m tests.integration.loyalty_worker URL KEYFILE MSISDN HRNFILE

Activates every HRN in HRNFILE (one per line) concurrently for MSISDN under
the plan "race" (tiers at 10, 20 and 30 recharges); prints one line per
activation: the result code and the reward tiers it granted.
"""
from __future__ import annotations

import sys


def race_plan():
    from core.loyalty.plans import Period, Plan, Reward, Tier
    return Plan(id="race", name="Race", voucher_types={"*": 1}, period=Period("month"),
                tiers=tuple(Tier(n, 0, Reward(100 * n, "EUR")) for n in (10, 20, 30)))


def main(argv):
    url, keyfile, msisdn, hrnfile = argv[:4]
    with open(hrnfile) as f:
        hrns = [line.strip() for line in f if line.strip()]
    from twisted.internet import defer, reactor

    from core import keys
    from core.crypto import VoucherCipher
    from core.db import Store
    from core.loyalty.service import LoyaltyService
    from core.requests import ActivationRequest
    from tests.helpers import FraudSettings, build_service

    store = Store(url)
    cipher = VoucherCipher(keys.load(keyfile))
    runner, svc, ledger = build_service(store, cipher, reactor=reactor, workers=4,
                                        fraud=FraudSettings(tiers=((10_000, 1),)))
    svc.loyalty = LoyaltyService([race_plan()], runner, ledger, clock=reactor)

    async def run():
        results = await defer.gatherResults([
            svc.activate(ActivationRequest(msisdn=msisdn, hrn=h, channel="sms")) for h in hrns])
        await svc.loyalty.drain()
        for r in results:
            print(int(r.code), " ".join(g.tier for g in r.rewards))
        await runner.stop()

    def go():
        d = defer.ensureDeferred(run())
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(go)
    reactor.run(installSignalHandlers=False)


if __name__ == "__main__":
    main(sys.argv[1:])
