"""The store's tables, defined once with SQLAlchemy Core (DESIGN §3, §4, §7-§10).

Conventions: every timestamp is an integer of epoch milliseconds (UTC), so
SQLite and PostgreSQL compare them the same way; money is an integer of
minor units with its ISO 4217 currency beside it; no type or statement here
is specific to one database.
"""
from sqlalchemy import (
    BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, MetaData,
    SmallInteger, String, Table, Text,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

#: Single-row counters allocated with a conditional UPDATE (portable sequences).
counter = Table(
    "counter", metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

#: Snapshot of each voucher type as it was when a batch used it.
voucher_type = Table(
    "voucher_type", metadata,
    Column("code", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("face_value", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("validity_days", Integer, nullable=False),
    Column("account_validity_days", Integer, nullable=False),
    Column("hrn_length", SmallInteger, nullable=False),
    Column("loyalty", Text, nullable=False, default="{}"),
    Column("updated_at", BigInteger, nullable=False),
)

batch = Table(
    "batch", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type_code", String(32), ForeignKey("voucher_type.code"), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_serial", BigInteger, nullable=False),
    Column("last_serial", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # Immutable snapshot of the type's commercial terms at generation time.
    Column("face_value", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("account_validity_days", Integer, nullable=False),
    Column("loyalty", Text, nullable=False, default="{}"),
    Column("hrn_length", SmallInteger, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("state", String(12), nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("generated", BigInteger, nullable=False, default=0),
    Column("message", Text),
    Index(None, "state"),
)

voucher = Table(
    "voucher", metadata,
    Column("serial", BigInteger, primary_key=True, autoincrement=False),
    Column("batch_id", Integer, ForeignKey("batch.id"), nullable=False),
    Column("state", String(12), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("hrn_ct", LargeBinary, nullable=False),
    Column("blind_index", LargeBinary(32), nullable=False),
    Column("prev_state", String(12)),
    Column("reason", String(128)),
    Column("used_by", String(20)),
    Column("used_at", BigInteger),
    Column("txn_id", String(32)),
    Column("exported", SmallInteger, nullable=False, default=0),
    # Few indexes keep generation and activation fast: a batch is a serial
    # range (see core.vouchers.in_batch), and who used a voucher is found
    # through txn.msisdn.
    Index(None, "blind_index", unique=True),
    Index(None, "state", "expires_at"),
)

voucher_history = Table(
    "voucher_history", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("serial", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("from_state", String(12)),
    Column("to_state", String(12), nullable=False),
    Column("reason", Text),
    Index(None, "serial"),
)

txn = Table(
    "txn", metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(12), nullable=False),           # activation | loyalty
    Column("msisdn", String(20)),                          # who asked
    Column("account", String(20)),                         # who is credited
    Column("serial", BigInteger),
    Column("channel", String(16), nullable=False),
    Column("channel_ref", String(128)),
    Column("operator_user", String(64)),
    Column("source", String(128)),
    Column("state", String(10), nullable=False),           # pending | success | failed
    Column("result_code", Integer, nullable=False),
    Column("amount", BigInteger),
    Column("currency", String(3)),
    Column("validity_days", Integer),
    Column("parent_id", String(32)),                       # loyalty reward -> activation
    Column("plan_id", String(64)),
    Column("started_at", BigInteger, nullable=False),
    Column("reserved_at", BigInteger),
    Column("finished_at", BigInteger),
    Column("billing_ms", Integer),
    Column("detail", Text),
    Index(None, "msisdn", "started_at"),
    Index(None, "serial"),
    Index(None, "state", "started_at"),
    Index(None, "channel_ref"),
    Index(None, "started_at"),
)

fraud_counter = Table(
    "fraud_counter", metadata,
    Column("subject", String(160), primary_key=True),     # msisdn:<e164> | source:<channel>:<id>
    Column("failures", Integer, nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("barred_until", BigInteger, nullable=False, default=0),
    Column("last_failure_at", BigInteger, nullable=False),
)

loyalty_counter = Table(
    "loyalty_counter", metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("plan_id", String(64), primary_key=True),
    Column("period_key", String(32), primary_key=True),
    Column("recharges", BigInteger, nullable=False, default=0),
    Column("amount", BigInteger, nullable=False, default=0),
    Column("rewarded_tiers", String(256), nullable=False, default=""),
    Column("updated_at", BigInteger, nullable=False),
)

loyalty_event = Table(
    "loyalty_event", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("msisdn", String(20), nullable=False),
    Column("plan_id", String(64), nullable=False),
    Column("txn_id", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("weight", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Index(None, "msisdn", "plan_id", "at"),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("enabled", SmallInteger, nullable=False, default=1),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
    Column("origin", String(128)),
    Column("detail", Text),
    Index(None, "at"),
    Index(None, "actor", "at"),
)

partner = Table(
    "partner", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("certificate_pem", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

export = Table(
    "export", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("partner_id", Integer, ForeignKey("partner.id"), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_serial", BigInteger),
    Column("last_serial", BigInteger),
    Column("file_sha256", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
)

housekeeping_run = Table(
    "housekeeping_run", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("node", String(128), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("rows", BigInteger, nullable=False, default=0),
    Column("outcome", String(16), nullable=False),         # running | ok | failed | dry-run
    Column("message", Text),
    Index(None, "job", "started_at"),
)

job_lease = Table(
    "job_lease", metadata,
    Column("job", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

#: Used and expired vouchers moved out of C{voucher} by the purge job (table
#: mode).  The encrypted HRN is not kept: an archived voucher can never be
#: activated or revealed; its blind index stays so an HRN can still be traced.
voucher_archive = Table(
    "voucher_archive", metadata,
    Column("serial", BigInteger, primary_key=True, autoincrement=False),
    Column("batch_id", Integer, nullable=False),
    Column("state", String(12), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("blind_index", LargeBinary(32), nullable=False),
    Column("prev_state", String(12)),
    Column("reason", String(128)),
    Column("used_by", String(20)),
    Column("used_at", BigInteger),
    Column("txn_id", String(32)),
    Column("exported", SmallInteger, nullable=False),
    Column("archived_at", BigInteger, nullable=False),
    Index(None, "blind_index"),
    Index(None, "used_by"),
    Index(None, "archived_at"),
)

#: The history rows of archived vouchers, moved with them.
voucher_history_archive = Table(
    "voucher_history_archive", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("serial", BigInteger, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("from_state", String(12)),
    Column("to_state", String(12), nullable=False),
    Column("reason", Text),
    Index(None, "serial"),
)

ledger_account = Table(
    "ledger_account", metadata,
    Column("msisdn", String(20), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

ledger_entry = Table(
    "ledger_entry", metadata,
    Column("idempotency_key", String(64), primary_key=True),
    Column("msisdn", String(20), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("validity_days", Integer, nullable=False),
    Column("outcome", String(8), nullable=False),          # credited | rejected | void
    Column("result_code", Integer, nullable=False),
    Column("balance_after", BigInteger),
    Column("expires_after", BigInteger),
    Column("at", BigInteger, nullable=False),
    Index(None, "msisdn", "at"),
)

#: Requests that carry an idempotency key (one row per key, DESIGN §4): the
#: transaction it started and, for a channel that answers later (SMS), where
#: and in which language the reply goes and whether it was confirmed.  The
#: key is stored as an HMAC (it may contain the HRN as typed).
request_inbox = Table(
    "request_inbox", metadata,
    Column("key", LargeBinary(32), primary_key=True),
    Column("txn_id", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("source", String(128)),                         # reply route (SMPP bind / SMSC)
    Column("reply_to", Text),                              # JSON addresses, SMS only
    Column("language", String(8)),
    Column("reply_state", String(8), nullable=False),      # none | due | sent | expired
    Column("attempts", Integer, nullable=False),
    Column("replied_at", BigInteger),
    # no index on txn_id: replies are marked sent by key (migration 0007)
    Index(None, "reply_state", "received_at"),
)

# -- state several nodes share (docs/cluster.md; core/shared_db.py) --------------------
#: GUI sessions (times in ms); C{flashes}: the pending messages, sealed.
shared_session = Table(
    "shared_session", metadata,
    Column("id", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("user_id", Integer),
    Column("name", String(64)),
    Column("role", String(32)),
    Column("flashes", LargeBinary),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

#: WS-Security nonces seen (the key: SHA-256 of account and nonce), until they expire (ms).
shared_nonce = Table(
    "shared_nonce", metadata,
    Column("key", LargeBinary(32), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

#: Throttle counters per key and fixed window (C{window_start}: epoch seconds).
shared_counter = Table(
    "shared_counter", metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

#: Open USSD dialogues: JSON state, version (bumped by each claim and step), hold and expiry (ms).
ussd_dialogue = Table(
    "ussd_dialogue", metadata,
    Column("dialogue_id", String(64), primary_key=True),
    Column("state", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("held_until", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)
