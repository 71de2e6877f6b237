"""own transactions on chain: payout fee, conflict keys, block and last send; sweeps

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dpgnode.adapters.storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _time(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name, dpgnode.adapters.storage.types.UtcDateTime(timezone=True), nullable=nullable
    )


def _units(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, dpgnode.adapters.storage.types.BigUnits(), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("custody_payouts") as batch_op:
        batch_op.add_column(_units("fee_units", nullable=True))
        batch_op.add_column(sa.Column("spends", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("block_height", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("block_hash", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("conflict_txid", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("conflict_height", sa.BigInteger(), nullable=True))
        batch_op.add_column(_time("sent_at", nullable=True))
        batch_op.create_index("ix_custody_payouts_txid", ["txid"], unique=False)
    op.create_table(
        "chain_sweeps",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("chain", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("to_address", sa.String(length=128), nullable=False),
        _units("units"),
        sa.Column("fee_asset", sa.String(length=32), nullable=False),
        _units("fee_units", nullable=True),
        sa.Column("txid", sa.String(length=80), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("spends", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_height", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=80), nullable=True),
        sa.Column("conflict_txid", sa.String(length=80), nullable=True),
        sa.Column("conflict_height", sa.BigInteger(), nullable=True),
        _time("sent_at", nullable=True),
        sa.Column("failure", sa.Text(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_sweeps")),
        sa.UniqueConstraint("chain", "txid", name="uq_chain_sweeps_chain_txid"),
    )
    with op.batch_alter_table("chain_sweeps") as batch_op:
        batch_op.create_index("ix_chain_sweeps_status", ["chain", "status"], unique=False)
        batch_op.create_index("ix_chain_sweeps_txid", ["txid"], unique=False)
        batch_op.create_index("ix_chain_sweeps_to", ["to_address"], unique=False)
    op.create_table(
        "chain_sweep_inputs",
        sa.Column("sweep_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        _units("units"),
        sa.Column("key_id", sa.String(length=160), nullable=False),
        sa.Column("outpoint", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["sweep_id"], ["chain_sweeps.id"],
                                name=op.f("fk_chain_sweep_inputs_sweep_id_chain_sweeps")),
        sa.PrimaryKeyConstraint("sweep_id", "position", name=op.f("pk_chain_sweep_inputs")),
    )
    with op.batch_alter_table("chain_sweep_inputs") as batch_op:
        batch_op.create_index("ix_chain_sweep_inputs_address", ["address"], unique=False)


def downgrade() -> None:
    op.drop_table("chain_sweep_inputs")
    op.drop_table("chain_sweeps")
    with op.batch_alter_table("custody_payouts") as batch_op:
        batch_op.drop_index("ix_custody_payouts_txid")
        for column in ("sent_at", "conflict_height", "conflict_txid", "block_hash",
                       "block_height", "spends", "fee_units"):
            batch_op.drop_column(column)
