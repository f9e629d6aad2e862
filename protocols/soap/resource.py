"""Wiring of the SOAP channel: C{make_resource(node)} for the shared HTTP listener (C{/soap})."""

from __future__ import annotations

from twisted.logger import Logger

from protocols.soap.auth import Authenticator
from protocols.soap.config import SoapSettings
from protocols.soap.handlers import SoapHandlers
from protocols.soap.queries import SoapQueries
from protocols.soap.server import SoapResource
from protocols.soap.app import make_application

log = Logger()


def build_resource(activation, runner, settings: SoapSettings, *, clock, verify_hash=None,
                   passwords=None):
    """The SOAP resource over an activation service and a unit runner.

    @param activation: the core's L{core.activation.ActivationService}.
    @param runner: the L{core.units.UnitRunner} the queries and audit rows use.
    @param clock: the reactor (time).
    @param passwords: the L{core.interfaces.IPasswordChecker} for Argon2 checks.
    """
    queries = SoapQueries(runner)
    auth = Authenticator(settings.clients, clock=clock,
                         skew_seconds=settings.timestamp_skew_seconds,
                         nonce_cache_size=settings.nonce_cache_size, verify_hash=verify_hash,
                         passwords=passwords)
    return SoapResource(make_application(), SoapHandlers(activation, queries), auth, queries,
                        clock=clock, max_request_bytes=settings.max_request_bytes,
                        public_url=settings.public_url, realm=settings.realm)


def settings_of(node) -> SoapSettings:
    """C{[soap]} from the node's config, or the defaults when it has none."""
    main = getattr(node.config, "main", None)
    return getattr(main, "soap", None) or SoapSettings()


def make_resource(node):
    """The resource mounted at C{/soap}, or None when C{[soap] enabled = false}."""
    settings = settings_of(node)
    if not settings.enabled:
        return None
    if not settings.clients:
        log.warn("SOAP channel enabled without client accounts ([[soap.clients]]): "
                 "every call will be refused")
    return build_resource(node.activation, node.runner, settings, clock=node.reactor,
                          passwords=getattr(node, "passwords", None))
