"""The core's ports: the interfaces adapters and billing connectors meet the core through.

Adapters (channels, GUI, CLI) call the core through L{IActivationService}
and L{ITransactionQueries}, and read the numbering plan through
L{INumberingPlan}; the core credits accounts through
L{IBillingPort}, and a connector that can credit inside the activation's own
unit of work also provides L{IInTransactionCredit}, and one that holds
connections it must open first provides L{IBillingReadiness}.  Nothing here imports
an adapter, a connector or the store.
"""
from __future__ import annotations

from zope.interface import Attribute, Interface

from core.billing import IBillingPort

__all__ = ["IActivationService", "ITransactionQueries", "INumberingPlan", "IBillingPort",
           "IInTransactionCredit", "IStoreLedger", "IBillingReadiness",
           "IPasswordChecker", "IAuthThrottle", "ISourceGate", "ISessionStore",
           "INonceCache", "ICounterStore", "IDialogueStore"]


class IActivationService(Interface):
    """Activates vouchers; every channel hands its requests to one of these."""

    in_flight = Attribute("How many activations are under way (read by /health).")
    running = Attribute("The transaction ids of the activations under way (a set); the SMS "
                        "outbox holds a reply while its activation still runs.")

    def activate(req, durable=None, audit=None):
        """Activate the voucher C{req} names.

        @param req: a L{core.requests.ActivationRequest}.
        @param durable: optional C{durable(ok)}: told once whether the request
            became durable (see L{core.activation.ActivationService.activate}).
        @param audit: optional L{core.queries.AuditEntry}: the channel's audit
            row for the request, written with the answer's code, transaction
            id and serial added to its detail, before the answer is delivered.
        @return: a Deferred firing with a L{core.results.ActivationResult};
            it never fails (unexpected errors answer a system error).
        """


class ITransactionQueries(Interface):
    """Reads activation transactions, without HRNs, ciphertexts or blind indexes."""

    def transactions(msisdn=None, serial=None, start=None, end=None, limit=None):
        """Find the transactions of a subscriber and/or a voucher, newest first.

        @return: a Deferred firing with a list of dicts, one per transaction.
        """

    def transaction(txn_id=None, channel_ref=None, channel="soap", source=None):
        """The activation transaction with id C{txn_id}, else the latest with C{channel_ref}.

        @param source: when given, only a transaction of C{channel} entered
            by this source is returned.
        @return: a Deferred firing with a dict of the row's fields, or None.
        """

    def voucher(serial):
        """The status of voucher C{serial} (never its HRN).

        @return: a Deferred firing with a dict (serial, state, type_code,
            batch_id, expires_at), or None.
        """

    def record(entry):
        """Write one audit row (a L{core.queries.AuditEntry}).

        @return: a Deferred firing once it is committed.
        """


class INumberingPlan(Interface):
    """The operator's MSISDN numbering plan, as the core applies it to every request.

    Channels use it to recognise one subscriber under several spellings (the
    web channel's per-MSISDN rate limit, the USSD beneficiary check) without
    deciding anything the core decides.
    """

    def normalise(raw):
        """The international form of C{raw} (digits, country code first).

        @param raw: a number as a subscriber typed it, or None.
        @return: the normalised MSISDN, or None when C{raw} is not a valid
            number of the plan.
        """


class IInTransactionCredit(Interface):
    """A billing connector that credits inside the caller's unit of work.

    The embedded ledger provides it when configured with C{in_transaction}:
    the core then reserves, credits and commits an activation in one unit.
    """

    def credit_in(tx, account, amount, currency, validity_days, idempotency_key, now):
        """Credit like L{IBillingPort.credit}, inside the unit of work C{tx}.

        @param now: the unit's time (epoch ms).
        @return: a L{core.billing.CreditOutcome} (not a Deferred).
        """


class IBillingReadiness(Interface):
    """A billing connector that must open connections before it can credit.

    Diameter (a peer must answer CER with CEA) and CAI (a connection must log
    in) provide it.  A short-lived command (C{ivoms reconcile}) waits for it,
    so that its requests are not refused only because the link is not up yet.
    """

    def when_ready(timeout):
        """Tell when the connector can send a request.

        @param timeout: seconds to wait at most.
        @return: a Deferred firing True once it can, or False after
            C{timeout}; it never fails.
        """


