"""UCIP codec, fields and responseCode mapping (pure: no network)."""
import re

import pytest

from billing.ucip import codec
from billing.ucip.config import UcipCodes, UcipSettings
from billing.ucip.connector import subscriber_number, update_fields
from billing.ucip.results import outcome
from core.billing import BillingUnavailable
from core.results import ResultCode


def test_origin_transaction_id_is_numeric_stable_and_distinct():
    a = codec.origin_transaction_id("0192f0c3-aaaa")
    assert re.fullmatch(r"\d{1,19}", a)
    assert a == codec.origin_transaction_id("0192f0c3-aaaa")
    assert a != codec.origin_transaction_id("0192f0c3-aaab")


def test_timestamps_round_trip():
    assert codec.format_timestamp(1764946975) == "20251205T15:02:55+0000"
    assert codec.parse_timestamp("20251205T15:02:55+0000") == 1764946975000
    assert codec.parse_timestamp("20251205T16:02:55+0100") == 1764946975000
    with pytest.raises(codec.UcipSyntaxError):
        codec.parse_timestamp("2025-12-05")


def test_timestamps_follow_the_second_they_are_given():
    # Formatted texts are reused within one second: alternating seconds must
    # never give back the previous second's text.
    import datetime
    for t in (1764946975, 1764946976.5, 1764946975.2, 0, 253402300799, 1764946976):
        expected = datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)
        assert codec.format_timestamp(t) == expected.strftime("%Y%m%dT%H:%M:%S+0000")


def test_number_formats():
    national = UcipSettings(number_format="national", country_code="381")
    assert subscriber_number("381641234567", national) == "0641234567"
    assert subscriber_number("381641234567", UcipSettings()) == "381641234567"


def test_request_round_trips_through_the_standard_library():
    f = update_fields(UcipSettings(validity_fields=("serviceFeeExpiryDateRelative",)),
                      "381641234567", 5, "EUR", 7, "k", 0)
    method, p = codec.decode_call(codec.update_request(f))
    assert method == "UpdateBalanceAndDate"
    assert p["originTimeStamp"].value == "19700101T00:00:00+0000"
    assert p["adjustmentAmountRelative"] == "5" and p["serviceFeeExpiryDateRelative"] == 7
    assert "supervisionExpiryDateRelative" not in p


@pytest.mark.parametrize("code,expected", [
    (0, ResultCode.SUCCESS), (1, ResultCode.SUCCESS), (2, ResultCode.SUCCESS),
    (102, ResultCode.SUBSCRIBER_UNKNOWN), (104, ResultCode.BILLING_REJECTED),
    (124, ResultCode.BILLING_REJECTED), (126, ResultCode.BILLING_REJECTED),
    (999, ResultCode.BILLING_REJECTED)])
def test_response_codes(code, expected):
    assert outcome({"responseCode": code}, UcipCodes()).code == expected


def test_unknown_codes_and_faults():
    with pytest.raises(BillingUnavailable) as ei:
        outcome({"responseCode": 100}, UcipCodes())
    assert ei.value.sent
    fault = codec.decode_response(codec.xmlrpc_fault(1000, "Illegal request"))
    assert outcome(fault, UcipCodes()).code == ResultCode.BILLING_REJECTED
    assert outcome({"responseCode": 7}, UcipCodes(duplicate=(7,))).credited
    with pytest.raises(codec.UcipSyntaxError):
        codec.decode_response(b"<methodResponse>garbage")
    with pytest.raises(codec.UcipSyntaxError):
        codec.decode_response(codec.encode_response({"noCode": 1}))


def test_settings_are_checked():
    for bad in (dict(hosts=()), dict(hosts=("air:1",)), dict(number_format="x"),
                dict(number_format="national"), dict(validity_fields=("foo",)),
                dict(credit_main_account=False), dict(lookup="ask")):
        with pytest.raises(ValueError):
            UcipSettings(**bad)


def test_node_builds_the_ucip_connector_from_config(conf_dir):
    import os

    from twisted.internet import task
    from zope.interface.verify import verifyObject

    from billing.ucip.client import UcipClient
    from billing.ucip.connector import UcipBilling
    from core.billing import IBillingPort
    from gateway.config import load_config
    from gateway.node import Node
    path = os.path.join(str(conf_dir), "ivoms.toml")
    text = open(path, encoding="utf-8").read().replace('connector = "ledger"', 'connector = "ucip"', 1)
    text = text.replace('hosts = ["http://127.0.0.1:10010/Air"]',
                        'hosts = ["http://127.0.0.1:10010/Air", "http://127.0.0.1:10011/Air"]')
    open(path, "w", encoding="utf-8").write(text)
    clock = task.Clock()
    node = Node(load_config(path), reactor=clock, clock=clock)
    billing = node.billing
    assert isinstance(billing, UcipBilling) and verifyObject(IBillingPort, billing)
    assert isinstance(node.billing_service, UcipClient)
    assert billing.settings.hosts == ("http://127.0.0.1:10010/Air", "http://127.0.0.1:10011/Air")
