"""The ActivateVoucher answer written from the template is the octets spyne writes; values
the template cannot write exactly are left to spyne."""
from __future__ import annotations

import datetime

import pytest
from spyne import MethodContext

from protocols.soap.fastxml import NotWritable, activate_voucher_response
from protocols.soap.server import InProcessServer
from protocols.soap.app import make_application
from protocols.soap.types import ActivateVoucherResult

UTC = datetime.timezone.utc
APP = make_application()
SERVER = InProcessServer(APP)


def spyne_answer(result) -> bytes:
    ctx = MethodContext(SERVER, MethodContext.SERVER)
    ctx.descriptor = APP.interface.service_method_map["{urn:ivoms:soap:1}ActivateVoucher"][0]
    ctx.out_object = [result]
    SERVER.get_out_string(ctx)
    return b"".join(ctx.out_string)


TEXTS = ["Credited 10.00 EUR <&> ž", "a\"b'c", "tab\tnew\nline", "日本", "]]>", ""]
TIMES = [None, datetime.datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
         datetime.datetime(2027, 12, 31, 23, 59, 59, 7, tzinfo=UTC)]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("when", TIMES)
def test_the_template_writes_what_spyne_writes(text, when):
    for result in (
            ActivateVoucherResult(resultCode=0, resultName="SUCCESS", resultText=text,
                                  transactionId="ab12", msisdn="381641234567",
                                  account="381641234567", serial=1000000001, amount=1000,
                                  currency="EUR", validityDays=30, balance=2**40,
                                  newExpiry=when, unbarTime=None),
            ActivateVoucherResult(resultCode=-3, resultName=text or "X", resultText=text,
                                  msisdn=text or None, balance=-5, unbarTime=when)):
        assert activate_voucher_response(result) == spyne_answer(result)


@pytest.mark.parametrize("result", [
    ActivateVoucherResult(resultCode=0, resultName="SUCCESS", resultText="carriage\rreturn"),
    ActivateVoucherResult(resultCode=0, resultName="SUCCESS", resultText="bell\x07"),
    ActivateVoucherResult(resultCode=0, resultName="SUCCESS", resultText=None),
    ActivateVoucherResult(resultCode=True, resultName="SUCCESS", resultText="x"),
    ActivateVoucherResult(resultCode=0, resultName="SUCCESS", resultText="x",
                          newExpiry=datetime.datetime(2027, 1, 2)),
])
def test_values_the_template_cannot_write_go_to_spyne(result):
    with pytest.raises(NotWritable):
        activate_voucher_response(result)
