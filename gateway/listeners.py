"""The listeners a configuration opens, by configuration key, and what to say when one cannot.

C{ivoms check-config} lists them and C{ivoms run} names the failing one
(endpoint and key) when a port cannot be bound.
"""
from __future__ import annotations

from twisted.internet.error import CannotListenError

from core.endpoint_check import listen_port, split_description


def configured_listeners(config) -> list[tuple[str, str, object]]:
    """The enabled listeners of C{config} as C{(key, endpoint, table)}, in start order.

    @param config: a L{gateway.config.Config}.
    @return: the table is the listener's settings (a L{core.tls.TlsListener}).
    """
    out = []
    if config.http.enabled:
        out.append(("http.listen", config.http.listen, config.http))
    if config.smpp.server.enabled:
        out.append(("smpp.server.endpoint", config.smpp.server.endpoint, config.smpp.server))
    if config.admin.enabled:
        out.append(("admin.listen", config.admin.listen, config.admin))
    if config.metrics.enabled and config.metrics.listen:
        out.append(("metrics.listen", config.metrics.listen, config.metrics))
    return out


def tls_note(endpoint: str, table) -> str:
    """How a listener's connections are protected, for C{ivoms check-config}."""
    if split_description(endpoint)[0] == "ssl":
        return "TLS"
    if not table.tls:
        return "plain"
    return "TLS, client certificate required" if table.tls_client_ca else "TLS"


def describe_start_failure(error: BaseException, config) -> str:
    """One line saying why the node could not start.

    A L{CannotListenError} is told as the configured endpoint and key it came
    from (matched by port), with the operating system's reason.

    @param error: what starting the service tree raised.
    @param config: the configuration the tree was built from.
    """
    if isinstance(error, CannotListenError):
        reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
        where = ["%s (%s)" % (ep, key) for key, ep, _ in configured_listeners(config)
                 if listen_port(ep) == error.port]
        if len(where) == 1:
            return "cannot listen on %s in %s: %s" % (where[0], config.path, reason)
        return "cannot listen on %s port %s: %s" % (error.interface or "*", error.port, reason)
    text = str(error) or error.__class__.__name__
    return "cannot start: %s" % text.splitlines()[0]
