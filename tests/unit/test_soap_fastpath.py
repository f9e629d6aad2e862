"""The ActivateVoucher fast path against spyne: on generated requests and mutated ones
(arguments missing, repeated, out of order, in another namespace, with attributes,
children, stray text, comments, CDATA, lengths around the schema's limits; other
operations, other envelopes), whenever the fast path reads a request, spyne reads the
same operation and the same values; and it reads every plain request spyne accepts."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from spyne import MethodContext  # noqa: E402
from spyne.model.fault import Fault  # noqa: E402
from spyne.protocol import ProtocolBase  # noqa: E402

from protocols.soap.app import make_application  # noqa: E402
from protocols.soap.codec import parse_envelope  # noqa: E402
from protocols.soap.errors import SoapFault  # noqa: E402
from protocols.soap.fastpath import activate_voucher_args  # noqa: E402
from protocols.soap.server import InProcessServer  # noqa: E402

PROPERTY = settings(max_examples=400, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

APP = make_application()
SERVER = InProcessServer(APP)
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS = "urn:ivoms:soap:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
ARGS = ("msisdn", "hrn", "channelReference", "beneficiary")
LIMITS = {"msisdn": 32, "hrn": 64, "channelReference": 128, "beneficiary": 32}


def spyne_reads(body: bytes):
    """What spyne makes of the request: ("ok", operation, values), ("fault", code), or
    ("error", exception type) where spyne fails otherwise (the resource answers a
    Server fault)."""
    root, ids = parse_envelope(body)
    ctx = MethodContext(SERVER, MethodContext.SERVER)
    ctx.in_document = (root, ids)
    protocol = APP.in_protocol
    try:
        protocol.decompose_incoming_envelope(ctx, ProtocolBase.REQUEST)
        ctx = protocol.generate_method_contexts(ctx)[0]
        SERVER.get_in_object(ctx)
    except Fault as e:
        return ("fault", str(e.faultcode))
    except Exception as e:  # noqa: BLE001 - spyne's own failures are outcomes here
        return ("error", type(e).__name__)
    if ctx.in_error is not None:
        return ("fault", str(ctx.in_error.faultcode))
    name = ctx.descriptor.name
    if name != "ActivateVoucher":
        return ("ok", name, None)
    return ("ok", name, tuple(getattr(ctx.in_object, a) for a in ARGS))


def fast_reads(body: bytes):
    root, ids = parse_envelope(body)
    return activate_voucher_args(root, ids)


# -- generated requests ---------------------------------------------------------------

XML_CHARS = st.characters(blacklist_categories=("Cs",),
                          blacklist_characters="\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c"
                          "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e"
                          "\x1f\ufffe\uffff")
PLAIN = st.sampled_from("0123456789 +-abcXYZž日\U0001f600")


def escape(text: str, refs: bool) -> str:
    """C{text} as XML character data (C{\\r} as a reference, else the parser makes it C{\\n})."""
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = out.replace("\r", "&#13;")
    return out.replace("0", "&#48;") if refs else out


@st.composite
def values(draw, name, wrong_length=False):
    """Text of an argument: a length within the schema's limits (or just outside them),
    mostly plain characters, some awkward ones."""
    top = LIMITS[name]
    sizes = [0, top + 1, top + 2] if wrong_length else [1, 2, 12, top - 1, top]
    size = draw(st.sampled_from(sizes))
    alphabet = (PLAIN | XML_CHARS) if draw(st.booleans()) else PLAIN
    text = draw(st.text(alphabet=alphabet, min_size=size, max_size=size))
    if size and draw(st.integers(0, 9)) == 0:
        lead = draw(st.sampled_from([" ", "\t", "\n", "&", "<", "]"]))
        text = lead + text[1:]
    return text


ARG_MUTATIONS = ["length", "cdata", "comment", "nil", "nil-empty", "attr", "child", "empty",
                 "selfclose", "unqualified", "otherns", "tail", "blank-tail", "refs"]
LIST_MUTATIONS = ["drop", "repeat", "swap", "extra", "add-optional"]
FRAME_MUTATIONS = ["other-op", "method-otherns", "method-unqualified", "method-case",
                   "method-attr", "method-nil", "method-text", "method-blank", "body-extra",
                   "body-blank", "body-first", "two-bodies", "no-body", "soap12",
                   "extra-child", "xml-id", "wsse", "empty-header", "no-decl"]


def argument(draw, name, mutation):
    """One argument element as XML text, with C{mutation} (or None) applied."""
    text = draw(values(name, wrong_length=mutation == "length"))
    body = escape(text, mutation == "refs")
    tag = "t:" + name
    attrs = ""
    if mutation == "cdata" and "]]>" not in text:
        body = "<![CDATA[%s]]>" % text
    elif mutation == "comment" and len(body) > 1:
        body = body[:1] + "<!-- c -->" + body[1:]
    elif mutation == "nil":
        attrs = ' xsi:nil="true"'
    elif mutation == "nil-empty":
        attrs, body = ' xsi:nil="true"', ""
    elif mutation == "attr":
        attrs = ' lang="en"'
    elif mutation == "child":
        body = body + "<t:x>1</t:x>"
    elif mutation == "empty":
        body = ""
    elif mutation == "unqualified":
        tag = name
    elif mutation == "otherns":
        tag = "o:" + name
    elif mutation == "selfclose":
        return "<%s/>" % tag
    el = "<%s%s>%s</%s>" % (tag, attrs, body, tag)
    if mutation == "tail":
        el += "stray"
    elif mutation == "blank-tail":
        el += draw(st.sampled_from([" ", "\n  ", "\t"]))
    return el


@st.composite
def requests(draw):
    """An ActivateVoucher envelope with none, one or two mutations of its arguments,
    their list or its frame."""
    count = draw(st.sampled_from([0, 1, 1, 1, 2]))
    plan = set(draw(st.lists(st.sampled_from(
        ["arg"] * 3 + ["list"] + ["frame"] * 2), min_size=count, max_size=count)))
    present = [a for a in ARGS if a in ("msisdn", "hrn") or draw(st.booleans())]
    hit = draw(st.sampled_from(present)) if "arg" in plan else None
    args = [argument(draw, a, draw(st.sampled_from(ARG_MUTATIONS)) if a == hit else None)
            for a in present]
    shuffle = draw(st.sampled_from(LIST_MUTATIONS)) if "list" in plan else None
    if shuffle == "drop":
        del args[draw(st.integers(0, len(args) - 1))]
    elif shuffle == "repeat":
        i = draw(st.integers(0, len(args) - 1))
        args.insert(i, args[i])
    elif shuffle == "swap" and len(args) > 1:
        i = draw(st.integers(0, len(args) - 2))
        args[i], args[i + 1] = args[i + 1], args[i]
    elif shuffle == "extra":
        args.insert(draw(st.integers(0, len(args))), "<t:serial>5</t:serial>")
    elif shuffle == "add-optional":
        args.append(argument(draw, "beneficiary", None))
    frame = draw(st.sampled_from(FRAME_MUTATIONS)) if "frame" in plan else None
    method, mattrs, lead = "t:ActivateVoucher", "", ""
    if frame == "method-otherns":
        method = "o:ActivateVoucher"
    elif frame == "method-unqualified":
        method = "ActivateVoucher"
    elif frame == "method-case":
        method = "t:activateVoucher"
    elif frame == "method-attr":
        mattrs = ' a="b"'
    elif frame == "method-nil":
        mattrs = ' xsi:nil="%s"' % draw(st.sampled_from(["true", "false"]))
    elif frame == "method-text":
        lead = "text"
    elif frame == "method-blank":
        lead = draw(st.sampled_from([" ", "\n    "]))
    inner = "<%s%s>%s%s</%s>" % (method, mattrs, lead, "".join(args), method)
    if frame == "other-op":
        inner = "<t:GetVoucherStatus><t:serial>%d</t:serial></t:GetVoucherStatus>" \
            % draw(st.integers(0, 99))
    elif frame == "body-extra":
        inner += "<t:x/>"
    elif frame == "body-blank":
        inner = " " + inner + "\n"
    header = draw(st.sampled_from(["", "<s:Header/>"]))
    if frame == "wsse":
        header = ('<s:Header><wsse:Security xmlns:wsse="%s"><wsse:UsernameToken><wsse:Username>'
                  'shop</wsse:Username><wsse:Password>pw</wsse:Password></wsse:UsernameToken>'
                  '</wsse:Security></s:Header>' % WSSE)
    elif frame == "xml-id":
        header = '<s:Header><t:trace xml:id="h1">x</t:trace></s:Header>'
    elif frame == "empty-header":
        header = "<s:Header></s:Header>"
    body = "<s:Body>%s</s:Body>" % inner
    env_ns = ENV
    if frame == "body-first":
        parts = body + header
    elif frame == "two-bodies":
        parts = header + body + body
    elif frame == "no-body":
        parts = header
    elif frame == "extra-child":
        parts = header + body + "<t:after/>"
    else:
        parts = header + body
        if frame == "soap12":
            env_ns = "http://www.w3.org/2003/05/soap-envelope"
    decl = "" if frame == "no-decl" else '<?xml version="1.0" encoding="UTF-8"?>'
    xml = ('%s<s:Envelope xmlns:s="%s" xmlns:t="%s" xmlns:o="urn:other" xmlns:xsi="%s">%s'
           '</s:Envelope>' % (decl, env_ns, NS, XSI, parts))
    return xml.encode("utf-8")


def _parses(body: bytes) -> bool:
    try:
        parse_envelope(body)
    except SoapFault:
        return False
    return True


@PROPERTY
@given(requests())
def test_what_the_fast_path_reads_spyne_reads_alike(body):
    assume(_parses(body))
    fast = fast_reads(body)
    reference = spyne_reads(body)
    if fast is not None:
        assert reference == ("ok", "ActivateVoucher", fast)


@st.composite
def plain_requests(draw):
    """The common shape, nothing mutated; values of any length and characters."""
    present = [a for a in ARGS if a in ("msisdn", "hrn") or draw(st.booleans())]
    args = "".join("<t:%s>%s</t:%s>" % (
        a, escape(draw(values(a, wrong_length=draw(st.integers(0, 4)) == 0)), False), a)
        for a in present)
    header = draw(st.sampled_from(["", "<s:Header/>"]))
    return ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="%s" xmlns:t="%s">%s'
            '<s:Body><t:ActivateVoucher>%s</t:ActivateVoucher></s:Body></s:Envelope>'
            % (ENV, NS, header, args)).encode("utf-8")


@PROPERTY
@given(plain_requests())
def test_the_fast_path_reads_every_plain_request_spyne_accepts(body):
    assume(_parses(body))
    reference = spyne_reads(body)
    fast = fast_reads(body)
    if reference[0] == "ok":
        assert fast is not None and reference == ("ok", "ActivateVoucher", fast)
    else:
        assert fast is None


def test_the_common_envelopes_take_the_fast_path():
    bench = (b'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="' + ENV.encode()
             + b'" xmlns:t="urn:ivoms:soap:1"><s:Body><t:ActivateVoucher><t:msisdn>38165001'
             b'0001</t:msisdn><t:hrn>12345678901234</t:hrn><t:channelReference>b-1-1'
             b'</t:channelReference></t:ActivateVoucher></s:Body></s:Envelope>')
    assert fast_reads(bench) == ("381650010001", "12345678901234", "b-1-1", None)
    # as zeep writes it, WS-Security header included, pretty-printed
    zeep = ('<soap-env:Envelope xmlns:soap-env="%s">\n  <soap-env:Header>\n    <wsse:Security '
            'xmlns:wsse="%s">\n      <wsse:UsernameToken><wsse:Username>shop1</wsse:Username>'
            '<wsse:Password>x</wsse:Password></wsse:UsernameToken>\n    </wsse:Security>\n'
            '  </soap-env:Header>\n  <soap-env:Body>\n    <ns0:ActivateVoucher xmlns:ns0="%s">'
            '\n      <ns0:msisdn>0641234567</ns0:msisdn>\n      <ns0:hrn>1234 5678-901234'
            '</ns0:hrn>\n      <ns0:beneficiary>0649999999</ns0:beneficiary>\n    '
            '</ns0:ActivateVoucher>\n  </soap-env:Body>\n</soap-env:Envelope>'
            % (ENV, WSSE, NS)).encode()
    assert fast_reads(zeep) == ("0641234567", "1234 5678-901234", None, "0649999999")
    assert spyne_reads(zeep) == ("ok", "ActivateVoucher", fast_reads(zeep))
