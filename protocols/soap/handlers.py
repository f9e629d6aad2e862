"""What each SOAP operation does: build the core request or query, render the answer as SOAP types.

Normalise before the core (STYLE 4): ActivateVoucher builds one
L{core.requests.ActivationRequest} and renders one
L{core.requests.ActivationResult}; the two status operations go through
L{core.interfaces.ITransactionQueries}.  Handlers set the call's audit
target and detail; the resource writes the row.
"""

from __future__ import annotations

import datetime

from core.inbox import request_key
from core.requests import ActivationRequest, Channel

from protocols.common.results import with_reward
from protocols.soap.errors import SoapFault
from protocols.soap.replies import result_name, result_text
from protocols.soap.types import ActivateVoucherResult, TransactionStatus, VoucherStatus


def to_datetime(epoch_ms: int | None):
    """An aware UTC datetime for epoch milliseconds (None stays None)."""
    if epoch_ms is None:
        return None
    return datetime.datetime.fromtimestamp(epoch_ms / 1000.0, tz=datetime.timezone.utc)


class SoapHandlers:
    """The operations' behaviour, given the core's activation service and the queries."""

    def __init__(self, activation, queries):
        """
        @param activation: provides L{core.interfaces.IActivationService}.
        @param queries: provides L{core.interfaces.ITransactionQueries}.
        """
        self.activation = activation
        self.queries = queries

    def activate_voucher(self, call, msisdn, hrn, channel_ref, beneficiary):
        """@return: a Deferred firing with an L{ActivateVoucherResult}."""
        req = ActivationRequest(msisdn=msisdn, hrn=hrn, channel=Channel.SOAP,
                                channel_ref=channel_ref, beneficiary=beneficiary or None,
                                source=call.client.name,
                                idempotency_key=request_key("soap", channel_ref, call.client.name,
                                                            msisdn, hrn))
        call.target = msisdn
        d = self.activation.activate(req)

        def render(r):
            call.detail = {"code": int(r.code), "txn_id": r.txn_id, "channel_ref": channel_ref,
                           "serial": r.serial}
            if beneficiary:
                call.detail["beneficiary"] = beneficiary
            return ActivateVoucherResult(
                resultCode=int(r.code), resultName=r.name,
                resultText=with_reward(r.text, "", r),
                transactionId=r.txn_id, msisdn=r.msisdn, account=r.account, serial=r.serial,
                amount=r.amount, currency=r.currency, validityDays=r.validity_days,
                balance=r.balance, newExpiry=to_datetime(r.new_expiry),
                unbarTime=to_datetime(r.unbar_at))
        return d.addCallback(render)

    def transaction_status(self, call, txn_id, channel_ref):
        """@return: a Deferred firing with a L{TransactionStatus}.
        @raise SoapFault: C{Client.InvalidArgument} when neither key is given."""
        if not txn_id and not channel_ref:
            raise SoapFault("Client.InvalidArgument",
                            "give transactionId or channelReference")
        call.target = txn_id or channel_ref
        source = None if call.client.query_all else call.client.name
        d = self.queries.transaction(txn_id=txn_id or None, channel_ref=channel_ref,
                                     channel=Channel.SOAP.value, source=source)

        def render(row):
            call.detail = {"found": row is not None}
            if row is None:
                return TransactionStatus(found=False)
            return TransactionStatus(
                found=True, transactionId=row["id"], state=row["state"],
                resultCode=row["result_code"], resultName=result_name(row["result_code"]),
                resultText=result_text(row["result_code"]), channel=row["channel"],
                channelReference=row["channel_ref"], msisdn=row["msisdn"],
                account=row["account"], serial=row["serial"], amount=row["amount"],
                currency=row["currency"], validityDays=row["validity_days"],
                startedAt=to_datetime(row["started_at"]),
                finishedAt=to_datetime(row["finished_at"]))
        return d.addCallback(render)

    def voucher_status(self, call, serial):
        """@return: a Deferred firing with a L{VoucherStatus}."""
        call.target = str(serial)
        d = self.queries.voucher(serial)

        def render(row):
            call.detail = {"found": row is not None}
            if row is None:
                return VoucherStatus(found=False, serial=serial)
            return VoucherStatus(found=True, serial=row["serial"], state=row["state"],
                                 voucherType=row["type_code"], batchId=row["batch_id"],
                                 expiry=to_datetime(row["expires_at"]))
        return d.addCallback(render)
