"""The name index gains the keys a full-name search looks up (``names.index_keys``):
pairs of a name's parts, and the parts of names of one part, marked. Without them a
search for a family and a given name would reach nobody, so the projections are rebuilt
(``REBUILD_VIEWS``): the names are sealed in the views, and only a rebuild, which opens
each person's key, can compute the new keys. No table changes shape; no stored event
changes.
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
REBUILD_VIEWS = True


def upgrade() -> None:
    """Nothing to change in the schema: the rebuild that follows writes the keys."""


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
