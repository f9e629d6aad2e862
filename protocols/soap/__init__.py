"""SOAP 1.1 channel (spyne, WSDL): ActivateVoucher, GetTransactionStatus, GetVoucherStatus."""
