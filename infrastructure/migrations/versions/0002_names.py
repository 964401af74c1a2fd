"""Names that say what they hold.

- The event log is ``casebook_events``, after the register, as the design says: it had
  been named after the class that ran it (``chainedregister_events``).
- Columns that hold more than case ids are named for what they hold: a data key's id
  (a case's, a list entry's, a negotiation record's) in ``casebook_person_keys`` and
  ``casebook_erasures``; any aggregate's id (a case, a negotiation, an exchange) in
  ``casebook_idempotency``.

Renames only: no stored byte of an event changes, and the chain's links (which cover
positions, ids, versions, topics and stored bytes, not table names) still verify.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
REBUILD_VIEWS = False


def upgrade() -> None:
    op.rename_table("chainedregister_events", "casebook_events")
    op.execute(
        "ALTER INDEX chainedregister_events_aggregate_idx RENAME TO casebook_events_aggregate_idx"
        if op.get_bind().dialect.name == "postgresql"
        else "DROP INDEX chainedregister_events_aggregate_idx"
    )
    if op.get_bind().dialect.name == "sqlite":  # SQLite cannot rename an index
        op.create_index(
            "casebook_events_aggregate_idx",
            "casebook_events",
            ["originator_id", "originator_version"],
            unique=True,
        )
    for table, old, new in (
        ("casebook_person_keys", "case_id", "key_id"),
        ("casebook_erasures", "case_id", "key_id"),
        ("casebook_idempotency", "case_id", "aggregate_id"),
    ):
        op.alter_column(table, old, new_column_name=new)
    if op.get_bind().dialect.name == "postgresql":  # the name PostgreSQL gave it, renamed
        op.execute(
            "ALTER TABLE casebook_erasures RENAME CONSTRAINT casebook_erasures_case_id_key "
            "TO casebook_erasures_key_id_key"
        )


def downgrade() -> None:
    raise NotImplementedError("a register is never taken back to an earlier schema")
