"""custody tables

API wallets (views over ledger accounts), custody keychains with their accounts and address
pools, operators, payouts with their approvals, and the hash-chained custody audit log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dpgnode.adapters.storage.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, dpgnode.adapters.storage.types.UtcDateTime(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallets")),
        sa.UniqueConstraint(
            "owner_type", "owner_id", "asset", name=op.f("uq_wallets_owner_asset")
        ),
    )
    op.create_table(
        "custody_keychains",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("sealed_seed", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=16), nullable=False),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_keychains")),
    )
    op.create_table(
        "custody_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("keychain_id", sa.String(length=40), nullable=False),
        sa.Column("scheme", sa.String(length=8), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("account", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=64), nullable=False),
        sa.Column("xpub", sa.String(length=400), nullable=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("next_change_index", sa.BigInteger(), nullable=False),
        sa.Column("last_used_index", sa.BigInteger(), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(
            ["keychain_id"], ["custody_keychains.id"],
            name=op.f("fk_custody_accounts_keychain_id_custody_keychains"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_accounts")),
        sa.UniqueConstraint("xpub", name=op.f("uq_custody_accounts_xpub")),
        sa.UniqueConstraint(
            "keychain_id", "scheme", "account", name=op.f("uq_custody_accounts_keychain_scheme")
        ),
    )
    op.create_table(
        "custody_addresses",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("address_index", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        _utc("issued_at"),
        _utc("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["custody_accounts.id"],
            name=op.f("fk_custody_addresses_account_id_custody_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_custody_addresses_address")),
        sa.UniqueConstraint(
            "account_id", "branch", "address_index",
            name=op.f("uq_custody_addresses_account_index"),
        ),
    )
    op.create_table(
        "custody_operators",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _utc("created_at"),
        _utc("disabled_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_custody_operators_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_custody_operators_token_hash")),
    )
    op.create_table(
        "custody_payouts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("asset", sa.String(length=32), nullable=False),
        sa.Column("units", dpgnode.adapters.storage.types.BigUnits(), nullable=False),
        sa.Column("destination", sa.String(length=128), nullable=False),
        sa.Column("debit_account", sa.String(length=120), nullable=False),
        sa.Column("hold_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=140), nullable=False),
        sa.Column("requested_by", sa.String(length=40), nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("request_key", sa.String(length=255), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("txid", sa.String(length=80), nullable=True),
        sa.Column("failure", sa.Text(), nullable=False),
        _utc("created_at"),
        _utc("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_payouts")),
        sa.UniqueConstraint("request_key", name=op.f("uq_custody_payouts_request_key")),
    )
    with op.batch_alter_table("custody_payouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_custody_payouts_asset_created", ["asset", "created_at"], unique=False
        )
        batch_op.create_index("ix_custody_payouts_status", ["status"], unique=False)
    op.create_table(
        "custody_approvals",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        _utc("approved_at"),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["custody_operators.id"],
            name=op.f("fk_custody_approvals_operator_id_custody_operators"),
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["custody_payouts.id"],
            name=op.f("fk_custody_approvals_payout_id_custody_payouts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_approvals")),
        sa.UniqueConstraint(
            "payout_id", "operator_id", name=op.f("uq_custody_approvals_payout_operator")
        ),
    )
    op.create_table(
        "custody_audit",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        _utc("at"),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=140), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_custody_audit")),
        sa.UniqueConstraint("id", name=op.f("uq_custody_audit_id")),
    )
    head = op.create_table(
        "custody_audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    for statement in _AUDIT_GUARDS[op.get_bind().dialect.name]:
        op.execute(statement)


# The audit log is append-only in the database itself, not only by the code's habit: a
# record cannot be changed or removed, a new one must continue the head, and the head can
# only move forward by one, to the hash of a record that exists. So deleting the last
# records and rewinding the head (which the hash chain alone cannot tell from a shorter
# log) needs the triggers dropped first; `dpg audit verify --anchor` catches even that.
_AUDIT_GUARDS: dict[str, list[str]] = {
    "sqlite": [
        """CREATE TRIGGER custody_audit_no_update BEFORE UPDATE ON custody_audit
        BEGIN SELECT RAISE(ABORT, 'custody audit log is append-only'); END""",
        """CREATE TRIGGER custody_audit_no_delete BEFORE DELETE ON custody_audit
        BEGIN SELECT RAISE(ABORT, 'custody audit log is append-only'); END""",
        """CREATE TRIGGER custody_audit_follows_head BEFORE INSERT ON custody_audit
        WHEN NEW.seq IS NOT (SELECT seq + 1 FROM custody_audit_head WHERE id = 1)
          OR NEW.prev_hash IS NOT (SELECT hash FROM custody_audit_head WHERE id = 1)
        BEGIN
          SELECT RAISE(ABORT, 'custody audit log is append-only: a record must follow the head');
        END""",
        """CREATE TRIGGER custody_audit_head_no_insert BEFORE INSERT ON custody_audit_head
        BEGIN SELECT RAISE(ABORT, 'custody audit log is append-only'); END""",
        """CREATE TRIGGER custody_audit_head_no_delete BEFORE DELETE ON custody_audit_head
        BEGIN SELECT RAISE(ABORT, 'custody audit log is append-only'); END""",
        """CREATE TRIGGER custody_audit_head_advances BEFORE UPDATE ON custody_audit_head
        WHEN NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq + 1
          OR NEW.hash IS NOT (SELECT hash FROM custody_audit WHERE seq = NEW.seq)
        BEGIN
          SELECT RAISE(ABORT, 'custody audit log is append-only: the head only moves forward');
        END""",
    ],
    "postgresql": [
        """CREATE FUNCTION custody_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE head_seq BIGINT; head_hash TEXT;
        BEGIN
          IF TG_TABLE_NAME = 'custody_audit' AND TG_OP = 'INSERT' THEN
            SELECT seq, hash INTO head_seq, head_hash FROM custody_audit_head WHERE id = 1;
            IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash
            THEN
              RAISE EXCEPTION 'custody audit log is append-only: a record must follow the head'
                USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
          END IF;
          IF TG_TABLE_NAME = 'custody_audit_head' AND TG_OP = 'UPDATE' THEN
            IF NEW.id IS DISTINCT FROM OLD.id OR NEW.seq IS DISTINCT FROM OLD.seq + 1
               OR NEW.hash IS DISTINCT FROM (SELECT hash FROM custody_audit WHERE seq = NEW.seq)
            THEN
              RAISE EXCEPTION 'custody audit log is append-only: the head only moves forward'
                USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
          END IF;
          RAISE EXCEPTION 'custody audit log is append-only'
            USING ERRCODE = 'integrity_constraint_violation';
        END $$""",
        """CREATE TRIGGER custody_audit_guard BEFORE INSERT OR UPDATE OR DELETE
        ON custody_audit FOR EACH ROW EXECUTE FUNCTION custody_audit_guard()""",
        """CREATE TRIGGER custody_audit_no_truncate BEFORE TRUNCATE
        ON custody_audit FOR EACH STATEMENT EXECUTE FUNCTION custody_audit_guard()""",
        """CREATE TRIGGER custody_audit_head_guard BEFORE INSERT OR UPDATE OR DELETE
        ON custody_audit_head FOR EACH ROW EXECUTE FUNCTION custody_audit_guard()""",
        """CREATE TRIGGER custody_audit_head_no_truncate BEFORE TRUNCATE
        ON custody_audit_head FOR EACH STATEMENT EXECUTE FUNCTION custody_audit_guard()""",
    ],
}


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION custody_audit_guard() CASCADE")
    op.drop_table("custody_audit_head")
    op.drop_table("custody_audit")
    op.drop_table("custody_approvals")
    with op.batch_alter_table("custody_payouts", schema=None) as batch_op:
        batch_op.drop_index("ix_custody_payouts_status")
        batch_op.drop_index("ix_custody_payouts_asset_created")
    op.drop_table("custody_payouts")
    op.drop_table("custody_operators")
    op.drop_table("custody_addresses")
    op.drop_table("custody_accounts")
    op.drop_table("custody_keychains")
    op.drop_table("wallets")
