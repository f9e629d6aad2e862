"""UCIP XML-RPC messages: build UpdateBalanceAndDate, parse its answer (pure, no I/O).

Documents are written and read by L{billing.ucip.wire}, which reads every
document exactly as the standard library's C{xmlrpc.client.loads} does
(and hands it anything outside UCIP's subset).  UCIP's
date type is XML-RPC C{dateTime.iso8601} with an offset:
C{YYYYMMDDTHH:MM:SS+ZZZZ} (e.g. C{20261205T15:02:55+0000}).
"""
from __future__ import annotations

import calendar
import datetime
import hashlib
import re
import time
import xmlrpc.client

from billing.ucip import wire

METHOD = "UpdateBalanceAndDate"
_MAX_ORIGIN_ID = 10 ** 19   # at most 19 digits: within UCIP's 20-digit field
_UCIP_DATE = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d):(\d\d):(\d\d)(?:([+-])(\d\d)(\d\d))?\Z")


class UcipSyntaxError(ValueError):
    """An answer that is not a UCIP XML-RPC method response."""


def origin_transaction_id(txn_id: str) -> str:
    """The numeric C{originTransactionID} for an iVOMS transaction id.

    The first 8 bytes of SHA-256(txn_id), as an integer modulo 10^19, in
    decimal: the same id every time it is built, at most 19 digits.

    @param txn_id: the idempotency key (iVOMS transaction id).
    @return: a string of 1 to 19 digits.
    """
    h = hashlib.sha256(txn_id.encode("utf-8")).digest()
    return str(int.from_bytes(h[:8], "big") % _MAX_ORIGIN_ID)


#: The last second formatted and its text: every credit of one second
#: carries the same originTimeStamp.
_last_stamp = [None, ""]


def format_timestamp(epoch_seconds: float) -> str:
    """Epoch seconds -> C{YYYYMMDDTHH:MM:SS+0000} (UTC)."""
    second = int(epoch_seconds)
    if _last_stamp[0] != second:
        _last_stamp[1] = "%04d%02d%02dT%02d:%02d:%02d+0000" % time.gmtime(second)[:6]
        _last_stamp[0] = second
    return _last_stamp[1]


def parse_timestamp(text: str) -> int:
    """C{YYYYMMDDTHH:MM:SS+ZZZZ} (or without offset: UTC) -> epoch ms.

    @raise UcipSyntaxError: not that form.
    """
    text = str(text)
    m = _UCIP_DATE.match(text)
    if m is not None:
        y, mo, d, h, mi, s, sign, oh, om = m.groups()
        if 1 <= int(mo) <= 12 and 1 <= int(d) <= calendar.monthrange(int(y), int(mo))[1] \
                and int(h) < 24 and int(mi) < 60 and int(s) < 60:
            t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
            if sign:
                off = int(oh) * 3600 + int(om) * 60
                t -= off if sign == "+" else -off
            return t * 1000
    for fmt in ("%Y%m%dT%H:%M:%S%z", "%Y%m%dT%H:%M:%S"):
        try:
            t = datetime.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return int(t.timestamp() * 1000)
    raise UcipSyntaxError("bad UCIP date %r" % text[:40])


def update_request(fields: dict) -> bytes:
    """The UpdateBalanceAndDate method call for one struct of C{fields}.

    Values of type C{datetime} become C{dateTime.iso8601} in UCIP's form;
    everything else is encoded as given (strings, ints, lists of structs).

    @return: the XML document, UTF-8.
    """
    return encode_call(METHOD, fields)


def encode_call(method: str, fields: dict) -> bytes:
    """An XML-RPC C{methodCall} of C{method} with one struct parameter."""
    if any(isinstance(v, datetime.datetime) for v in fields.values()):
        fields = {k: (xmlrpc_date(v.timestamp()) if isinstance(v, datetime.datetime) else v)
                  for k, v in fields.items()}
    return wire.dumps_call(method, fields)


def decode_call(body: bytes) -> tuple[str, dict]:
    """(method, struct) of a method call (the simulator's side).

    @raise UcipSyntaxError: not a call with one struct parameter.
    """
    try:
        params, method = wire.loads(body)
    except Exception as e:   # expat errors and others: all mean garbage
        raise UcipSyntaxError("not XML-RPC: %s" % e) from None
    if not method or len(params) != 1 or not isinstance(params[0], dict):
        raise UcipSyntaxError("UCIP calls take one struct")
    return method, params[0]


def encode_response(fields: dict) -> bytes:
    """A C{methodResponse} with one struct (the simulator's side)."""
    return wire.dumps_response(fields)


def decode_response(body: bytes) -> dict:
    """The struct of a method response.

    @return: the struct; a fault becomes C{{"fault": code, "faultString": s}}.
    @raise UcipSyntaxError: not a method response holding a struct.
    """
    try:
        params, _ = wire.loads(body)
    except xmlrpc.client.Fault as f:
        return {"fault": int(f.faultCode), "faultString": str(f.faultString)}
    except Exception as e:
        raise UcipSyntaxError("not XML-RPC: %s" % e) from None
    if len(params) != 1 or not isinstance(params[0], dict):
        raise UcipSyntaxError("UCIP answers hold one struct")
    struct = params[0]
    code = struct.get("responseCode")
    if not isinstance(code, int) or isinstance(code, bool):
        raise UcipSyntaxError("UCIP answer without an integer responseCode")
    return struct


def xmlrpc_date(epoch_seconds: float) -> xmlrpc.client.DateTime:
    """A C{dateTime.iso8601} value in UCIP's form."""
    return xmlrpc.client.DateTime(format_timestamp(epoch_seconds))


def xmlrpc_fault(code: int, text: str) -> bytes:
    """A C{methodResponse} holding a fault (the simulator's side)."""
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, text), methodresponse=True,
                               encoding="utf-8").encode("utf-8")
