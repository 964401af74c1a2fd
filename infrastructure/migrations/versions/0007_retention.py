"""Retention (``infrastructure.retention``, ``casebook prune``): indexes that make
"older than T" an index range on the idempotency records (``created_at``) and the read
audit (``read_at``), so that a prune finds its oldest rows without reading a million
others, and ``casebook_prunes``, the account of what each prune removed. No stored
event changes; nothing is rebuilt.

Numbered 0007 on the retention branch, which comes from 0004: when the branches are
merged, ``down_revision`` names whichever revision is then the newest before it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
REBUILD_VIEWS = False

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("casebook_idempotency_created", "casebook_idempotency", ["created_at"])
    op.create_index("casebook_access_log_read_at", "casebook_access_log", ["read_at"])
    op.create_table(
        "casebook_prunes",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed", BIGINT, nullable=False),
        sa.Column("oldest", sa.DateTime(timezone=True), nullable=True),
        sa.Column("newest", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("casebook_prunes_kind", "casebook_prunes", ["kind", "cutoff"])


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
