"""A separate process running its own ActivationService, for crash and multi-process tests.

    python -m tests.integration.activation_worker URL KEYFILE MODE HRN [N]

MODE C{race}: N concurrent activations of HRN from distinct MSISDNs; prints
the result codes, one per line.  MODE C{crash:<step>}: one activation that
kills this process with SIGKILL at <step> (before-reserve-commit,
after-reserve, after-credit, before-final-commit).
"""
from __future__ import annotations

import os
import signal
import sys


def _die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv):
    url, keyfile, mode, hrn = argv[:4]
    n = int(argv[4]) if len(argv) > 4 else 1
    from twisted.internet import defer, reactor

    from core import keys, saga
    from core.crypto import VoucherCipher
    from core.db import Store
    from core.requests import ActivationRequest
    from tests.helpers import FraudSettings, build_service

    store = Store(url)
    cipher = VoucherCipher(keys.load(keyfile))
    # crash:<step> drives the saga (credit as a separate step, as with external
    # billing); crash-local:<step> the embedded ledger's one-unit path.
    runner, svc, ledger = build_service(store, cipher, reactor=reactor,
                                        fraud=FraudSettings(tiers=((10_000, 1),)),
                                        in_transaction=mode.startswith("crash-local:"))
    step = mode.split(":", 1)[1] if mode.startswith("crash") else None
    if mode.startswith("crash-local:") and not store.is_sqlite:
        # PostgreSQL runs the whole activation as one statement: die once it
        # returned, before the transaction commits (both steps are that moment)
        from core import db_activate
        real_one = db_activate.activate_in_one

        def one_then_die(tx, *a, **kw):
            assert db_activate.usable(tx, a[2])
            real_one(tx, *a, **kw)
            _die()
        db_activate.activate_in_one = one_then_die
        step = None
    if step == "before-reserve-commit":
        real = saga.reserve

        def reserve_then_die(tx, *a):
            real(tx, *a)
            _die()
        saga.reserve = reserve_then_die
    elif step == "after-reserve":
        ledger_credit = ledger.credit

        def credit(*a, **kw):
            _die()
            return ledger_credit(*a, **kw)
        svc.billing = type("B", (), {"credit": staticmethod(credit), "lookup": ledger.lookup})()
    elif step == "after-credit":
        ledger_credit = ledger.credit

        def credit(*a, **kw):
            return ledger_credit(*a, **kw).addCallback(lambda r: _die())
        svc.billing = type("B", (), {"credit": staticmethod(credit), "lookup": ledger.lookup})()
    elif step == "before-final-commit":
        real_commit = saga.commit_success

        def commit_then_die(tx, *a, **kw):
            real_commit(tx, *a, **kw)
            _die()
        saga.commit_success = commit_then_die

    async def run():
        if mode == "race":
            results = await defer.gatherResults([
                svc.activate(ActivationRequest(msisdn="3816500%05d" % (os.getpid() % 1000 * 100 + i),
                                               hrn=hrn, channel="sms")) for i in range(n)])
            for r in results:
                print(int(r.code))
        else:
            r = await svc.activate(ActivationRequest(msisdn="381641234567", hrn=hrn, channel="sms"))
            print("survived", int(r.code))
        await runner.stop()

    def go():
        d = defer.ensureDeferred(run())
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: reactor.stop())
    reactor.callWhenRunning(go)
    reactor.run(installSignalHandlers=False)


if __name__ == "__main__":
    main(sys.argv[1:])
