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


# -- custody and API wallets (migration 0003) -------------------------------------------------
# Keychains hold only a sealed seed (ciphertext under an HSM key) and account xpubs: never a
# seed, a mnemonic or a private key. The audit log is append-only and hash-chained; its head
# row (like ledger_head) lets verification notice records deleted from the end.

wallets = Table(
    "wallets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner_type", String(16), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("owner_type", "owner_id", "asset", name="uq_wallets_owner_asset"),
)

custody_keychains = Table(
    "custody_keychains",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("network", String(16), nullable=False),
    Column("sealed_seed", Text, nullable=True),
    Column("fingerprint", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

custody_accounts = Table(
    "custody_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("keychain_id", String(40), ForeignKey("custody_keychains.id"), nullable=False),
    Column("scheme", String(8), nullable=False),
    Column("network", String(16), nullable=False),
    Column("account", Integer, nullable=False),
    Column("path", String(64), nullable=False),
    Column("xpub", String(400), nullable=False, unique=True),
    Column("next_index", BigInteger, nullable=False),
    Column("next_change_index", BigInteger, nullable=False),
    Column("last_used_index", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint(
        "keychain_id", "scheme", "account", name="uq_custody_accounts_keychain_scheme"
    ),
)

custody_addresses = Table(
    "custody_addresses",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("account_id", String(40), ForeignKey("custody_accounts.id"), nullable=False),
    Column("branch", Integer, nullable=False),
    Column("address_index", BigInteger, nullable=False),
    Column("address", String(128), nullable=False, unique=True),
    Column("reference", String(200), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("owner", String(80), nullable=False, server_default=""),
    UniqueConstraint(
        "account_id", "branch", "address_index", name="uq_custody_addresses_account_index"
    ),
)

custody_operators = Table(
    "custody_operators",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime, nullable=True),
)

custody_payouts = Table(
    "custody_payouts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("asset", String(32), nullable=False),
    Column("units", BigUnits, nullable=False),
    Column("destination", String(128), nullable=False),
    Column("debit_account", String(120), nullable=False),
    Column("hold_id", String(40), nullable=False),
    Column("source", String(140), nullable=False),
    Column("requested_by", String(40), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("memo", String(500), nullable=False),
    Column("request_key", String(255), nullable=False, unique=True),
    Column("raw_tx", Text, nullable=True),
    Column("txid", String(80), nullable=True),
    Column("failure", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # On chain (migration 0007): fee, conflict keys, block, conflict, last send.
    Column("fee_units", BigUnits, nullable=True),
    Column("spends", Text, nullable=False, server_default=""),
    Column("block_height", BigInteger, nullable=True),
    Column("block_hash", String(80), nullable=True),
    Column("conflict_txid", String(80), nullable=True),
    Column("conflict_height", BigInteger, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_custody_payouts_asset_created", "asset", "created_at"),
    Index("ix_custody_payouts_status", "status"),
    Index("ix_custody_payouts_txid", "txid"),
)

custody_approvals = Table(
    "custody_approvals",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("payout_id", String(40), ForeignKey("custody_payouts.id"), nullable=False),
    Column("operator_id", String(40), ForeignKey("custody_operators.id"), nullable=False),
    Column("approved_at", UtcDateTime, nullable=False),
    UniqueConstraint("payout_id", "operator_id", name="uq_custody_approvals_payout_operator"),
)

custody_audit = Table(
    "custody_audit",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(40), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(140), nullable=False),
    Column("result", String(16), nullable=False),
    Column("rule", String(40), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

custody_audit_head = Table(
    "custody_audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


# -- conversion (quotes, conversions, limits, limit usage) -----------------------------------
# Owned by the conversion service (dpgnode/adapters/storage/conversion.py, migration 0005).
# Rates are stored as exact fractions "numerator/denominator"; amounts as BigUnits.

conversion_quotes = Table(
    "conversion_quotes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("route", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("from_asset", String(32), nullable=False),
    Column("to_asset", String(32), nullable=False),
    Column("sell_units", BigUnits, nullable=False),
    Column("fee_units", BigUnits, nullable=False),
    Column("buy_units", BigUnits, nullable=False),
    Column("spread_units", BigUnits, nullable=False),
    Column("mid_rate", Text, nullable=False),
    Column("spread_bps", Integer, nullable=False),
    Column("fee_bps", Integer, nullable=False),
    Column("max_slippage_bps", Integer, nullable=False),
    Column("rate_source", String(500), nullable=False),
    Column("rate_observed_at", UtcDateTime, nullable=False),
    Column("reference_asset", String(32), nullable=True),
    Column("reference_units", BigUnits, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("accepted_at", UtcDateTime, nullable=True),
    Index("ix_conversion_quotes_owner", "owner_id", "created_at"),
)

conversions = Table(
    "conversions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("quote_id", String(40), ForeignKey("conversion_quotes.id"), nullable=False, unique=True),
    Column("owner_id", String(64), nullable=False),
    Column("route", String(16), nullable=False),
    Column("from_asset", String(32), nullable=False),
    Column("to_asset", String(32), nullable=False),
    Column("sell_units", BigUnits, nullable=False),
    Column("fee_units", BigUnits, nullable=False),
    Column("buy_units", BigUnits, nullable=False),
    Column("entry_id", String(40), nullable=True),
    Column("order_id", String(40), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_conversions_owner", "owner_id", "created_at"),
)

conversion_limits = Table(
    "conversion_limits",
    metadata,
    # owner_id "*" holds the default limits of every user without their own.
    Column("owner_id", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("asset", String(32), primary_key=True),
    Column("period", String(8), primary_key=True),
    Column("units", BigUnits, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

conversion_usage = Table(
    "conversion_usage",
    metadata,
    Column("owner_id", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("asset", String(32), primary_key=True),
    Column("period", String(8), primary_key=True),
    Column("period_start", UtcDateTime, primary_key=True),
    Column("used", BigUnits, nullable=False),
)


# -- trading: pairs, orders, trades, candles, positions (migration 0004) ----------------------
# Owned by the trading service (dpgnode/adapters/storage/trading.py). Prices are exact
# decimal strings (quote per whole base unit), independent of the pair's tick; quantities are
# base units and values quote units (BigUnits). A pair's ``seq`` counts changes of its book
# (the WebSocket delta sequence) and ``version`` names the command that made the last one,
# so a matcher notices a book changed by another process or lost with a failed commit.

trading_pairs = Table(
    "trading_pairs",
    metadata,
    Column("symbol", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("version", String(40), nullable=False),
    Column("last_price", String(100), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("priority", BigInteger, nullable=False),  # last order priority given (stops)
)

trading_orders = Table(
    "trading_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("pair", String(40), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("client_order_id", String(64), nullable=True),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),
    Column("tif", String(4), nullable=False),
    Column("post_only", Boolean, nullable=False),
    Column("price", String(100), nullable=True),
    Column("quantity", BigUnits, nullable=False),
    Column("filled", BigUnits, nullable=False),
    Column("quote_filled", BigUnits, nullable=False),
    Column("maker_quote", BigUnits, nullable=False),
    Column("fee_paid", BigUnits, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(20), nullable=True),
    Column("hold_id", String(40), nullable=True),
    Column("priority", BigInteger, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("trigger_price", String(100), nullable=True),  # stop orders
    UniqueConstraint("user_id", "client_order_id", name="uq_trading_orders_user_client_id"),
    Index("ix_trading_orders_book", "pair", "status", "priority"),
    Index("ix_trading_orders_user", "user_id", "created_at"),
    Index("ix_trading_orders_expiry", "status", "expires_at"),
)

trading_trades = Table(
    "trading_trades",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),
    Column("pair", String(40), nullable=False),
    Column("price", String(100), nullable=False),
    Column("quantity", BigUnits, nullable=False),
    Column("value", BigUnits, nullable=False),
    Column("buy_order_id", String(40), nullable=False),
    Column("sell_order_id", String(40), nullable=False),
    Column("buyer_id", String(64), nullable=False),
    Column("seller_id", String(64), nullable=False),
    Column("taker_side", String(4), nullable=False),
    Column("buyer_fee", BigUnits, nullable=False),
    Column("seller_fee", BigUnits, nullable=False),
    Column("entry_id", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_trading_trades_pair", "pair", "seq"),
    Index("ix_trading_trades_buyer", "buyer_id", "seq"),
    Index("ix_trading_trades_seller", "seller_id", "seq"),
)

trading_candles = Table(
    "trading_candles",
    metadata,
    Column("pair", String(40), primary_key=True),
    Column("interval", String(4), primary_key=True),
    Column("start", UtcDateTime, primary_key=True),
    Column("open", String(100), nullable=False),
    Column("high", String(100), nullable=False),
    Column("low", String(100), nullable=False),
    Column("close", String(100), nullable=False),
    Column("volume", BigUnits, nullable=False),
    Column("quote_volume", BigUnits, nullable=False),
    Column("trades", Integer, nullable=False),
)

trading_positions = Table(
    "trading_positions",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("pair", String(40), primary_key=True),
    Column("quantity", BigUnits, nullable=False),
    Column("cost", BigUnits, nullable=False),
    Column("realized_pnl", BigUnits, nullable=False),
    Column("fees", BigUnits, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


# -- chain watchers (cursors, recent blocks, payments, incidents) ----------------------------
# Owned by the chain watcher (dpgnode/adapters/storage/chains.py, migration 0006).

chain_cursors = Table(
    "chain_cursors",
    metadata,
    Column("chain", String(40), primary_key=True),
    Column("height", BigInteger, nullable=False),
    Column("hash", String(80), nullable=False),
    Column("paused", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

chain_blocks = Table(
    "chain_blocks",
    metadata,
    Column("chain", String(40), primary_key=True),
    Column("height", BigInteger, primary_key=True),
    Column("hash", String(80), nullable=False),
)

chain_payments = Table(
    "chain_payments",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("chain", String(40), nullable=False),
    Column("payment_key", String(200), nullable=False),
    Column("txid", String(80), nullable=False),
    Column("address", String(128), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("units", BigUnits, nullable=False),
    Column("owner", String(80), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("spends", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("block_height", BigInteger, nullable=True),
    Column("block_hash", String(80), nullable=True),
    Column("credit_key", String(300), nullable=True),
    Column("conflict_txid", String(80), nullable=True),
    Column("conflict_height", BigInteger, nullable=True),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("chain", "payment_key", name="uq_chain_payments_chain_key"),
    Index("ix_chain_payments_status", "chain", "status"),
    Index("ix_chain_payments_address", "address"),
    Index("ix_chain_payments_txid", "txid"),
)

chain_incidents = Table(
    "chain_incidents",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("chain", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Index("ix_chain_incidents_chain", "chain", "resolved_at"),
)

# -- sweeps: deposits moved to the treasury, and gas top-ups (migration 0007) ---------------
# Owned by dpgnode/adapters/storage/outgoing.py.

chain_sweeps = Table(
    "chain_sweeps",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("batch_id", String(40), nullable=False),
    Column("chain", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("asset", String(32), nullable=False),
    Column("to_address", String(128), nullable=False),
    Column("units", BigUnits, nullable=False),
    Column("fee_asset", String(32), nullable=False),
    Column("fee_units", BigUnits, nullable=True),
    Column("txid", String(80), nullable=False),
    Column("raw_tx", Text, nullable=False),
    Column("spends", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("block_height", BigInteger, nullable=True),
    Column("block_hash", String(80), nullable=True),
    Column("conflict_txid", String(80), nullable=True),
    Column("conflict_height", BigInteger, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("failure", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("chain", "txid", name="uq_chain_sweeps_chain_txid"),
    Index("ix_chain_sweeps_status", "chain", "status"),
    Index("ix_chain_sweeps_txid", "txid"),
    Index("ix_chain_sweeps_to", "to_address"),
)

chain_sweep_inputs = Table(
    "chain_sweep_inputs",
    metadata,
    Column("sweep_id", String(40), ForeignKey("chain_sweeps.id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("address", String(128), nullable=False),
    Column("units", BigUnits, nullable=False),
    Column("key_id", String(160), nullable=False),
    Column("outpoint", String(100), nullable=False),
    Index("ix_chain_sweep_inputs_address", "address"),
)
