"""The name index gains the keys a full-name search looks up (``names.index_keys``):
pairs of a name's parts, and the parts of names of one part, marked. Without them a
search for a family and a given name would reach nobody, so the projections are rebuilt
(``REBUILD_VIEWS``): the names are sealed in the views, and only a rebuild, which opens
each person's key, can compute the new keys. No stored event changes.

A new table, ``casebook_owed``, keeps the work a migration asked for until it is done
(``migrations.upgrade`` writes "views_rebuild" in the migrations' transaction; a rebuild
that swapped its views in deletes it), so that an upgrade killed between its migrations
and its rebuild rebuilds when it is run again, and the service warns until then.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
REBUILD_VIEWS = True


def upgrade() -> None:
    op.create_table(
        "casebook_owed",
        sa.Column("what", sa.String(40), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
