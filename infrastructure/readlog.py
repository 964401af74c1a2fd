"""The read audit: every answer that carries a person's data records who read which
case, when, and through which route, before the answer leaves. If the record cannot be
written the read is refused (``ReadNotRecorded``, answered 503): a read nobody can
account for does not happen.

Each record is its own short transaction, on an engine of its own that waits at most
``CASEBOOK_READ_AUDIT_WAIT_MS`` for a lock, a statement or a pooled connection, outside
the register's write lock (it writes no event). So reads never wait for the lock a long
exchange holds, except on SQLite, where every writer takes the one database lock for
the insert itself; there, and whenever a lock is held on the audit's table, a read waits
that long at most and is then refused (503, Retry-After), never holding a worker thread
for the length of someone else's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy.exc
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from infrastructure import tables
from infrastructure.keys import ApiKey


class ReadNotRecorded(Exception):
    """The read audit could not be written: nothing is answered."""


@dataclass(frozen=True)
class Reader:
    """Who reads, and through which route (its template, e.g. /cases/{case_id})."""

    key: ApiKey
    route: str


def record(engine: Engine, reader: Reader | None, case_ids: Iterable[UUID]) -> None:
    """Record that ``reader`` read these cases' personal data; raise if it cannot be."""
    ids = list(dict.fromkeys(case_ids))
    if reader is None or not ids:
        return
    now = datetime.now(UTC)
    key = reader.key
    rows = [
        {
            "read_at": now,
            "case_id": case_id,
            "key_name": key.name,
            "org": key.org,
            "role": key.role,
            "route": reader.route,
        }
        for case_id in ids
    ]
    try:
        with engine.begin() as conn:
            conn.execute(insert(tables.access_log), rows)
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise ReadNotRecorded() from e


def listed(
    conn: Connection, case_id: UUID, limit: int, after: int
) -> list[tuple[int, dict[str, Any]]]:
    """The reads of one case, oldest first, after the record ``after``."""
    t = tables.access_log
    rows = conn.execute(
        select(t).where(t.c.case_id == case_id, t.c.id > after).order_by(t.c.id).limit(limit)
    ).all()
    return [
        (
            r.id,
            {
                "case_id": str(r.case_id),
                "read_at": r.read_at.replace(tzinfo=r.read_at.tzinfo or UTC).isoformat(),
                "key": r.key_name,
                "org": r.org,
                "role": r.role,
                "route": r.route,
            },
        )
        for r in rows
    ]
