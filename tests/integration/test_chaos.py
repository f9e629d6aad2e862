"""Chaos: mixed SMS (smpplib as the SMSC), SOAP (zeep) and USSD load on a real node killed with SIGKILL.

For each billing mode (embedded ledger in one unit, ledger as a saga step,
Diameter to the simulator with its journal) the soak of L{bench.chaos}
kills the node three times at random moments (and the simulator once) and
restarts it; then every invariant must hold with no violation:
acknowledged <=> exactly one transaction and one reply, used voucher <=>
exactly one credit at billing, no credit without a used voucher, nothing
reserved or pending after reconciliation.  About 20 s per mode.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["ledger", "ledger-saga", "diameter"])
def test_nothing_acknowledged_is_lost_across_kills(mode, tmp_path):
    pytest.importorskip("smpplib")
    pytest.importorskip("zeep")
    from bench.chaos import print_report, soak
    lines = []
    report = soak(mode, 12.0, 3, folder=str(tmp_path), rate=60.0, out=lines.append)
    print_report(report, out=lines.append)
    text = "\n".join(lines)
    assert report["kills"] == 3, text
    assert report["sim_kills"] == (1 if mode == "diameter" else 0), text
    assert report["activations"] > 100, text
    assert all(report["requests"].values()), text            # every channel carried load
    for name, (checked, violations) in report["invariants"].items():
        assert violations == 0, "%s: %d violations\n%s" % (name, violations, text)
