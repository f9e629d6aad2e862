"""Builds every adapter of the node from explicit arguments: the HTTP channels, SMS, the GUI.

The adapters never see the L{gateway.node.Node}: this module picks out
what each one needs (the activation service, the transaction queries, the
numbering plan, a clock, its own settings table) and calls the adapter's
factory (a channel's C{build_resource}, L{protocols.smpp.service.make_smpp_service},
L{admin.app.AdminContext}), as Twisted's C{names/tap.py} builds
C{DNSServerFactory(authorities, caches, clients)} from its options.  A
channel whose table says C{enabled = false} is not built.
"""
from __future__ import annotations

from protocols.ivr import resource as ivr
from protocols.soap import resource as soap
from protocols.ussd import resource as ussd
from protocols.web import resource as web


def hrn_lengths(config) -> set[int]:
    """The HRN lengths of the configured voucher types (empty when none is configured)."""
    return {t.hrn_length for t in config.voucher_types.values()}


def ussd_resource(node):
    """C{/ussd}: the USSD gateway bridge."""
    return ussd.build_resource(node.activation, node.config.ussd, clock=node.reactor,
                               hrn_lengths=hrn_lengths(node.config), numbering=node.numbering,
                               passwords=node.passwords, metrics=node.metrics,
                               dialogue_store=node.dialogue_store)


def ivr_resource(node):
    """C{/ivr}: the VoiceXML dialogue."""
    return ivr.build_resource(node.activation, node.config.ivr, clock=node.reactor,
                              hrn_lengths=hrn_lengths(node.config), passwords=node.passwords,
                              metrics=node.metrics)


def soap_resource(node):
    """C{/soap}: the partners' SOAP interface (the node's bounded pool checks passwords;
    nonces and failure counts shared by the nodes when C{[cluster]} says so)."""
    from core.throttle import FailureThrottle
    throttle = FailureThrottle(node.reactor, shared=node.counters, scope="soap-auth")
    return soap.build_resource(node.activation, node.queries, node.config.soap,
                               clock=node.reactor, passwords=node.passwords,
                               nonces=node.nonces, throttle=throttle)


def web_resource(node):
    """C{/web}: the subscriber recharge pages (WAP under C{/web/wap})."""
    return web.build_resource(node.activation, node.config.web, clock=node.reactor,
                              numbering=node.numbering)


#: (path segment, the channel's settings table, builder)
CHANNELS = (
    (b"ussd", "ussd", ussd_resource),
    (b"ivr", "ivr", ivr_resource),
    (b"soap", "soap", soap_resource),
    (b"web", "web", web_resource),
)


def channel_resources(node) -> list:
    """(path segment, resource) of every HTTP channel the node's config enables."""
    return [(segment, build(node)) for segment, table, build in CHANNELS
            if getattr(node.config, table).enabled]


def smpp_service(node):
    """The SMS channel's services (SMPP server and SMSC connectors) over the node's parts."""
    from protocols.smpp.service import make_smpp_service
    return make_smpp_service(node.config.smpp, node.activation, node.reactor,
                             hrn_lengths=hrn_lengths(node.config), runner=node.runner)


def admin_context(node, settings, reactor):
    """The GUI pages' L{admin.app.AdminContext} over the node's parts.

    @param settings: the C{[admin]} settings.
    @param reactor: the reactor whose thread pool runs the pages' reads.
    """
    from admin.app import AdminContext
    from gateway.metrics.collectors import peer_states
    from admin.auth import Session

    def housekeeper():
        from core.housekeeping.housekeeper import Housekeeper
        return Housekeeper.from_node(node)
    config = node.config
    connector = config.billing.connector

    def billing_peers():
        return connector, peer_states(connector, node.billing_service, node.clock)
    return AdminContext(settings, reactor, store=node.store, runner=node.runner,
                        cipher=node.cipher, activation=node.activation, numbering=node.numbering,
                        voucher_types=config.voucher_types, generation=config.generation,
                        loyalty_plans=getattr(config, "loyalty_plans", ()), clock=node.clock,
                        housekeeper=housekeeper, passwords=node.passwords,
                        fraud_settings=config.fraud, stock_figures=store_figures(node, reactor),
                        billing_peers=billing_peers, counters=node.counters,
                        login_secret=node.login_form_secret,
                        session_backend=node.session_store(settings.session_lifetime_seconds,
                                                           settings.idle_timeout_seconds,
                                                           Session))


def store_figures(node, reactor):
    """The node's cached stock and fraud figures: the metrics' own when they are on
    (one reading serves both), else a cache of the GUI's, read as often at most."""
    from gateway.metrics.collectors import StoreFigures
    figures = node.store_figures
    if figures is None:
        figures = node.store_figures = StoreFigures(node.store, reactor, node.clock,
                                                    node.config.metrics.cache_seconds)
    return figures


def admin_service(node):
    """The GUI listener (service C{admin}) over the node's parts."""
    from admin.app import make_service
    return make_service(admin_context(node, node.config.admin, node.reactor))
