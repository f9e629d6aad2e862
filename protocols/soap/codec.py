"""Hardened parsing of SOAP 1.1 request envelopes (DESIGN §10: bad XML gets a clear fault).

Pure: bytes in, an lxml tree out, no reactor.  What is refused:

- bodies over the configured size (checked by the resource before parsing);
- any DOCTYPE, hence any DTD or entity declaration (so no external entity,
  XXE, and no entity expansion "billion laughs");
- network access and external entity resolution in the parser itself, even
  if a DOCTYPE slipped past the byte check in another encoding;
- trees deeper than libxml2's default limit (C{huge_tree} stays off).

L{HardenedSoap11} is spyne's SOAP 1.1 protocol with this parser in place of
its own; everything else (decomposition, schema validation, serialisation)
is spyne's.
"""

from __future__ import annotations

from lxml import etree
from spyne.protocol.soap import Soap11

from protocols.soap.errors import SoapFault

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

_PARSER_OPTIONS = dict(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=True,
)
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


def parse_envelope(data: bytes):
    """Parse a request body into C{(root element, xml ids)} as spyne expects.

    @raise SoapFault: C{Client.DTDForbidden} for a DOCTYPE or entity
        declaration; C{Client.XMLSyntaxError} for anything that is not
        well-formed XML (the message is lxml's, without the document).
    """
    if any(f in data for f in _FORBIDDEN):
        raise SoapFault("Client.DTDForbidden", reason="DOCTYPE in request")
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        root, ids = etree.XMLID(data, parser)
    except etree.XMLSyntaxError as e:
        raise SoapFault("Client.XMLSyntaxError", _first_line(str(e)))
    except ValueError as e:      # e.g. a str with an encoding declaration
        raise SoapFault("Client.XMLSyntaxError", _first_line(str(e)))
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SoapFault("Client.DTDForbidden", reason="DOCTYPE in request (non-ASCII encoding)")
    return root, ids


def header_elements(root) -> list:
    """The children of the envelope's C{soap:Header}, or an empty list."""
    header = root.find("{%s}Header" % SOAP11_ENV)
    return list(header) if header is not None else []


def _first_line(text: str) -> str:
    return (text.splitlines() or [""])[0][:200]


class HardenedSoap11(Soap11):
    """spyne's L{Soap11} reading request documents with L{parse_envelope}.

    The resource hands it the body (as C{ctx.in_string}) after checking the
    method, media type and size itself, so spyne's own HTTP checks, which
    compare C{request.method} with a str, never run.
    """

    def create_in_document(self, ctx, charset=None):
        ctx.in_document = parse_envelope(b"".join(ctx.in_string))