class IStoreLedger(IInTransactionCredit):
    """An in-transaction connector whose credit is plain SQL on the store's own tables.

    The embedded ledger provides it: on PostgreSQL the database function
    C{ivoms_activate} (L{core.db_activate}) then does the whole activation,
    credit included, in one statement.
    """

    auto_create = Attribute("whether an unknown account is created by its first credit")


class IPasswordChecker(Interface):
    """Verifies passwords against stored hashes, at a bounded cost."""

    bound = Attribute("The most checks accepted at once (running plus queued).")
    pending = Attribute("Checks accepted and not finished.")

    def verify(stored_hash, password):
        """Check C{password} against C{stored_hash} (Argon2id) off the reactor.

        @return: a Deferred firing with True or False, or failing at once
            with L{core.passwords.PasswordPoolBusy} when the pool is full.
        """


class IAuthThrottle(Interface):
    """Counts authentication failures per account and per address, and says when to stop.

    A throttled attempt is refused before any password is checked.
    """

    def allowed(account, address):
        """True unless C{account} or C{address} failed too often in the current window."""

    def failed(account, address):
        """Count one failure of C{account} from C{address}.

        @return: True when this failure made the account or the address
            throttled (the caller logs it once).
        """

    def succeeded(account, address):
        """Forget C{account}'s failures (its address keeps its count)."""


class ISourceGate(Interface):
    """Failed HRN attempts per source: admits an attempt or says it is throttled."""

    def admit(channel, source):
        """Count an attempt of C{source} on C{channel} as under way, unless throttled.

        @return: None when admitted, the time (seconds) the throttle ends when
            refused, or a Deferred firing later with one of those two.
        """

    def done(channel, source, failed):
        """The admitted attempt was evaluated; C{failed}: it was a counted failure."""

    def throttled():
        """(channel, source, failures, limit) of the sources throttled now."""


class ISessionStore(Interface):
    """The GUI's sessions by id, each with its CSRF token, expiring (docs/cluster.md).

    A session is an object with the fields of L{core.shared_state.SessionRecord}.
    Every method returns a Deferred.
    """

    def get(sid):
        """The live session C{sid}, its last use set to now.

        @return: a Deferred firing with the session, or None when C{sid} is
            unknown or the session passed its lifetime or idle time.
        """

    def put(session):
        """Store the new session C{session}.

        @return: a Deferred firing once it is stored.
        """

    def update(session):
        """Store what changed in C{session} (role, messages), unless it was dropped meanwhile.

        @return: a Deferred firing once it is stored.
        """

    def drop(sid):
        """Forget session C{sid} (logout). @return: a Deferred."""

    def drop_user(user_id):
        """Forget every session of C{user_id} (disabled, password reset). @return: a Deferred."""


class INonceCache(Interface):
    """Remembers replay-protection nonces (WS-Security) for as long as they could be fresh."""

    def remember(key, expires_at):
        """Remember C{key} (bytes) until C{expires_at} (epoch seconds), unless known.

        @return: a Deferred firing True when C{key} was new (now remembered),
            False when it is known (a replay); it fails with
            L{core.shared_state.NonceCacheFull} when no more can be held.
        """


class ICounterStore(Interface):
    """Counters per key and fixed time window, added to atomically (throttles)."""

    def add(key, window_start, n=1):
        """Add C{n} to the counter of C{key} in the window starting at C{window_start}.

        @param window_start: epoch seconds, a multiple of the window length.
        @return: a Deferred firing with the counter's new total.
        """

    def get(key, window_start):
        """@return: a Deferred firing with the counter's total (0 when never added to)."""


class IDialogueStore(Interface):
    """Open USSD dialogues by dialogue id, one step at a time (docs/cluster.md).

    A dialogue is held (claimed) by one request at a time: a second claim
    before the holder releases it is refused, so two nodes never advance the
    same dialogue at once.  The state is a dict of JSON values.
    """

    def claim(dialogue_id, now, hold_until):
        """Hold dialogue C{dialogue_id} until the step ends or C{hold_until}.

        @param now: epoch seconds.
        @return: a Deferred firing with C{(state, version)}, with None when no
            live dialogue has the id, or failing with
            L{core.shared_state.DialogueHeld} while another request holds it.
        """

    def release(dialogue_id, state, version, expires_at):
        """Store C{state} (or delete the dialogue when C{state} is None) and let it go.

        @param version: what L{claim} gave (None for a dialogue just begun).
        @param expires_at: epoch seconds after which it is no longer live.
        @return: a Deferred firing with True when stored, False when another
            request took the dialogue over meanwhile (its state wins).
        """
