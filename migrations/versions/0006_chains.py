"""chain watchers: cursors, recent blocks, payments, incidents; owners of issued addresses

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dpgnode.adapters.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name, dpgnode.adapters.storage.types.UtcDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    with op.batch_alter_table("custody_addresses") as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=80), nullable=False, server_default="")
        )
    op.create_table(
        "chain_cursors",
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=80), nullable=False),
        sa.Column("paused", sa.Text(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_chain_cursors")),
    )
    op.create_table(
        "chain_blocks",
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("chain", "height", name=op.f("pk_chain_blocks")),
    )
    op.create_table(
        "chain_payments",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("payment_key", sa.String(length=200), nullable=False),
        sa.Column("txid", sa.String(length=80), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("units", dpgnode.adapters.storage.types.BigUnits(), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("spends", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_height", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=80), nullable=True),
        sa.Column("credit_key", sa.String(length=300), nullable=True),
        sa.Column("conflict_txid", sa.String(length=80), nullable=True),
        sa.Column("conflict_height", sa.BigInteger(), nullable=True),
        _time("first_seen_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_payments")),
        sa.UniqueConstraint("chain", "payment_key", name="uq_chain_payments_chain_key"),
    )
    with op.batch_alter_table("chain_payments") as batch_op:
        batch_op.create_index("ix_chain_payments_status", ["chain", "status"], unique=False)
        batch_op.create_index("ix_chain_payments_address", ["address"], unique=False)
        batch_op.create_index("ix_chain_payments_txid", ["txid"], unique=False)
    op.create_table(
        "chain_incidents",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        _time("created_at"),
        _time("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_incidents")),
    )
    with op.batch_alter_table("chain_incidents") as batch_op:
        batch_op.create_index("ix_chain_incidents_chain", ["chain", "resolved_at"], unique=False)


def downgrade() -> None:
    op.drop_table("chain_incidents")
    op.drop_table("chain_payments")
    op.drop_table("chain_blocks")
    op.drop_table("chain_cursors")
    with op.batch_alter_table("custody_addresses") as batch_op:
        batch_op.drop_column("owner")
