"""The name index's key and the request digests' key become secrets of the register's
own, wrapped by the master key (``infrastructure.secrets``), and every wrapped key says
which master key wraps it, so that the master key can be rotated
(``infrastructure.rotation``). No stored event changes; no views are rebuilt.

- ``casebook_secrets``, new. A register that has started before (its master key's
  check value is recorded) gets the values the code derived from the master key until
  now, so its name index and idempotency records stay good as they are: this needs the
  master key (``casebook upgrade`` reads it as the service does) and refuses another.
  A register that never started gets random ones on its first start.
- ``casebook_person_keys.wrapped_by``: the current master key's fingerprint on every
  key not erased.
- ``casebook_master_check.rotating_to``: set while a rotation is under way.

The rows are written with today's code (``secrets.rows``, ``tables.secrets``): should
either change shape in a later revision, this one must take a copy of it as it is now.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from infrastructure import migrations, secrets, tables
from infrastructure.crypto import Keyring

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
REBUILD_VIEWS = False


def upgrade() -> None:
    op.add_column("casebook_person_keys", sa.Column("wrapped_by", sa.String(16), nullable=True))
    op.add_column("casebook_master_check", sa.Column("rotating_to", sa.String(64), nullable=True))
    op.create_table(
        "casebook_secrets",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_by", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    conn = op.get_bind()
    check = conn.execute(sa.text("SELECT check_value FROM casebook_master_check")).scalar()
    if check is None:  # never started: its first start makes random secrets
        return
    master = migrations.master_key()
    keyring = Keyring(master)
    if not hmac.compare_digest(keyring.check_value, check):
        raise migrations.UpgradeNeeded(
            f"{secrets.NOT_THIS_KEY}: give `casebook upgrade` the register's own"
        )
    rows = secrets.rows(keyring, secrets.derived(master), datetime.now(UTC))
    conn.execute(sa.insert(tables.secrets), rows)
    conn.execute(
        sa.text("UPDATE casebook_person_keys SET wrapped_by = :by WHERE wrapped IS NOT NULL"),
        {"by": keyring.fingerprint},
    )


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
