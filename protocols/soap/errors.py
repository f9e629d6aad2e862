"""SOAP faults the channel answers with, each carrying its HTTP status (one table).

Outcomes of an activation are never faults: they are result codes in the
response body (DESIGN §4).  A fault means the request itself was wrong or
could not be processed.  SOAP 1.1 over HTTP (SOAP 1.1 §6.2) answers a fault
with HTTP 500; we use 401 for authentication and 413 for an oversized body
so that HTTP-level tooling sees them too.
"""

from __future__ import annotations

from spyne.model.fault import Fault

#: faultcode -> (HTTP status, fixed faultstring or None to keep the detail)
FAULTS = {
    "Client.Authentication": (401, "authentication failed"),
    "Client.RequestTooLarge": (413, None),
    "Client.UnsupportedMediaType": (415, None),
    "Client.XMLSyntaxError": (500, None),
    "Client.DTDForbidden": (500, "DTDs and entity declarations are not accepted"),
    "Client.SchemaValidationError": (500, None),
    "Client.ValidationError": (500, None),
    "Client.ResourceNotFound": (500, None),
    "Client.InvalidArgument": (500, None),
    "Server": (500, "internal error"),
    "Server.Busy": (503, None),
}


class SoapFault(Fault):
    """A spyne L{Fault} from the table above.

    @ivar http_status: the HTTP status the fault is sent with.
    @ivar reason: why (for the audit row); never sent when it differs from
        the faultstring, so a client learns nothing about which credential
        check failed.
    """

    def __init__(self, faultcode: str, faultstring: str = "", *, reason: str | None = None):
        status, fixed = FAULTS.get(faultcode, (500, None))
        super().__init__(faultcode, fixed or faultstring or faultcode)
        self.http_status = status
        self.reason = reason or faultstring or faultcode


def http_status_of(fault) -> int:
    """The HTTP status for any spyne fault: ours carry it, spyne's own get 500."""
    return getattr(fault, "http_status", 500)
