"""A table of signed restore statements (``casebook_restores``): ``casebook restore``
records in the restored register that it was restored from a copy whose chain ended at
a position, signed with the installation's key, so that an auditor whose kept
checkpoints past that position no longer match sees why. And the id of the erasure
ledger the register is paired with (``casebook_ledger_pairing``; set when a store first
opens it). No stored event changes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "casebook_restores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("copy_made_at", sa.String(40), nullable=False),
        sa.Column("restored_at", sa.String(40), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_table(
        "casebook_ledger_pairing",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ledger_id", sa.String(36), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
