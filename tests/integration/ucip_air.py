"""An independent Ericsson AIR for tests: Python's standard xmlrpc.server in a thread.

Not iVOMS code and not Twisted: it checks Basic auth and HTTP/1.1, records
every UpdateBalanceAndDate by originTransactionID and can be told to answer
a fixed responseCode, to be slow, or to apply the credit and then drop the
connection without answering.
"""
from __future__ import annotations

import base64
import threading
import time
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer
from socketserver import ThreadingMixIn


class _Server(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True


class Air:
    """One AIR on 127.0.0.1 and a free port; C{url} is its endpoint.

    @ivar mode: "ok", "code" (answer C{code}), "slow" (sleep C{delay} then
        apply and answer), "drop" (apply, then close without answering).
    @ivar duplicates: how a repeated originTransactionID is treated: "apply"
        (credits again, as an AIR without duplicate detection would),
        "code" (answers C{duplicate_code}, applies nothing).
    """

    def __init__(self, user="ivoms", password="secret"):
        self.mode = "ok"
        self.code = 0
        self.delay = 0.0
        self.duplicates = "apply"
        self.duplicate_code = 999
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.versions: list[str] = []
        self.balance: dict[str, int] = {}
        self.dedicated: dict[tuple[str, int], int] = {}   # (number, dedicatedAccountID) -> sum
        self.applied: dict[str, int] = {}
        self.lock = threading.Lock()
        expected = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        air = self

        class Handler(SimpleXMLRPCRequestHandler):
            protocol_version = "HTTP/1.1"
            rpc_paths = ("/Air",)

            def log_message(self, *args):
                pass

            def do_POST(self):
                air.versions.append(self.request_version)
                air.headers.append(dict(self.headers))
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if air.mode == "drop":
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    (params,), _ = xmlrpc.client.loads(body)
                    air.UpdateBalanceAndDate(params)
                    self.close_connection = True
                    return
                super().do_POST()

        self.server = _Server(("127.0.0.1", 0), requestHandler=Handler, logRequests=False,
                              allow_none=False)
        self.server.register_function(self.UpdateBalanceAndDate, "UpdateBalanceAndDate")
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/Air" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def UpdateBalanceAndDate(self, p):
        with self.lock:
            self.requests.append(p)
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "code":
            return {"responseCode": self.code, "originTransactionID": p["originTransactionID"]}
        tid = p["originTransactionID"]
        with self.lock:
            if tid in self.applied and self.duplicates == "code":
                return {"responseCode": self.duplicate_code, "originTransactionID": tid}
            self.applied[tid] = self.applied.get(tid, 0) + 1
            msisdn = p["subscriberNumber"]
            self.balance[msisdn] = (self.balance.get(msisdn, 0)
                                    + int(p.get("adjustmentAmountRelative", "0")))
            for da in p.get("dedicatedAccountUpdateInformation", []):
                key = (msisdn, da["dedicatedAccountID"])
                self.dedicated[key] = (self.dedicated.get(key, 0)
                                       + int(da["adjustmentAmountRelative"]))
            bal = self.balance[msisdn]
        return {"responseCode": 0, "originTransactionID": tid, "accountValue1": str(bal),
                "supervisionExpiryDate": xmlrpc.client.DateTime("20300101T00:00:00+0000")}

    def credits(self) -> int:
        """How many times any credit was applied."""
        return sum(self.applied.values())

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
