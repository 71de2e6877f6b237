"""exchange tables

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dpgnode.adapters.storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, dpgnode.adapters.storage.types.UtcDateTime(timezone=True), nullable=nullable
    )


def _units(name: str) -> sa.Column[object]:
    return sa.Column(name, dpgnode.adapters.storage.types.BigUnits(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "trading_pairs",
        sa.Column("symbol", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("last_price", sa.String(length=100), nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_trading_pairs")),
    )
    op.create_table(
        "trading_orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("pair", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=True),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("tif", sa.String(length=4), nullable=False),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("price", sa.String(length=100), nullable=True),
        _units("quantity"),
        _units("filled"),
        _units("quote_filled"),
        _units("maker_quote"),
        _units("fee_paid"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("hold_id", sa.String(length=40), nullable=True),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        _utc("expires_at", nullable=True),
        _utc("created_at"),
        _utc("updated_at"),
        sa.Column("trigger_price", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trading_orders")),
        sa.UniqueConstraint(
            "user_id", "client_order_id", name="uq_trading_orders_user_client_id"
        ),
    )
    with op.batch_alter_table("trading_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trading_orders_book", ["pair", "status", "priority"], unique=False
        )
        batch_op.create_index("ix_trading_orders_user", ["user_id", "created_at"], unique=False)
        batch_op.create_index("ix_trading_orders_expiry", ["status", "expires_at"], unique=False)

    op.create_table(
        "trading_trades",
        sa.Column("seq", _Serial, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("pair", sa.String(length=40), nullable=False),
        sa.Column("price", sa.String(length=100), nullable=False),
        _units("quantity"),
        _units("value"),
        sa.Column("buy_order_id", sa.String(length=40), nullable=False),
        sa.Column("sell_order_id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=64), nullable=False),
        sa.Column("taker_side", sa.String(length=4), nullable=False),
        _units("buyer_fee"),
        _units("seller_fee"),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_trading_trades")),
        sa.UniqueConstraint("id", name=op.f("uq_trading_trades_id")),
    )
    with op.batch_alter_table("trading_trades", schema=None) as batch_op:
        batch_op.create_index("ix_trading_trades_pair", ["pair", "seq"], unique=False)
        batch_op.create_index("ix_trading_trades_buyer", ["buyer_id", "seq"], unique=False)
        batch_op.create_index("ix_trading_trades_seller", ["seller_id", "seq"], unique=False)

    op.create_table(
        "trading_candles",
        sa.Column("pair", sa.String(length=40), nullable=False),
        sa.Column("interval", sa.String(length=4), nullable=False),
        _utc("start"),
        sa.Column("open", sa.String(length=100), nullable=False),
        sa.Column("high", sa.String(length=100), nullable=False),
        sa.Column("low", sa.String(length=100), nullable=False),
        sa.Column("close", sa.String(length=100), nullable=False),
        _units("volume"),
        _units("quote_volume"),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pair", "interval", "start", name=op.f("pk_trading_candles")),
    )
    op.create_table(
        "trading_positions",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("pair", sa.String(length=40), nullable=False),
        _units("quantity"),
        _units("cost"),
        _units("realized_pnl"),
        _units("fees"),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("user_id", "pair", name=op.f("pk_trading_positions")),
    )


def downgrade() -> None:
    op.drop_table("trading_positions")
    op.drop_table("trading_candles")
    with op.batch_alter_table("trading_trades", schema=None) as batch_op:
        batch_op.drop_index("ix_trading_trades_seller")
        batch_op.drop_index("ix_trading_trades_buyer")
        batch_op.drop_index("ix_trading_trades_pair")
    op.drop_table("trading_trades")
    with op.batch_alter_table("trading_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_trading_orders_expiry")
        batch_op.drop_index("ix_trading_orders_user")
        batch_op.drop_index("ix_trading_orders_book")
    op.drop_table("trading_orders")
    op.drop_table("trading_pairs")
