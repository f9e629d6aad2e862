"""A real SOAP listener on 127.0.0.1 over a real ActivationService and a temp SQLite store."""
from __future__ import annotations

import time
from dataclasses import dataclass

from twisted.internet import threads
from twisted.web import resource, server

from core.queries import TransactionQueries
from core.users import hash_password
from gateway.http import LimitedRequest
from core.vouchers import Selection, set_state
from protocols.soap.config import SoapClient, SoapSettings
from protocols.soap.resource import build_resource
from tests.helpers import build_service, make_batch, make_store

CLIENTS = [
    SoapClient("shop1", password="s3cret-shop1"),
    SoapClient("shop2", password="s3cret-shop2"),
    SoapClient("hashed", password_hash=hash_password("h4shed-pw")),
    SoapClient("care", password="care-pw", query_all=True),
    SoapClient("lan-only", password="lan-pw", networks=["10.0.0.0/8"]),
]


@dataclass
class SoapEnv:
    store: object
    cipher: object
    runner: object
    service: object
    url: str
    hrns: dict
    info: object
    port: object

    def hrn(self, i=0):
        return list(self.hrns.values())[i]

    def serial(self, i=0):
        return list(self.hrns)[i]

    def set_state(self, serial, target, reason=None):
        self.store.run_sync(set_state, Selection.serial(serial), target, actor="test",
                            reason=reason, now=int(time.time() * 1000))


async def start_env(reactor, sqlite_url, tmp_path, *, billing=None, count=20, clients=None,
                    billing_timeout=5.0, **settings):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    info, hrns = make_batch(store, cipher, count)
    runner, service, _ledger = build_service(store, cipher, reactor=reactor, billing=billing,
                                             billing_timeout=billing_timeout)
    res = build_resource(service, TransactionQueries(runner),
                         SoapSettings(clients=clients or CLIENTS, **settings), clock=reactor)
    root = resource.Resource()
    root.putChild(b"soap", res)
    site = server.Site(root)
    site.requestFactory = LimitedRequest        # the node's requests (gateway.http)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    url = "http://127.0.0.1:%d/soap" % port.getHost().port
    return SoapEnv(store, cipher, runner, service, url, hrns, info, port)


async def stop_env(env):
    await env.port.stopListening()
    await env.runner.stop()
    env.store.dispose()


def zeep_client(url, *, basic=None, wsse=None):
    """A zeep client built from our WSDL (blocking: call it in a thread)."""
    import requests
    from zeep import Client, Settings
    from zeep.transports import Transport
    session = requests.Session()
    if basic:
        session.auth = requests.auth.HTTPBasicAuth(*basic)
    return Client(url + "?wsdl", transport=Transport(session=session, timeout=20),
                  wsse=wsse, settings=Settings(strict=True))


def in_thread(fn, *args, **kw):
    return threads.deferToThread(fn, *args, **kw)
