"""C{GET /metrics}: the node's registry in the Prometheus text format, and its listener."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.web import resource, server

from protocols.common.http_log import access_log_line


class MetricsResource(resource.Resource):
    """Renders the registry after the cached store figures are fresh enough."""

    isLeaf = True

    def __init__(self, registry, figures=None):
        """
        @param registry: the node's C{CollectorRegistry}.
        @param figures: a L{gateway.metrics.collectors.StoreFigures} to refresh
            before rendering, or None.
        """
        super().__init__()
        self.registry = registry
        self.figures = figures

    def render_GET(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        if self.figures is None:
            return generate_latest(self.registry)
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def render(_):
            if not gone:
                request.write(generate_latest(self.registry))
                request.finish()
        self.figures.fresh().addCallback(render)
        return server.NOT_DONE_YET


class MetricsRoot(resource.Resource):
    """The metrics listener's root: C{/metrics} and nothing else."""

    def __init__(self, metrics_resource):
        super().__init__()
        self.putChild(b"metrics", metrics_resource)

    def getChild(self, path, request):
        return resource.NoResource("Only /metrics is served here.")


def make_metrics_site(metrics_resource) -> server.Site:
    """A Site serving only C{/metrics} (the metrics listener of its own)."""
    site = server.Site(MetricsRoot(metrics_resource), logFormatter=access_log_line)
    site.displayTracebacks = False
    return site
