"""The UCIP connector against the simulator's AIR role in its own process (127.0.0.1)."""
import pytest
import pytest_twisted

from billing.sim.process import SimProcess
from billing.ucip.client import UcipClient
from billing.ucip.config import UcipSettings
from billing.ucip.connector import UcipBilling
from core.billing import BillingUnavailable
from core.results import ResultCode

pytestmark = pytest.mark.integration


def make(reactor, port, **kw):
    s = UcipSettings(hosts=("http://127.0.0.1:%d/Air" % port,), request_timeout=1.0, **kw)
    client = UcipClient(s, reactor=reactor)
    return UcipBilling(client, s, clock=reactor), client


@pytest_twisted.ensureDeferred
async def test_sim_credits_once_per_origin_transaction_id(reactor, tmp_path):
    seeded = tmp_path / "accounts.csv"
    seeded.write_text("381641234567,500,EUR,2030-01-01\n")
    sim = SimProcess.spawn("--no-auto-create", "--accounts", str(seeded), ucip=True)
    billing, client = make(reactor, sim.ucip_port, lookup="replay")
    try:
        out = await billing.credit("381641234567", 1050, "EUR", 30, "u1")
        assert out.credited and out.balance == 1550 and out.new_expiry
        again = await billing.credit("381641234567", 1050, "EUR", 30, "u1")
        assert again.balance == 1550                              # duplicate: same answer
        replayed = await billing.lookup("u1", account="381641234567", amount=1050,
                                        currency="EUR", validity_days=30)
        assert replayed.balance == 1550
        unknown = await billing.credit("381600000000", 1, "EUR", 0, "u2")
        assert unknown.code == ResultCode.SUBSCRIBER_UNKNOWN
        other = await billing.credit("381641234567", 1, "USD", 0, "u3")
        assert other.code == ResultCode.BILLING_REJECTED
    finally:
        await client.stopService()
        sim.stop()


@pytest_twisted.ensureDeferred
async def test_sim_drop_then_replay_concludes_without_second_credit(reactor):
    sim = SimProcess.spawn("--drop-rate", "1", ucip=True)
    billing, client = make(reactor, sim.ucip_port, lookup="replay")
    try:
        with pytest.raises(BillingUnavailable) as ei:
            await billing.credit("381641234567", 100, "EUR", 0, "d1")
        assert ei.value.sent
        out = await billing.lookup("d1", account="381641234567", amount=100, currency="EUR",
                                   validity_days=0)
        assert out.credited and out.balance == 100                # applied once
    finally:
        await client.stopService()
        sim.stop()


@pytest_twisted.ensureDeferred
async def test_sim_wrong_password_is_refused_before_sending(reactor):
    sim = SimProcess.spawn(ucip=True)
    billing, client = make(reactor, sim.ucip_port, password="nope")
    try:
        with pytest.raises(BillingUnavailable) as ei:
            await billing.credit("381641234567", 100, "EUR", 0, "p1")
        assert not ei.value.sent
    finally:
        await client.stopService()
        sim.stop()
