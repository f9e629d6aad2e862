"""CAI billing against the simulator's CAI server in its own process, on 127.0.0.1."""
import pytest
import pytest_twisted

from billing.cai.config import CaiSettings
from billing.cai.connector import CaiBilling
from billing.cai.pool import CaiPool
from billing.sim.process import SimProcess
from core.results import ResultCode

pytestmark = pytest.mark.integration


async def until_ready(pool, reactor):
    from twisted.internet import task
    for _ in range(100):
        if pool.idle:
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("CAI pool never logged in")


@pytest_twisted.ensureDeferred
async def test_cai_credit_lookup_and_codes(reactor, tmp_path):
    seeded = tmp_path / "accounts.csv"
    seeded.write_text("381641234567,500,EUR,2030-01-01\n")
    s2 = SimProcess.spawn("--no-auto-create", "--accounts", str(seeded), cai=True)
    settings = CaiSettings(port=s2.cai_port, pool_size=2, command_timeout=3)
    pool = CaiPool(settings, reactor=reactor)
    billing = CaiBilling(pool, settings)
    pool.startService()
    try:
        await until_ready(pool, reactor)
        out = await billing.credit("381641234567", 1050, "EUR", 30, "c1")
        assert out.credited and out.balance == 1550
        again = await billing.credit("381641234567", 1050, "EUR", 30, "c1")
        assert again.balance == 1550                      # idempotent by REF
        unknown = await billing.credit("381600000000", 1, "EUR", 0, "c2")
        assert unknown.code == ResultCode.SUBSCRIBER_UNKNOWN
        assert (await billing.lookup("c1")).credited
        assert await billing.lookup("never") is None      # REF now closed
        late = await billing.credit("381641234567", 1, "EUR", 0, "never")
        assert not late.credited
    finally:
        await pool.stopService()
        s2.stop()


@pytest_twisted.ensureDeferred
async def test_cai_garbage_then_reconciled_by_lookup(reactor):
    s = SimProcess.spawn("--malformed-rate", "1", cai=True)
    settings = CaiSettings(port=s.cai_port, pool_size=1, command_timeout=2,
                           reconnect_initial=0.2, reconnect_max=0.5)
    pool = CaiPool(settings, reactor=reactor)
    billing = CaiBilling(pool, settings)
    pool.startService()
    try:
        await until_ready(pool, reactor)
        try:
            await billing.credit("381641234567", 100, "EUR", 0, "g1")
            raise AssertionError("garbage must not be a definite answer")
        except Exception as e:
            assert getattr(e, "sent", None) is True
        await until_ready(pool, reactor)                   # re-login after abort
        assert (await billing.lookup("g1")).credited
    finally:
        await pool.stopService()
        s.stop()
