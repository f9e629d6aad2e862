"""The billing simulator's Diameter server role and ledger on StringTransport/task.Clock."""
import datetime
import decimal

from twisted.internet import task
from twisted.internet.testing import StringTransport

from billing.diameter.message import (
    CreditRequest, CreditSettings, LocalIdentity, build_ccr, build_cer,
    build_dpr, build_dwr, decode_message, mark_retransmission, parse_capabilities)
from billing.diameter.config import DOC_VENDOR_ID
from billing.diameter.message.credit import ValidityAvp
from billing.diameter.message.framing import split_frames
from billing.diameter.message.results import credit_outcome
from billing.sim.diameter import SimDiameterFactory
from billing.sim.faults import FaultPlan
from billing.sim.ledger import SimLedger

LOCAL = LocalIdentity("ivoms.example.net", "example.net", ("192.0.2.10",))
SETTINGS = CreditSettings("example.net", "svc",
                          validity_avps=(ValidityAvp(DOC_VENDOR_ID, 1),))


def server(**faults):
    clock = task.Clock()
    clock.advance(1_700_000_000)
    ledger = SimLedger(clock)
    f = SimDiameterFactory(ledger, FaultPlan(seed=1, **faults), clock)
    p = f.buildProtocol(None)
    t = StringTransport()
    p.makeConnection(t)
    return clock, ledger, f, p, t


def answers(t):
    frames, rest = split_frames(t.value())
    t.clear()
    assert rest == b""
    return [decode_message(x) for x in frames]


def ccr(key="k1", amount="10.50", hbh=1):
    return build_ccr(LOCAL, SETTINGS, CreditRequest(
        key, "381641234567", decimal.Decimal(amount), 978,
        datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc), 30),
        hop_by_hop=hbh, end_to_end=hbh)


def test_base_protocol_answers():
    clock, ledger, f, p, t = server()
    p.dataReceived(build_cer(LOCAL, hop_by_hop=1) + build_dwr(LOCAL, hop_by_hop=2)
                   + build_dpr(LOCAL, hop_by_hop=3))
    cea, dwa, dpa = answers(t)
    caps = parse_capabilities(cea)
    assert caps.result_code == 2001 and caps.supports_credit_control
    assert (dwa.header.command_code, dwa.result_code) == (280, 2001)
    assert (dpa.header.command_code, dpa.result_code) == (282, 2001)


def test_ccr_credits_and_duplicate_with_t_flag_is_not_applied_twice():
    clock, ledger, f, p, t = server()
    first = ccr()
    p.dataReceived(first)
    (cca,) = answers(t)
    assert credit_outcome(cca).is_success
    assert ledger.accounts["381641234567"].balance == 1050
    p.dataReceived(mark_retransmission(first, hop_by_hop=9))
    (again,) = answers(t)
    assert again.header.hop_by_hop == 9 and credit_outcome(again).is_success
    assert ledger.accounts["381641234567"].balance == 1050
    assert (f.stats.duplicates, f.stats.retransmissions, ledger.applied) == (1, 1, 1)


def test_validity_days_extend_expiry():
    clock, ledger, f, p, t = server()
    p.dataReceived(ccr())
    answers(t)
    acc = ledger.accounts["381641234567"]
    assert acc.expires_at == int(clock.seconds() * 1000) + 30 * 86_400_000


def test_unknown_account_without_auto_create_is_5030():
    clock, ledger, f, p, t = server()
    ledger.auto_create = False
    p.dataReceived(ccr())
    (cca,) = answers(t)
    assert cca.result_code == 5030


def test_faults_drop_reject_busy_slow_malformed():
    clock, ledger, f, p, t = server(drop_rate=1)
    p.dataReceived(ccr())
    assert t.value() == b"" and ledger.applied == 1
    clock, ledger, f, p, t = server(reject_rate=1)
    p.dataReceived(ccr())
    assert answers(t)[0].result_code == 5003 and ledger.applied == 0
    clock, ledger, f, p, t = server(busy_rate=1)
    p.dataReceived(ccr())
    assert answers(t)[0].result_code == 3004 and ledger.applied == 0
    clock, ledger, f, p, t = server(slow_rate=1, slow_seconds=3)
    p.dataReceived(ccr())
    assert t.value() == b""
    clock.advance(3)
    assert answers(t)[0].result_code == 2001
    clock, ledger, f, p, t = server(malformed_rate=1)
    p.dataReceived(ccr())
    import pytest
    from billing.diameter.message import DiameterDecodeError
    with pytest.raises(DiameterDecodeError) as e:
        decode_message(t.value())
    assert e.value.header.hop_by_hop == 1


def test_garbage_stream_closes_connection_without_crash():
    clock, ledger, f, p, t = server()
    p.dataReceived(b"\x09not diameter at all")
    assert t.disconnecting


def test_seed_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("# msisdn,balance,currency,expires\n381641234567,500,EUR,2030-01-01\n")
    ledger = SimLedger(task.Clock(), auto_create=False)
    assert ledger.load(str(path)) == 1
    assert ledger.accounts["381641234567"].balance == 500
