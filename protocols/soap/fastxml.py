"""The ActivateVoucher response written from a template: the octets spyne's Soap11 writes.

spyne builds an lxml tree of the whole envelope for every answer and walks
its models' class attributes for each field. The answer to ActivateVoucher
is always the same envelope around one flat ActivateVoucherResult, so this
module writes it from a template, field by field in the schema's order,
leaving out the fields that are None, as spyne does. Anything it cannot
write exactly as spyne would (a value of another type, text with characters
XML cannot carry or that lxml writes as character references) makes it step
aside: the caller then lets spyne serialise.
"""
from __future__ import annotations

import datetime
import re

_HEAD = (b"<?xml version='1.0' encoding='UTF-8'?>\n"
         b'<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/" '
         b'xmlns:tns="urn:ivoms:soap:1"><soap11env:Body><tns:ActivateVoucherResponse>'
         b"<tns:ActivateVoucherResult>")
_TAIL = (b"</tns:ActivateVoucherResult></tns:ActivateVoucherResponse></soap11env:Body>"
         b"</soap11env:Envelope>")
#: (field, kind) in the schema's order (protocols.soap.types.ActivateVoucherResult).
FIELDS = (("resultCode", int), ("resultName", str), ("resultText", str),
          ("transactionId", str), ("msisdn", str), ("account", str), ("serial", int),
          ("amount", int), ("currency", str), ("validityDays", int), ("balance", int),
          ("newExpiry", datetime.datetime), ("unbarTime", datetime.datetime))
_REQUIRED = frozenset(("resultCode", "resultName", "resultText"))
# characters lxml refuses, or writes other than as themselves (\r as &#13;)
_AWKWARD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_PLAN = tuple((name, kind, ("<tns:%s>" % name).encode(), ("</tns:%s>" % name).encode(),
               name in _REQUIRED) for name, kind in FIELDS)
_ZERO = datetime.timedelta(0)


class NotWritable(Exception):
    """A value this template does not write exactly as spyne: let spyne do it."""


#: texts written before (result names and texts, currencies repeat), at most _TEXTS_MAX
_TEXTS: dict = {}
_TEXTS_MAX = 1024


def _text(value: str) -> bytes:
    if value.isascii() and value.isalnum():         # ids, numbers: nothing to escape
        return value.encode("ascii")
    done = _TEXTS.get(value)
    if done is None:
        if _AWKWARD.search(value):
            raise NotWritable
        done = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        done = done.encode("utf-8")
        if len(_TEXTS) < _TEXTS_MAX:
            _TEXTS[value] = done
    return done


def activate_voucher_response(result) -> bytes:
    """The SOAP envelope answering ActivateVoucher with C{result} (an
    ActivateVoucherResult or anything with its attributes).

    @raise NotWritable: a field this template does not write as spyne would.
    """
    return activate_voucher_response_values([getattr(result, name, None) for name, _ in FIELDS])


def activate_voucher_response_values(values) -> bytes:
    """The SOAP envelope answering ActivateVoucher with the result whose fields
    are C{values}, in L{FIELDS} order (None for a field left out).

    @raise NotWritable: a field this template does not write as spyne would.
    """
    parts = [_HEAD]
    for (name, kind, opening, closing, required), value in zip(_PLAN, values):
        if value is None:
            if required:
                raise NotWritable
            continue
        if kind is int:
            if type(value) is not int:
                raise NotWritable
            body = b"%d" % value
        elif kind is str:
            if type(value) is not str:
                raise NotWritable
            body = _text(value)
        else:
            if type(value) is not datetime.datetime or value.utcoffset() != _ZERO:
                raise NotWritable
            body = value.isoformat().encode()
        parts.append(opening)
        parts.append(body)
        parts.append(closing)
    parts.append(_TAIL)
    return b"".join(parts)
