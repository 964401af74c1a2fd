"""What ``GET /metrics`` reads from the database when it is scraped: the chain's head,
the newest checkpoint, whether the schema is current or owes a views rebuild, and the
progress of a views rebuild whose copies are in the database (``infrastructure.shadow``).

Numbers and flags only, never a name or an id. Read on the store's short-wait engine
(``CASEBOOK_READ_AUDIT_WAIT_MS`` at most for a connection, and on PostgreSQL for a
statement), outside any write: a scrape never takes the register's write lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import MetaData, Table, select
from sqlalchemy.engine import Connection

from infrastructure import checkpoints, migrations, tables
from infrastructure.shadow import SCHEMA, STATE

if TYPE_CHECKING:
    from infrastructure.store import Store

# PostgreSQL: the rebuild's state lives in the shadow schema.
_PG_STATE = STATE.to_metadata(MetaData(), schema=SCHEMA)


@dataclass(frozen=True)
class RebuildProgress:
    """A views rebuild whose copies are in the database: running, or stopped half-way
    (it resumes when run again). ``done`` of ``total`` events projected into the copies
    (``total``: the log when it began; the writes made since are caught up after)."""

    done: int
    total: int
    filled: bool  # the copies hold every event up to where the rebuild began


@dataclass(frozen=True)
class Vitals:
    schema_current: bool
    rebuild_owed: bool = False
    chain_position: int = 0  # events in the hash chain
    views_position: int = 0  # the log position the views have reached
    checkpoint_position: int | None = None  # of the newest signed checkpoint
    checkpoint_made_at: datetime | None = None
    rebuild: RebuildProgress | None = None

    def checkpoint_age_seconds(self, now: datetime | None = None) -> float | None:
        if self.checkpoint_made_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.checkpoint_made_at).total_seconds()


def read(store: Store) -> Vitals:
    """The register's vitals now (a few indexed reads)."""
    with store.side_engine.connect() as conn:
        if migrations.state(conn) != "current":
            return Vitals(schema_current=False)
        head = conn.execute(
            select(tables.register_head.c.position, tables.register_head.c.chain_position)
        ).first()
        newest = checkpoints.listed(conn, 1)
        owed = set(conn.execute(select(tables.owed.c.what)).scalars())
        rebuild = _rebuild(conn, store.dialect == "sqlite")
    made_at = None
    if newest:
        made_at = datetime.fromisoformat(newest[0][1].made_at)
        made_at = made_at if made_at.tzinfo else made_at.replace(tzinfo=UTC)
    return Vitals(
        schema_current=True,
        rebuild_owed=migrations.VIEWS_REBUILD in owed,
        chain_position=int(head.chain_position) if head else 0,
        views_position=int(head.position) if head else 0,
        checkpoint_position=newest[0][1].position if newest else None,
        checkpoint_made_at=made_at,
        rebuild=rebuild,
    )


def _rebuild(conn: Connection, sqlite: bool) -> RebuildProgress | None:
    state: Table = STATE if sqlite else _PG_STATE
    if not sqlalchemy.inspect(conn).has_table(state.name, state.schema):
        return None
    row: Any = conn.execute(select(state.c.done, state.c.total, state.c.filled)).first()
    if row is None:
        return None
    return RebuildProgress(int(row.done), int(row.total), bool(row.filled))
