"""The UCIP XML-RPC writer and reader against the standard library (pure)."""
import random
import xmlrpc.client

import pytest

from billing.ucip import wire


def _random_value(rng, depth=0):
    kind = rng.choice(["str", "int", "bool", "date", "float"] + (["dict", "list"] if depth < 3 else []))
    if kind == "str":
        return "".join(rng.choice("ab <>&;é\u20ac \n\t0") for _ in range(rng.randint(0, 8)))
    if kind == "int":
        return rng.randint(-2 ** 31, 2 ** 31 - 1)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.uniform(-1e6, 1e6)
    if kind == "date":
        return xmlrpc.client.DateTime("20261205T15:02:%02d+0000" % rng.randint(0, 59))
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {"k%d%s" % (i, rng.choice(["", "&", " x"])): _random_value(rng, depth + 1)
            for i in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(200))
def test_written_documents_read_the_same_by_both_readers(seed):
    rng = random.Random(seed)
    struct = {"f%d" % i: _random_value(rng) for i in range(rng.randint(1, 6))}
    for body in (wire.dumps_call("UpdateBalanceAndDate", struct), wire.dumps_response(struct)):
        expected = xmlrpc.client.loads(body)
        assert expected[0] == (struct,)
        assert wire.loads(body) == expected
    # and what the standard library writes reads the same too
    std = xmlrpc.client.dumps((struct,), methodresponse=True, encoding="utf-8").encode("utf-8")
    assert wire.loads(std) == xmlrpc.client.loads(std)
    std = xmlrpc.client.dumps((struct,), "M", encoding="utf-8").encode("utf-8")
    assert wire.loads(std) == xmlrpc.client.loads(std)


@pytest.mark.parametrize("body", [
    b"<?xml version='1.0'?><methodResponse><params><param><value>  </value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params><param><value><string/></value></param></params></methodResponse>",
    b"<methodResponse><params><param><value><struct><member><name> a </name><value>x &amp; y"
    b"</value></member></struct></value></param></params></methodResponse>",
    b"<methodResponse><params><param><value><nil/></value></param></params></methodResponse>",
    b"<methodResponse><params><param><value><base64>YQ==</base64></value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params><param><value><![CDATA[<a>]]></value></param></params>"
    b"</methodResponse>",
    b"<!-- c --><methodResponse><params><param><value><i4 >5</i4></value></param></params>"
    b"</methodResponse>",
    b"<?xml version='1.0' encoding='ISO-8859-1'?><methodResponse><params><param><value>"
    b"\xe9</value></param></params></methodResponse>",
    b"<methodCall><methodName>M</methodName></methodCall>",
    b"<methodResponse><params><param><value><struct><member><name>d</name><value>"
    b"<dateTime.iso8601> 20261205T15:02:55+0000 </dateTime.iso8601></value></member><member>"
    b"<name>i</name><value><int> 1_0 </int></value></member></struct></value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params><param><value><struct><member><name>a</name><value>x\r\ny"
    b"</value></member></struct></value></param></params></methodResponse>",
    b"<methodResponse><params><param><value><struct><member><name>a</name><value><array><data>"
    b"<value><i4>1</i4></value></data></array></value></member></struct></value></param>"
    b"</params></methodResponse>",
    b"<methodCall><methodName>M</methodName><params></params></methodCall>",
])
def test_documents_outside_the_subset_read_as_the_standard_library_reads_them(body):
    assert wire.loads(body) == xmlrpc.client.loads(body)


@pytest.mark.parametrize("body", [
    b"", b"garbage", b"<methodResponse>garbage", b"<methodResponse><params><param><value>"
    b"<i4>x</i4></value></param></params></methodResponse>",
    b"<methodResponse><params><param><value><boolean>2</boolean></value></param></params>"
    b"</methodResponse>",
    b"<methodResponse><params></param></params></methodResponse>",
    b"<methodResponse><params><param><value>1</value></param></params></methodResponse><x/>",
    b"<methodResponse><params><param><value><struct><member><name>a</name><value><string>"
    b"x]]>\x01</string></value></member></struct></value></param></params></methodResponse>",
])
def test_malformed_documents_fail_as_in_the_standard_library(body):
    try:
        expected = xmlrpc.client.loads(body)
    except Exception as e:
        with pytest.raises(type(e)):
            wire.loads(body)
    else:
        assert wire.loads(body) == expected


def test_faults_are_raised_like_the_standard_library():
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(1000, "Illegal <request>"),
                               methodresponse=True).encode()
    with pytest.raises(xmlrpc.client.Fault) as ei:
        wire.loads(body)
    assert (ei.value.faultCode, ei.value.faultString) == (1000, "Illegal <request>")


def test_writer_refuses_what_xml_rpc_cannot_carry():
    with pytest.raises(OverflowError):
        wire.dumps_response({"a": 2 ** 31})
    with pytest.raises(TypeError):
        wire.dumps_response({"a": object()})


@pytest.mark.parametrize("text", ["20261205T15:02:55+0000", "20261205T16:02:55+0100",
                                  "20261205T10:02:55-0530", "20240229T23:59:59", "20261231T00:00:00+1400"])
def test_dates_read_as_strptime_reads_them(text):
    import datetime

    from billing.ucip.codec import parse_timestamp
    fmt = "%Y%m%dT%H:%M:%S%z" if "+" in text or "-" in text[9:] else "%Y%m%dT%H:%M:%S"
    t = datetime.datetime.strptime(text, fmt)
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    assert parse_timestamp(text) == int(t.timestamp() * 1000)
