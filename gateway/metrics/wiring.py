"""Wires metrics into a node's service tree: the registry, its collectors, the listener.

L{install} is called once by L{gateway.service.make_service}: it plugs the
L{PrometheusMetrics} into the runner's batch hook, registers the scrape-time
collectors and answers the resource to mount and the listener to start.
The node (L{gateway.node.Node.metrics}, C{billing_port}) and the
housekeeping service plug the same metrics into the activation service, the
billing port and the housekeeper.
"""
from __future__ import annotations

from gateway.metrics.collectors import NodeCollector, StoreFigures
from gateway.metrics.resource import MetricsResource, make_metrics_site
from gateway.metrics.registry import PrometheusMetrics


def metrics_of(node):
    """The node's L{PrometheusMetrics}, built on first use (None when C{[metrics]} is off)."""
    settings = getattr(node.config, "metrics", None)
    if settings is None or not settings.enabled:
        return None
    m = getattr(node, "prometheus", None)
    if m is None:
        m = node.prometheus = PrometheusMetrics(node.clock)
    return m


def install(node, top):
    """Register the collectors of C{node}'s metrics.

    @param top: the node's service tree (the SMS channel is found in it by name).
    @return: (the L{MetricsResource}, to mount on the HTTP listener too when
        C{on_http}; the listener service of its own, not yet started, or
        None), or (None, None) when metrics are off.
    """
    m = metrics_of(node)
    if m is None:
        return None, None
    settings = node.config.metrics
    node.runner.metrics = m
    figures = node.store_figures = StoreFigures(node.store, node.reactor, node.clock,
                                                settings.cache_seconds)
    m.registry.register(NodeCollector(node, figures, top))
    res = MetricsResource(m.registry, figures)
    svc = None
    if settings.listen:
        from core.tls import listener_service
        svc = listener_service(node.reactor, settings.listen, settings, make_metrics_site(res),
                               "metrics")
    return res, svc
