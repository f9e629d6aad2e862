"""What one iVOMS node is made of, built from the config: store, keys, runners, core services."""
from __future__ import annotations

from functools import cached_property

from core import keys as keyfile
from core import schema_version
from core.activation import ActivationService
from core.crypto import VoucherCipher
from core.db import Store
from core.metrics import NULL_METRICS
from core.normalise import MsisdnRules
from core.queries import TransactionQueries
from core.reconcile import Reconciler
from core.units import UnitRunner


class Node:
    """Lazily built parts of a node; the CLI and the service tree share it."""

    def __init__(self, config, reactor=None, clock=None):
        """
        @param reactor: runs network I/O and receives worker-thread callbacks.
        @param clock: the C{IReactorTime} for every timestamp, timeout and
            schedule (default: C{reactor}; tests pass a C{task.Clock}).
        """
        self.config = config
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.billing_service = None   # the connector's long-lived client, when it has one
        self.store_figures = None     # cached stock and fraud figures (metrics and GUI share them)

    @cached_property
    def store(self) -> Store:
        db = self.config.database
        return Store(db.url, pool_size=db.pool_size)

    @cached_property
    def keyring(self):
        return keyfile.load(self.config.keys.file)

    @cached_property
    def cipher(self) -> VoucherCipher:
        return VoucherCipher(self.keyring)

    def check_schema(self) -> None:
        """@raise StoreError: the database is unreachable or not migrated."""
        schema_version.require_current(self.store)

    @cached_property
    def runner(self) -> UnitRunner:
        db = self.config.database
        if db.writer_process and self.store.is_sqlite:
            from core.unit_process import ProcessUnitRunner
            return ProcessUnitRunner(self.store, self.reactor, max_batch=db.group_commit_max)
        workers = db.writer_threads or (1 if self.store.is_sqlite else db.pool_size)
        return UnitRunner(self.store, self.reactor, workers=workers, max_batch=db.group_commit_max)

    @cached_property
    def queries(self) -> TransactionQueries:
        """The L{core.interfaces.ITransactionQueries} adapters read transactions through."""
        return TransactionQueries(self.runner)

    @cached_property
    def numbering(self) -> MsisdnRules:
        """The configured numbering plan (L{core.interfaces.INumberingPlan})."""
        return MsisdnRules.from_settings(self.config.msisdn)

    @cached_property
    def billing(self):
        b = self.config.billing
        if b.connector == "ledger":
            from billing.ledger import EmbeddedLedger
            return EmbeddedLedger(self.runner, clock=self.clock, auto_create=b.ledger.auto_create,
                                  in_transaction=b.ledger.in_transaction)
        if b.connector == "diameter":
            from billing.currency import Currencies
            from billing.diameter.node.client import DiameterClient
            from billing.diameter.config import from_mapping
            from billing.diameter.node.connector import DiameterBilling
            local, credit, transport, extra = from_mapping(b.diameter)
            self.billing_service = DiameterClient(local, transport, reactor=self.reactor)
            return DiameterBilling(self.billing_service, local, credit, clock=self.clock,
                                   session_host=extra["session_host"],
                                   currencies=Currencies(extra["currencies"]))
        if b.connector == "cai":
            from billing.cai.answers import CaiLookupAnswer
            from billing.cai.codec import CaiTemplates
            from billing.cai.config import CaiCodes, CaiSettings
            from billing.cai.connector import CaiBilling
            from billing.cai.pool import CaiPool
            c = b.cai
            s = CaiSettings(c.host, c.port, c.user, c.password, c.pool_size, c.command_timeout,
                            c.login_timeout, c.queue_limit, c.reconnect_initial, c.reconnect_max,
                            CaiTemplates(c.login_template, c.logout_template, c.credit_template,
                                         c.lookup_template),
                            CaiCodes(tuple(c.success_codes), tuple(c.unknown_subscriber_codes),
                                     tuple(c.refused_codes), tuple(c.not_logged_in_codes),
                                     tuple(c.not_found_codes), c.not_found_is_final),
                            CaiLookupAnswer(c.lookup_status_field, tuple(c.lookup_credited_values),
                                            tuple(c.lookup_refused_values), c.lookup_code_field,
                                            c.lookup_status_required, c.balance_field,
                                            c.expiry_field))
            self.billing_service = CaiPool(s, reactor=self.reactor)
            return CaiBilling(self.billing_service, s)
        if b.connector == "ucip":
            from billing.ucip.client import UcipClient
            from billing.ucip.config import from_table
            from billing.ucip.connector import UcipBilling
            s = from_table(b.ucip)
            self.billing_service = UcipClient(s, reactor=self.reactor, clock=self.clock)
            return UcipBilling(self.billing_service, s, clock=self.clock)
        raise ValueError("unknown billing connector %r" % b.connector)

    @cached_property
    def metrics(self):
        """The node's L{core.metrics.IMetrics}: Prometheus when C{[metrics]} is enabled."""
        from gateway.metrics.wiring import metrics_of
        return metrics_of(self) or NULL_METRICS

    @cached_property
    def billing_port(self):
        """The billing connector as the core calls it: measured when metrics are on."""
        if self.metrics is NULL_METRICS:
            return self.billing
        from gateway.metrics.wrappers import metered_billing
        return metered_billing(self)

    @cached_property
    def passwords(self):
        """The L{core.passwords.PasswordPool}: every Argon2 check (SOAP clients, GUI logins)."""
        from core.passwords import PasswordPool
        return PasswordPool(self.reactor)

    @cached_property
    def shared_in_database(self) -> bool:
        """True when GUI sessions, nonces, throttle counters and USSD dialogues are in the
        database (C{[cluster] shared_state}), so that every node shares them."""
        return self.config.cluster.in_database(self.config.database.url)

    @cached_property
    def counters(self):
        """The L{core.interfaces.ICounterStore} the nodes share, or None (memory only)."""
        if not self.shared_in_database:
            return None
        from core.shared_db import DbCounters
        return DbCounters(self.runner)

    @cached_property
    def nonces(self):
        """The L{core.interfaces.INonceCache} the nodes share, or None (this node's memory)."""
        if not self.shared_in_database:
            return None
        from core.shared_db import DbNonces
        return DbNonces(self.runner, self.clock)

    @cached_property
    def dialogue_store(self):
        """The L{core.interfaces.IDialogueStore} the nodes share, or None (this node's memory)."""
        if not self.shared_in_database:
            return None
        from core.shared_db import DbDialogues
        return DbDialogues(self.runner)

    def session_store(self, lifetime: float, idle: float, factory):
        """The L{core.interfaces.ISessionStore} the nodes share, or None (this node's memory).

        @param factory: the session class built from a stored row.
        """
        if not self.shared_in_database:
            return None
        from core.shared_db import DbSessions
        return DbSessions(self.runner, self.clock, lifetime=lifetime, idle=idle,
                          seal=lambda data: self.cipher.seal(b"admin-session", data),
                          unseal=lambda blob: self.cipher.unseal(b"admin-session", blob),
                          factory=factory)

    @cached_property
    def login_form_secret(self) -> bytes | None:
        """The key of the GUI's login-form tokens: derived from the key ring when the nodes
        share state (a form from one node is accepted by another), else None (random
        per start)."""
        return self.cipher.derive_key(b"admin-login-form") if self.shared_in_database else None

    @cached_property
    def source_gate(self):
        """The L{core.interfaces.ISourceGate} of failed HRN attempts per source."""
        from core import fraud
        from core.throttle import SourceGate
        settings = self.config.fraud
        return SourceGate(self.clock, lambda source: fraud.source_limit(settings, source),
                          shared=self.counters)

    @cached_property
    def activation(self) -> ActivationService:
        a = self.config.activation
        return ActivationService(
            self.runner, self.billing_port, self.cipher, clock=self.clock,
            msisdn_rules=MsisdnRules.from_settings(self.config.msisdn),
            hrn_lengths={t.hrn_length for t in self.config.voucher_types.values()},
            fraud_settings=self.config.fraud, billing_timeout=a.billing_timeout,
            allow_beneficiary=a.allow_beneficiary, node=self.config.node.name,
            loyalty=self.loyalty, replay_window=a.replay_window_seconds, metrics=self.metrics,
            source_gate=self.source_gate)

    @cached_property
    def loyalty(self):
        """The L{core.loyalty.service.LoyaltyService} over the configured plans."""
        from core.loyalty.service import LoyaltyService
        return LoyaltyService(getattr(self.config, "loyalty_plans", ()), self.runner,
                              self.billing_port, clock=self.clock,
                              billing_timeout=self.config.activation.billing_timeout)

    @cached_property
    def reconciler(self) -> Reconciler:
        a = self.config.activation
        return Reconciler(self.runner, self.billing_port, clock=self.clock,
                          older_than_seconds=a.reconcile_after_seconds,
                          lookup_timeout=a.billing_timeout, loyalty=self.loyalty)
