"""The SOAP operations (spyne service) and the spyne Application that publishes them.

Each operation forwards to the call's handlers (C{ctx.udc}, a
L{protocols.soap.server.SoapCall}) and returns their Deferred; the resource
in L{protocols.soap.server} waits for it and serialises the result.  Method
and argument names are the WSDL's, hence CamelCase.
"""

from __future__ import annotations

from spyne import Application, Long, ServiceBase, rpc
from spyne.protocol.soap import Soap11

from protocols.soap.codec import HardenedSoap11
from protocols.soap.types import (
    NS, ActivateVoucherResult, ChannelRef, Hrn, Msisdn, TransactionStatus, TxnId, VoucherStatus,
)

_required = dict(min_occurs=1, nillable=False)


class IvomsSoapService(ServiceBase):
    """ActivateVoucher, GetTransactionStatus, GetVoucherStatus (DESIGN §5)."""

    @rpc(Msisdn.customize(**_required), Hrn.customize(**_required), ChannelRef, Msisdn,
         _returns=ActivateVoucherResult)
    def ActivateVoucher(ctx, msisdn, hrn, channelReference, beneficiary):  # noqa: N802,N803
        """Consume the voucher with this HRN and credit msisdn (or beneficiary).
        The outcome is a result code (DESIGN §4), never a fault."""
        return ctx.udc.handlers.activate_voucher(ctx.udc, msisdn, hrn, channelReference,
                                                 beneficiary)

    @rpc(TxnId, ChannelRef, _returns=TransactionStatus)
    def GetTransactionStatus(ctx, transactionId, channelReference):  # noqa: N802,N803
        """A transaction by its id or by the client's channel reference (the latest)."""
        return ctx.udc.handlers.transaction_status(ctx.udc, transactionId, channelReference)

    @rpc(Long(ge=0, **_required), _returns=VoucherStatus)
    def GetVoucherStatus(ctx, serial):  # noqa: N802
        """A voucher's state, type and expiry by serial number (never its HRN)."""
        return ctx.udc.handlers.voucher_status(ctx.udc, serial)


def make_application() -> Application:
    """The spyne Application: SOAP 1.1 in (hardened parser, lxml schema
    validation) and out."""
    return Application([IvomsSoapService], tns=NS, name="IvomsService",
                       in_protocol=HardenedSoap11(validator="lxml"),
                       out_protocol=Soap11())
