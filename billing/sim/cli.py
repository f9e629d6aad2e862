"""C{ivoms billing-sim}: run the billing simulator until interrupted.

C{add_arguments} declares the options on an argparse parser;
C{billing_sim_command(args, config=None)} runs it.  Options override the
C{[billing_sim]} table of the configuration when one is given.  On
start it prints one line C{billing-sim ready diameter=<port> cai=<port> ucip=<port>}
(tests and benchmarks wait for it) and runs until SIGINT/SIGTERM.
"""
from __future__ import annotations

import dataclasses
import sys

from billing.sim.server import SimSettings

#: The fault and delay options, each with its own help (rates are fractions 0..1 of
#: new requests; a repeated request gets its first answer again).
_FLOATS = (
    ("latency", "SECONDS", "delay added before every answer (default 0)"),
    ("reject_rate", "RATE", "fraction of credits refused, not applied (Diameter 5003 "
                            "authorization rejected, CAI/UCIP refusal code), e.g. 0.05"),
    ("drop_rate", "RATE", "fraction of credits applied but never answered (the client "
                          "times out and must reconcile)"),
    ("slow_rate", "RATE", "fraction of answers delayed by --slow-seconds on top of --latency"),
    ("slow_seconds", "SECONDS", "extra delay of a slow answer (default 5)"),
    ("malformed_rate", "RATE", "fraction of credits applied and answered with a corrupt "
                               "message (outcome unknown to the client)"),
    ("busy_rate", "RATE", "fraction of requests answered 'too busy' without applying them "
                          "(Diameter 3004, CAI busy, UCIP 100)"),
)


def add_arguments(p) -> None:
    """Add the simulator's options to argparse parser C{p}."""
    p.add_argument("--diameter", help="Diameter listen endpoint "
                   "(default tcp:3868:interface=127.0.0.1)")
    p.add_argument("--cai", help="CAI listen endpoint, e.g. "
                   "tcp:3869:interface=127.0.0.1 (default: off)")
    p.add_argument("--ucip", help="UCIP (HTTP) listen endpoint, e.g. "
                   "tcp:10010:interface=127.0.0.1 (default: off)")
    p.add_argument("--tls-key", dest="tls_key", metavar="PEM",
                   help="private key file: the Diameter listener speaks TLS (with --tls-cert)")
    p.add_argument("--tls-cert", dest="tls_cert", metavar="PEM",
                   help="certificate file (server certificate first, then intermediates)")
    p.add_argument("--tls-client-ca", dest="tls_client_ca", metavar="PEM",
                   help="CA certificates a Diameter client's certificate must be signed by "
                        "(default: no client certificate asked)")
    p.add_argument("--accounts", help="CSV seed file: msisdn,balance_minor,"
                   "currency[,expires YYYY-MM-DD]")
    p.add_argument("--no-auto-create", dest="auto_create", action="store_false",
                   default=None, help="answer unknown MSISDNs with 5030/1002")
    p.add_argument("--origin-host", help="Diameter Origin-Host of the simulator "
                   "(default ocs.sim.localdomain)")
    p.add_argument("--origin-realm", help="Diameter Origin-Realm (default localdomain)")
    p.add_argument("--cai-user", help="user name CAI logins and UCIP Basic auth must give "
                   "(default ivoms)")
    p.add_argument("--cai-password", help="password CAI logins and UCIP Basic auth must give "
                   "(prefer [billing_sim] cai_password: a command line is visible to "
                   "other local users)")
    p.add_argument("--journal", help="file where every decision is fsynced before "
                   "it is answered (replayed on start)")
    p.add_argument("--seed", type=int, help="random seed of the faults")
    for name, metavar, text in _FLOATS:
        p.add_argument("--" + name.replace("_", "-"), type=float, dest=name, metavar=metavar,
                       help=text)
    p.add_argument("--stats-interval", type=float, default=0.0, metavar="SECONDS",
                   help="print counters every N seconds (0: never)")


def settings_from(args, base: SimSettings | None = None) -> SimSettings:
    """C{base} (or the defaults) overridden by the options given in C{args}."""
    base = base or SimSettings()
    changes = {}
    for f in dataclasses.fields(SimSettings):
        value = getattr(args, f.name, None)
        if value is not None:
            changes[f.name] = value
    return dataclasses.replace(base, **changes)


def billing_sim_command(args, config=None) -> int:
    """Run the simulator; returns the exit status (0 after a clean stop).

    @param args: parsed options (see C{add_arguments}).
    @param config: optional object with a C{billing_sim} attribute holding
        the C{[billing_sim]} table as a C{SimSettings}-like object.
    """
    from twisted.internet import defer, reactor, task
    from twisted.logger import globalLogBeginner, textFileLogObserver

    base = None
    if config is not None and getattr(config, "billing_sim", None) is not None:
        table = config.billing_sim
        base = SimSettings(**{f.name: getattr(table, f.name)
                              for f in dataclasses.fields(SimSettings)
                              if hasattr(table, f.name)})
    try:
        settings = settings_from(args, base)
    except ValueError as e:     # e.g. a TLS key that does not belong to its certificate
        print("billing-sim: error: %s" % (e,), file=sys.stderr)
        return 1
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)],
                                     redirectStandardIO=False)
    from billing.sim.server import start
    status = {"code": 0}

    async def main():
        try:
            sim = await start(settings, reactor)
        except Exception as e:  # bad settings or cannot listen
            print("billing-sim: error: %s" % (e,), file=sys.stderr)
            status["code"] = 1
            reactor.stop()
            return
        dport = sim.diameter_port.getHost().port
        cport = sim.cai_port.getHost().port if sim.cai_port else 0
        uport = sim.ucip_port.getHost().port if sim.ucip_port else 0
        print("billing-sim ready diameter=%d cai=%d ucip=%d" % (dport, cport, uport),
              flush=True)
        interval = getattr(args, "stats_interval", 0.0) or 0.0
        if interval > 0:
            def show():
                print("billing-sim stats %s accounts=%d applied=%d" % (
                    dataclasses.asdict(sim.diameter.stats),
                    len(sim.ledger.accounts), sim.ledger.applied), flush=True)
            task.LoopingCall(show).start(interval, now=False)
        reactor.addSystemEventTrigger("before", "shutdown", sim.stop)

    reactor.callWhenRunning(lambda: defer.ensureDeferred(main()))
    reactor.run()
    return status["code"]
