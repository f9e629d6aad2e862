"""Wiring of the SOAP channel: L{build_resource} makes the resource the node mounts at C{/soap}."""

from __future__ import annotations

from twisted.logger import Logger

from protocols.soap.app import make_application
from protocols.soap.auth import Authenticator
from protocols.soap.config import SoapSettings
from protocols.soap.handlers import SoapHandlers
from protocols.soap.server import SoapResource

log = Logger()


def build_resource(activation, queries, settings: SoapSettings, *, clock, verify_hash=None,
                   passwords=None, nonces=None, throttle=None):
    """The SOAP resource over an activation service and the transaction queries.

    @param activation: provides L{core.interfaces.IActivationService}.
    @param queries: provides L{core.interfaces.ITransactionQueries} (status
        calls and audit rows).
    @param settings: the C{[soap]} table (L{SoapSettings}).
    @param clock: the reactor (time, and the thread pool for Argon2 checks).
    @param verify_hash: C{(encoded, password) -> bool} checking a client's
        password hash (default: Argon2).
    @param passwords: the L{core.interfaces.IPasswordChecker} for Argon2 checks
        (a bounded pool; default: checks on the reactor's thread pool).
    @param nonces: the L{core.interfaces.INonceCache} of UsernameToken nonces
        (default: this node's memory).
    @param throttle: the L{core.interfaces.IAuthThrottle} of failed
        authentications (default: this node's memory).
    @return: a L{SoapResource}; the caller mounts it only when C{settings.enabled}.
    """
    if not settings.clients:
        log.warn("SOAP channel enabled without client accounts ([[soap.clients]]): "
                 "every call will be refused")
    auth = Authenticator(settings.clients, clock=clock,
                         skew_seconds=settings.timestamp_skew_seconds,
                         nonce_cache_size=settings.nonce_cache_size, verify_hash=verify_hash,
                         passwords=passwords, nonces=nonces, throttle=throttle)
    return SoapResource(make_application(), SoapHandlers(activation, queries), auth, queries,
                        clock=clock, max_request_bytes=settings.max_request_bytes,
                        public_url=settings.public_url, realm=settings.realm)
