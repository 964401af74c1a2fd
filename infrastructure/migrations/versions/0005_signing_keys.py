"""The checkpoint-signing key can be rotated: a new table keeps each new key with the
statement that announced it (``infrastructure.rotation``). A register made before has
no row: its one key is the one its checkpoints were signed with, and the first
rotation names it as the outgoing key. No stored event or checkpoint changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
REBUILD_VIEWS = False

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "casebook_signing_keys",
        sa.Column("sequence", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("previous_public_key", sa.String(64), nullable=False),
        sa.Column("position", BIGINT, nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("outgoing_signature", sa.String(88), nullable=False),
        sa.Column("incoming_signature", sa.String(88), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
