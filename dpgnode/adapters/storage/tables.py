"""The schema, in SQLAlchemy Core.

Alembic migrations are the source of truth on disk; ``dpg db check`` compares the migrated
database with this metadata, so the two never drift.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dpgnode.adapters.storage.types import BigUnits, UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
Serial = BigInteger().with_variant(Integer(), "sqlite")

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=False),
    Column("code", String(120), nullable=False, unique=True),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("allow_overdraft", Boolean, nullable=False),
    Column("balance", BigUnits, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_accounts_owner", "owner_type", "owner_id"),
)

journal = Table(
    "journal",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=False),
    Column("id", String(40), nullable=False, unique=True),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("memo", Text, nullable=False),
    Column("reverses", String(40), nullable=True, unique=True),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

postings = Table(
    "postings",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("entry_seq", Serial, ForeignKey("journal.seq"), nullable=False),
    Column("account_id", Serial, ForeignKey("accounts.id"), nullable=False),
    Column("units", BigUnits, nullable=False),
    Index("ix_postings_account", "account_id", "entry_seq"),
    Index("ix_postings_entry", "entry_seq"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", Serial, ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigUnits, nullable=False),
    Column("captured", BigUnits, nullable=False),
    Column("released", BigUnits, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_holds_status", "status"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("type", String(80), nullable=False),
    Column("aggregate", String(120), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_outbox_aggregate", "aggregate", "seq"),
)

outbox_cursors = Table(
    "outbox_cursors",
    metadata,
    Column("sink", String(80), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("sink", String(80), nullable=False),
    Column("event_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_outbox_attempts_event", "sink", "event_id"),
)

stores = Table(
    "stores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("website", String(500), nullable=False),
    Column("default_currency", String(16), nullable=False),
    Column("invoice_expiration", Integer, nullable=False),
    Column("monitoring_expiration", Integer, nullable=False),
    Column("speed_policy", String(20), nullable=False),
    Column("payment_tolerance", Integer, nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The idempotency key of the request that created the store: a retry after a crash
    # between commit and response finds the store instead of creating a second one.
    Column("creation_key", String(320), nullable=True, unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("permissions", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("scope", String(80), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("content_type", String(100), nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime, nullable=False),
    UniqueConstraint("scope", "key", name="uq_idempotency_records_scope_key"),
    Index("ix_idempotency_records_created", "created_at"),
)
