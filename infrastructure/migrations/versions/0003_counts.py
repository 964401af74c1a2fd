"""The summary report's counts, kept as projections (``infrastructure.counts``).

Two new tables, filled from the bitemporal periods and the access rows already in the
register by ``counts.recount`` (a few INSERT ... SELECT: seconds, not a views rebuild).
No stored event changes. The recount is today's code: should ``casebook_case_periods``
or ``casebook_case_access`` change shape in a later revision, this one must take a
copy of it as it is now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from infrastructure import counts

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
REBUILD_VIEWS = False

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table("casebook_counts", *_key(), sa.Column("n", BIGINT, nullable=False))
    op.create_table(
        "casebook_count_days",
        *_key(),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("delta", BIGINT, nullable=False),
    )
    counts.recount(op.get_bind())


def _key() -> list[sa.Column[str]]:
    return [
        sa.Column("viewer", sa.String(100), primary_key=True),
        sa.Column("dimension", sa.String(20), primary_key=True),
        sa.Column("value", sa.String(40), primary_key=True),
    ]


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
