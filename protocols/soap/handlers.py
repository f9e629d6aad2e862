"""What each SOAP operation does: build the core request or query, render the answer as SOAP types.

Normalise before the core (STYLE 4): ActivateVoucher builds one
L{core.requests.ActivationRequest} and renders one
L{core.requests.ActivationResult}; the two status operations go through
L{core.interfaces.ITransactionQueries}.  Handlers set the call's audit
target and detail; the resource writes the row, except for ActivateVoucher,
whose row the core writes with the activation (in the same unit of work
where it can).
"""

from __future__ import annotations

import datetime

from core.inbox import request_key
from core.queries import AuditEntry
from core.requests import ActivationRequest, Channel

from protocols.common.results import with_reward
from protocols.soap.errors import SoapFault
from protocols.soap.fastxml import FIELDS
from protocols.soap.replies import result_name, result_text
from protocols.soap.types import ActivateVoucherResult, TransactionStatus, VoucherStatus


def result_model(values) -> ActivateVoucherResult:
    """The spyne model of an ActivateVoucher answer given as field values
    (L{protocols.soap.fastxml.FIELDS} order)."""
    return ActivateVoucherResult(**{name: v for (name, _), v in zip(FIELDS, values)})


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

    def activate(self, call, msisdn, hrn, channel_ref, beneficiary):
        """Run ActivateVoucher; the core writes the call's audit row with the activation.

        @return: a Deferred firing with the answer's field values in the
            order of L{protocols.soap.fastxml.FIELDS} (see L{result_model}).
        """
        client = call.client.name
        req = ActivationRequest(msisdn=msisdn, hrn=hrn, channel=Channel.SOAP,
                                channel_ref=channel_ref, beneficiary=beneficiary or None,
                                source=client,
                                idempotency_key=request_key("soap", channel_ref, client,
                                                            msisdn, hrn))
        call.target = msisdn
        detail = {"channel_ref": channel_ref}
        if beneficiary:
            detail["beneficiary"] = beneficiary
        entry = AuditEntry(at=call.at, actor="soap:%s" % client, action="soap.ActivateVoucher",
                           target=msisdn[:256] or None, origin=call.address, detail=detail)
        call.audited = True
        d = self.activation.activate(req, audit=entry)

        def render(r):
            call.detail = {"code": int(r.code), "txn_id": r.txn_id, "channel_ref": channel_ref,
                           "serial": r.serial}
            if beneficiary:
                call.detail["beneficiary"] = beneficiary
            return (int(r.code), r.name, with_reward(r.text, "", r), r.txn_id, r.msisdn,
                    r.account, r.serial, r.amount, r.currency, r.validity_days, r.balance,
                    to_datetime(r.new_expiry), to_datetime(r.unbar_at))
        return d.addCallback(render)

    def activate_voucher(self, call, msisdn, hrn, channel_ref, beneficiary):
        """@return: a Deferred firing with an L{ActivateVoucherResult}."""
        return self.activate(call, msisdn, hrn, channel_ref, beneficiary).addCallback(
            result_model)

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
