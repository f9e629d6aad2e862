"""Assemble and start the billing simulator on an injected reactor.

C{SimSettings} is everything C{ivoms billing-sim} / C{python -m
billing.sim} accepts; C{start} listens (Diameter and optionally CAI) and
returns a C{RunningSim} with the bound ports and the shared ledger.
"""
from __future__ import annotations

import dataclasses

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString

from billing.diameter.message.messages import LocalIdentity
from billing.sim.cai import SimCaiFactory
from billing.sim.diameter import SimDiameterFactory
from billing.sim.faults import FaultPlan
from billing.sim.journal import Journal
from billing.sim.ledger import SimLedger
from core.tls import TlsListener, server_endpoint


@dataclasses.dataclass(frozen=True)
class SimSettings(TlsListener):
    """Simulator settings (also the C{[billing_sim]} config table).

    diameter / cai / ucip: server endpoint strings ("" disables CAI /
    UCIP; UCIP is HTTP and shares the CAI user and password as Basic auth).
    accounts: optional CSV seed file; auto_create: credit unknown MSISDNs
    into new accounts (false answers 5030 / 1002).  journal: a file where
    every decision is fsynced before it is answered, replayed on start
    ("" keeps them in memory only).  tls_key / tls_cert (and
    tls_client_ca): the Diameter listener speaks TLS (L{core.tls}).
    """

    TLS_ENDPOINT_FIELD = "diameter"

    diameter: str = "tcp:3868:interface=127.0.0.1"
    cai: str = ""
    ucip: str = ""
    origin_host: str = "ocs.sim.localdomain"
    origin_realm: str = "localdomain"
    accounts: str = ""
    auto_create: bool = True
    currency: str = "EUR"
    cai_user: str = "ivoms"
    cai_password: str = "ivoms"
    latency: float = 0.0
    reject_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 5.0
    malformed_rate: float = 0.0
    busy_rate: float = 0.0
    seed: int | None = None
    journal: str = ""


@dataclasses.dataclass
class RunningSim:
    ledger: SimLedger
    diameter: SimDiameterFactory
    cai: SimCaiFactory | None
    diameter_port: object = None
    cai_port: object = None
    ucip: object = None
    ucip_port: object = None

    def stop(self) -> defer.Deferred:
        for f in (self.diameter, self.cai):
            for p in list(getattr(f, "protocols", ())):
                p.transport.abortConnection()
        return defer.gatherResults([defer.maybeDeferred(p.stopListening)
                                    for p in (self.diameter_port, self.cai_port,
                                              self.ucip_port)
                                    if p is not None])


async def start(settings: SimSettings, reactor, clock=None) -> RunningSim:
    """Listen as configured; returns the C{RunningSim}.

    @raise ValueError: bad settings or seed file; CannotListenError.
    """
    clock = clock or reactor
    journal = Journal(settings.journal) if settings.journal else None
    ledger = SimLedger(clock, auto_create=settings.auto_create,
                       currency=settings.currency, journal=journal)
    if settings.accounts:
        ledger.load(settings.accounts)
    faults = FaultPlan(latency=settings.latency,
                       reject_rate=settings.reject_rate,
                       drop_rate=settings.drop_rate,
                       slow_rate=settings.slow_rate,
                       slow_seconds=settings.slow_seconds,
                       malformed_rate=settings.malformed_rate,
                       busy_rate=settings.busy_rate, seed=settings.seed)
    local = LocalIdentity(settings.origin_host, settings.origin_realm,
                          ("127.0.0.1",), product_name="iVOMS billing-sim")
    dia = SimDiameterFactory(ledger, faults, clock, local)
    sim = RunningSim(ledger, dia, None)
    sim.diameter_port = await server_endpoint(
        reactor, settings.diameter, settings, "diameter").listen(dia)
    if settings.cai:
        sim.cai = SimCaiFactory(ledger, faults, clock, user=settings.cai_user,
                                password=settings.cai_password)
        sim.cai_port = await serverFromString(reactor, settings.cai).listen(
            sim.cai)
    if settings.ucip:
        from billing.sim.ucip import site
        sim.ucip = site(ledger, faults, clock, user=settings.cai_user,
                        password=settings.cai_password)
        sim.ucip_port = await serverFromString(reactor, settings.ucip).listen(sim.ucip)
    return sim
