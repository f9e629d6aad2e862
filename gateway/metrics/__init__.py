"""Prometheus metrics of a node: the L{core.metrics.IMetrics} implementation, scrape-time
collectors and the C{/metrics} resource (see C{docs/operations.md})."""
