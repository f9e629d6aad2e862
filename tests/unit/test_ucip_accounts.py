"""UCIP dedicated accounts per voucher type: settings, config and the encoded request (pure)."""
import os
import re
import xmlrpc.client

import pytest

from billing.ucip import codec
from billing.ucip.config import UcipAccounts, UcipSettings
from billing.ucip.connector import update_fields

TYPES = {"DATA1G": UcipAccounts((5,), False), "EUR5": UcipAccounts((1, 7))}


def fields(voucher_type, types=TYPES, **kw):
    s = UcipSettings(voucher_types=types, **kw)
    return update_fields(s, "381641234567", 500, "EUR", 30, "txn", 0, voucher_type)


def test_each_type_credits_its_accounts():
    data = fields("DATA1G")
    assert "adjustmentAmountRelative" not in data
    assert data["dedicatedAccountUpdateInformation"] == [
        {"dedicatedAccountID": 5, "adjustmentAmountRelative": "500"}]
    eur5 = fields("EUR5")
    assert eur5["adjustmentAmountRelative"] == "500"
    assert [d["dedicatedAccountID"] for d in eur5["dedicatedAccountUpdateInformation"]] == [1, 7]
    # another type, and a credit of no type (a loyalty reward): the [billing.ucip] defaults
    for other in ("T10", None):
        f = fields(other)
        assert f["adjustmentAmountRelative"] == "500"
        assert "dedicatedAccountUpdateInformation" not in f
    # a type table's key left out inherits from [billing.ucip]
    bonus = fields("BONUS", {"BONUS": UcipAccounts(credit_main_account=False)},
                   dedicated_accounts=(9,))
    assert fields("T10", {"BONUS": UcipAccounts(credit_main_account=False)},
                  dedicated_accounts=(9,))["adjustmentAmountRelative"] == "500"
    assert "adjustmentAmountRelative" not in bonus
    assert bonus["dedicatedAccountUpdateInformation"][0]["dedicatedAccountID"] == 9


def test_dedicated_accounts_are_encoded_as_ucip_says():
    """An array of structs, dedicatedAccountID an <i4>, the amount a <string> (UCIP Price)."""
    body = codec.update_request(fields("DATA1G"))
    text = re.sub(r">\s+<", "><", body.decode("utf-8"))
    assert re.search(r"<member><name>dedicatedAccountUpdateInformation</name><value><array>"
                     r"<data><value><struct><member><name>dedicatedAccountID</name><value>"
                     r"<(i4|int)>5</\1></value></member><member><name>adjustmentAmountRelative"
                     r"</name><value><string>500</string></value></member></struct></value>"
                     r"</data></array></value></member>", text)
    (p,), method = xmlrpc.client.loads(body)   # the standard library reads it back
    assert method == "UpdateBalanceAndDate"
    assert p["dedicatedAccountUpdateInformation"] == [
        {"dedicatedAccountID": 5, "adjustmentAmountRelative": "500"}]
    assert "adjustmentAmountRelative" not in p


@pytest.mark.parametrize("bad", [
    dict(dedicated_accounts=(0,)), dict(dedicated_accounts=(True,)),
    dict(dedicated_accounts=(3, 3)), dict(dedicated_accounts=(2 ** 31,)),
    dict(voucher_types={"X": UcipAccounts((), False)}),
    dict(voucher_types={"X": UcipAccounts(credit_main_account=False)}),
    dict(voucher_types={"X": UcipAccounts((0,))}),
    dict(voucher_types={"": UcipAccounts((1,))}),
    dict(voucher_types={"X" * 33: UcipAccounts((1,))}),
])
def test_inconsistent_accounts_are_refused(bad):
    with pytest.raises(ValueError):
        UcipSettings(**bad)


def _config(conf_dir, extra):
    path = os.path.join(str(conf_dir), "ivoms.toml")
    text = open(path, encoding="utf-8").read()
    text = text.replace('connector = "ledger"', 'connector = "ucip"', 1)
    text = text.replace("[billing_sim]", extra + "\n[billing_sim]", 1)
    open(path, "w", encoding="utf-8").write(text)
    return path


def test_voucher_types_are_read_from_the_config(conf_dir):
    from billing.ucip.config import from_table
    from gateway.config import load_config
    path = _config(conf_dir, '[billing.ucip.voucher_types.DATA1G]\n'
                             'dedicated_accounts = [5]\ncredit_main_account = false\n'
                             '[billing.ucip.voucher_types.EUR5]\ndedicated_accounts = [1]\n')
    s = from_table(load_config(path).billing.ucip)
    assert s.accounts_for("DATA1G") == (False, (5,))
    assert s.accounts_for("EUR5") == (True, (1,))
    assert s.accounts_for("T10") == (True, ())


@pytest.mark.parametrize("extra,named", [
    ('[billing.ucip.voucher_types.DATA1G]\ncredit_main_account = false\n',
     "voucher_types.DATA1G.credit_main_account"),
    ('[billing.ucip.voucher_types.DATA1G]\ndedicated_accounts = [0]\n',
     "voucher_types.DATA1G.dedicated_accounts"),
    ('[billing.ucip.voucher_types.DATA1G]\naccounts = [5]\n', "accounts"),
])
def test_bad_voucher_types_name_the_key(conf_dir, extra, named):
    from gateway.config import load_config
    from core.settings import ConfigError
    with pytest.raises(ConfigError) as ei:
        load_config(_config(conf_dir, extra))
    assert "billing.ucip" in str(ei.value) and named in str(ei.value)
