"""A real Web/WAP listener on 127.0.0.1 over a real ActivationService and a temp SQLite store."""
from __future__ import annotations

import re
from dataclasses import dataclass

from twisted.web import resource, server

from protocols.web.config import RateLimitSettings, WebSettings
from protocols.web.resource import RechargePages
from tests.helpers import build_service, make_batch, make_store


@dataclass
class WebEnv:
    store: object
    runner: object
    pages: object
    url: str
    hrns: dict
    port: object

    def hrn(self, i=0):
        return list(self.hrns.values())[i]


async def start_web(reactor, sqlite_url, tmp_path, *, clock=None, count=10, **settings):
    store, cipher = make_store(sqlite_url, str(tmp_path))
    _info, hrns = make_batch(store, cipher, count)
    runner, service, _ledger = build_service(store, cipher, reactor=reactor)
    settings.setdefault("rate_limit", RateLimitSettings(per_address=50, per_msisdn=20))
    pages = RechargePages(service, WebSettings(**settings), clock=clock or reactor,
                          normalise_msisdn=service.rules.normalise)
    root = resource.Resource()
    root.putChild(b"web", pages)
    port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
    return WebEnv(store, runner, pages, "http://127.0.0.1:%d/web" % port.getHost().port,
                  hrns, port)


async def stop_web(env):
    await env.port.stopListening()
    await env.runner.stop()
    env.store.dispose()


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
