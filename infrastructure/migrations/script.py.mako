"""${message}"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None
# True when the projections must be rebuilt from the log after this migration
# (``casebook upgrade`` does it).
REBUILD_VIEWS = False


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
