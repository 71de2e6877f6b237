"""conversion tables: quotes, conversions, limits, limit usage

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dpgnode.adapters.storage.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _units(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, dpgnode.adapters.storage.types.BigUnits(), nullable=nullable)


def _time(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name, dpgnode.adapters.storage.types.UtcDateTime(timezone=True), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "conversion_quotes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("from_asset", sa.String(length=32), nullable=False),
        sa.Column("to_asset", sa.String(length=32), nullable=False),
        _units("sell_units"),
        _units("fee_units"),
        _units("buy_units"),
        _units("spread_units"),
        sa.Column("mid_rate", sa.Text(), nullable=False),
        sa.Column("spread_bps", sa.Integer(), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("max_slippage_bps", sa.Integer(), nullable=False),
        sa.Column("rate_source", sa.String(length=500), nullable=False),
        _time("rate_observed_at"),
        sa.Column("reference_asset", sa.String(length=32), nullable=True),
        _units("reference_units", nullable=True),
        _time("created_at"),
        _time("expires_at"),
        sa.Column(
            "accepted_at",
            dpgnode.adapters.storage.types.UtcDateTime(timezone=True),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversion_quotes")),
    )
    with op.batch_alter_table("conversion_quotes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversion_quotes_owner", ["owner_id", "created_at"], unique=False
        )

    op.create_table(
        "conversions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("quote_id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("from_asset", sa.String(length=32), nullable=False),
        sa.Column("to_asset", sa.String(length=32), nullable=False),
        _units("sell_units"),
        _units("fee_units"),
        _units("buy_units"),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["quote_id"],
            ["conversion_quotes.id"],
            name=op.f("fk_conversions_quote_id_conversion_quotes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        sa.UniqueConstraint("quote_id", name=op.f("uq_conversions_quote_id")),
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.create_index("ix_conversions_owner", ["owner_id", "created_at"], unique=False)

    op.create_table(
        "conversion_limits",
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        _units("units"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint(
            "owner_id", "kind", "asset", "period", name=op.f("pk_conversion_limits")
        ),
    )
    op.create_table(
        "conversion_usage",
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        _time("period_start"),
        _units("used"),
        sa.PrimaryKeyConstraint(
            "owner_id", "kind", "asset", "period", "period_start",
            name=op.f("pk_conversion_usage"),
        ),
    )


def downgrade() -> None:
    op.drop_table("conversion_usage")
    op.drop_table("conversion_limits")
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_index("ix_conversions_owner")
    op.drop_table("conversions")
    with op.batch_alter_table("conversion_quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_conversion_quotes_owner")
    op.drop_table("conversion_quotes")
