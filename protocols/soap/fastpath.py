"""The common ActivateVoucher request read straight from the parsed envelope, without spyne.

spyne turns every request into a C{MethodContext}, validates the body
against the WSDL's schema with lxml and builds its argument objects: most of
a call's cost on this channel.  Nearly every request has one shape: an
envelope holding an optional header and a body, the body holding one
C{ActivateVoucher} whose children are C{msisdn}, C{hrn}, optionally
C{channelReference} and C{beneficiary}, in that order, each plain text of an
allowed length.  L{activate_voucher_args} reads exactly that shape and
answers None for anything else (another operation, an attribute anywhere in
the body's element, an element out of order or repeated, text where the
schema allows none, a length out of range, SOAP encoding references): the
caller then lets spyne parse, validate and fault as always.  For the shape
it reads, it gives the values spyne gives (tested for generated and mutated
requests in C{tests/unit/test_soap_fastpath.py}).

Pure: an lxml tree in, a tuple or None out.
"""
from __future__ import annotations

from protocols.soap.codec import SOAP11_ENV
from protocols.soap.types import NS

_ENVELOPE = "{%s}Envelope" % SOAP11_ENV
_HEADER = "{%s}Header" % SOAP11_ENV
_BODY = "{%s}Body" % SOAP11_ENV
_METHOD = "{%s}ActivateVoucher" % NS
#: (tag, shortest, longest) of the arguments, in the schema's order (protocols.soap.app:
#: Msisdn, Hrn, ChannelRef, Msisdn); the first two are required
ARGS = (("{%s}msisdn" % NS, 1, 32), ("{%s}hrn" % NS, 1, 64),
        ("{%s}channelReference" % NS, 1, 128), ("{%s}beneficiary" % NS, 1, 32))
_XML_SPACE = " \t\r\n"


def _blank(text) -> bool:
    return text is None or not text.strip(_XML_SPACE)


def activate_voucher_args(root, ids=None):
    """C{(msisdn, hrn, channelReference, beneficiary)} of an ActivateVoucher request in
    the common shape (absent optional arguments are None), or None to let spyne read it.

    @param root: the envelope element (L{protocols.soap.codec.parse_envelope}).
    @param ids: the document's xml ids from the same parse; any id means spyne
        must resolve references first.
    """
    if ids or root.tag != _ENVELOPE:
        return None
    parts = list(root)
    if len(parts) == 2 and parts[0].tag == _HEADER:
        body = parts[1]
    elif len(parts) == 1:
        body = parts[0]
    else:
        return None
    if body.tag != _BODY or len(body) != 1:
        return None
    method = body[0]
    if method.tag != _METHOD or method.attrib or not _blank(method.text):
        return None
    values = [None, None, None, None]
    i = 0
    for el in method:
        while i < 4 and ARGS[i][0] != el.tag:     # skip the arguments left out
            i += 1
        if i == 4 or el.attrib or len(el) or not _blank(el.tail):
            return None
        text = el.text
        if text is None or not ARGS[i][1] <= len(text) <= ARGS[i][2]:
            return None
        values[i] = text
        i += 1
    if values[0] is None or values[1] is None:
        return None
    return tuple(values)
