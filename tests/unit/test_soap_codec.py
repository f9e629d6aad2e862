"""SOAP XML hardening: DOCTYPE/entities refused, no file or network access, clean syntax faults."""
from __future__ import annotations

import pytest

from protocols.soap.codec import header_elements, parse_envelope
from protocols.soap.errors import SoapFault, http_status_of

ENV = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
       '<s:Header><h:x xmlns:h="urn:h"/></s:Header><s:Body>%s</s:Body></s:Envelope>')


def _fault(data):
    with pytest.raises(SoapFault) as e:
        parse_envelope(data)
    return e.value


def test_plain_envelope_parses():
    root, ids = parse_envelope((ENV % "<a/>").encode())
    assert root.tag.endswith("Envelope") and ids == {}
    assert [el.tag for el in header_elements(root)] == ["{urn:h}x"]


def test_xxe_is_refused_before_reading_any_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://%s">]>' % secret
            + ENV % "<a>&x;</a>").encode()
    f = _fault(data)
    assert f.faultcode == "Client.DTDForbidden" and "TOP-SECRET" not in f.faultstring


def test_billion_laughs_is_refused():
    data = ('<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            + ENV % "<a>&b;</a>").encode()
    assert _fault(data).faultcode == "Client.DTDForbidden"


def test_doctype_in_utf16_is_caught_after_parsing(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    text = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://%s">]>'
            % secret + ENV % "<a>&x;</a>")
    f = _fault(text.encode("utf-16"))
    assert f.faultcode == "Client.DTDForbidden"


@pytest.mark.parametrize("data", [b"", b"not xml", b"<s:Envelope", b"<a></b>", b"\xff\xfe\x00"])
def test_malformed_xml_is_a_syntax_fault(data):
    f = _fault(data)
    assert f.faultcode == "Client.XMLSyntaxError" and http_status_of(f) == 500


def test_fault_http_statuses():
    assert http_status_of(SoapFault("Client.Authentication", reason="x")) == 401
    assert http_status_of(SoapFault("Client.RequestTooLarge")) == 413
    assert SoapFault("Client.Authentication", reason="wrong password").faultstring == \
        "authentication failed"
