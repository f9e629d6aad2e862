"""CAI against an IN written from docs/billing.md alone (standard socketserver, not iVOMS code).

The IN answers the lookup exactly as the docs say: C{RESP:0;} for a
credited reference, the refusal's code for a refused one and C{RESP:1010;}
(closing the reference) for one it never saw.  It applies one credit but
never answers it, so that credit can only be concluded by the lookup.
"""
import socketserver
import threading

import pytest
import pytest_twisted

from billing.cai.config import CaiSettings
from billing.cai.connector import CaiBilling
from billing.cai.pool import CaiPool
from core.billing import BillingUnavailable
from core.results import ResultCode
from tests.integration.test_cai_sim import until_ready

pytestmark = pytest.mark.integration


class DocsIn(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.refs = {}          # REF -> answer code of the SET
        self.closed = set()
        self.silent = set()     # SET applied but not answered
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        for raw in self.rfile:
            line = raw.decode("ascii").strip()
            if line.startswith("LOGIN:"):
                self.say("RESP:0;")
            elif line.startswith("SET:SUBSCRIBER:"):
                fields = line[:-1].split(":")[3].split(",")[1:]
                p = dict(zip(fields[0::2], fields[1::2]))
                ref = p["REF"]
                with srv.lock:
                    if ref in srv.closed:
                        code = 1003
                    else:
                        code = srv.refs.setdefault(ref, 1003 if p["AMOUNT"] == "13" else 0)
                if ref in srv.silent:
                    continue
                self.say("RESP:%d;" % code)
            elif line.startswith("GET:RECHARGE:REF,"):
                ref = line[len("GET:RECHARGE:REF,"):-1]
                with srv.lock:
                    code = srv.refs.get(ref)
                    if code is None:
                        srv.closed.add(ref)
                self.say("RESP:1010;" if code is None else "RESP:%d;" % code)
            elif line == "LOGOUT;":
                self.say("RESP:0;")
                return
            else:
                self.say("RESP:1009;")

    def say(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")


@pytest.fixture
def docs_in():
    s = DocsIn()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


@pytest_twisted.ensureDeferred
async def test_lookup_as_documented_concludes_every_pending_credit(reactor, docs_in):
    settings = CaiSettings(port=docs_in.server_address[1], pool_size=1, command_timeout=0.5,
                           reconnect_initial=0.1, reconnect_max=0.2)
    pool = CaiPool(settings, reactor=reactor)
    billing = CaiBilling(pool, settings)
    pool.startService()
    try:
        await until_ready(pool, reactor)
        docs_in.silent.add("lost")
        try:
            await billing.credit("381641234567", 100, "EUR", 30, "lost")
            raise AssertionError("the IN never answers this credit")
        except BillingUnavailable as e:
            assert e.sent
        await until_ready(pool, reactor)
        refused = await billing.credit("381641234567", 13, "EUR", 30, "bad")
        assert refused.code == ResultCode.BILLING_REJECTED
        credited = await billing.lookup("lost")           # RESP:0;
        assert credited.credited
        again = await billing.lookup("bad")               # RESP:1003;
        assert not again.credited and again.code == ResultCode.BILLING_REJECTED
        assert await billing.lookup("never-seen") is None   # RESP:1010;, closed
        late = await billing.credit("381641234567", 100, "EUR", 30, "never-seen")
        assert not late.credited
    finally:
        await pool.stopService()
