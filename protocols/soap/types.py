"""The SOAP messages' types (spyne models): what the WSDL publishes and the schema validates.

Names on the wire are lowerCamelCase, as SOAP clients expect.  Amounts are
integers of minor units with the ISO 4217 currency beside them; times are
xs:dateTime in UTC.  No type carries an HRN back.
"""

from __future__ import annotations

from spyne import Boolean, ComplexModel, DateTime, Integer, Long, Unicode

NS = "urn:ivoms:soap:1"

Msisdn = Unicode(max_len=32, min_len=1)
Hrn = Unicode(max_len=64, min_len=1)
ChannelRef = Unicode(max_len=128, min_len=1)
TxnId = Unicode(max_len=32, min_len=1, pattern="[0-9a-f]{1,32}")


class ActivateVoucherResult(ComplexModel):
    """The outcome of one activation: always a result code, never a fault."""

    __namespace__ = NS
    _type_info = [
        ("resultCode", Integer(min_occurs=1, nillable=False)),
        ("resultName", Unicode(min_occurs=1, nillable=False)),
        ("resultText", Unicode(min_occurs=1, nillable=False)),
        ("transactionId", Unicode),
        ("msisdn", Unicode),
        ("account", Unicode),
        ("serial", Long),
        ("amount", Long),
        ("currency", Unicode),
        ("validityDays", Integer),
        ("balance", Long),
        ("newExpiry", DateTime),
        ("unbarTime", DateTime),
    ]


class TransactionStatus(ComplexModel):
    """A transaction as recorded; C{found} is false when there is none (for this client)."""

    __namespace__ = NS
    _type_info = [
        ("found", Boolean(min_occurs=1, nillable=False)),
        ("transactionId", Unicode),
        ("state", Unicode),                 # pending | success | failed
        ("resultCode", Integer),
        ("resultName", Unicode),
        ("resultText", Unicode),
        ("channel", Unicode),
        ("channelReference", Unicode),
        ("msisdn", Unicode),
        ("account", Unicode),
        ("serial", Long),
        ("amount", Long),
        ("currency", Unicode),
        ("validityDays", Integer),
        ("startedAt", DateTime),
        ("finishedAt", DateTime),
    ]


class VoucherStatus(ComplexModel):
    """A voucher's state, type and expiry by serial; never its HRN."""

    __namespace__ = NS
    _type_info = [
        ("found", Boolean(min_occurs=1, nillable=False)),
        ("serial", Long),
        ("state", Unicode),     # generated | available | reserved | used | blocked | expired
        ("voucherType", Unicode),
        ("batchId", Integer),
        ("expiry", DateTime),
    ]
