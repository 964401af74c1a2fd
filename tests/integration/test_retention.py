"""``casebook prune``'s batches, on both databases: a prune killed half-way has removed
whole batches, says so, and finishes when run again; between two batches the write lock
is free, so writes go on while it runs; a read audit kept forever is never pruned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy
from sqlalchemy import func, insert, select

from api.cli_retention import said
from infrastructure import tables
from infrastructure.persistence import plain_engine
from infrastructure.retention import IDEMPOTENCY, READ_AUDIT, PruneStopped, Retention
from infrastructure.settings import Settings
from infrastructure.store import Store


def old_records(store: Store, reads: int, records: int) -> None:
    """``reads`` read-audit records ten years old, ``records`` idempotency records two
    days old, and one of each made now."""
    now = datetime.now(UTC)
    read = {"key_name": "w", "org": "org-a", "role": "case_worker", "route": "GET /cases"}
    made = {"request_hash": "0" * 64, "status_code": 201, "version": 1}
    with store.engine.begin() as conn:
        conn.execute(tables.register_head.update().values(recorded_at=now))
        conn.execute(
            insert(tables.access_log),
            [
                {**read, "case_id": uuid.uuid4(), "read_at": now - timedelta(days=3650 - n)}
                for n in range(reads)
            ]
            + [{**read, "case_id": uuid.uuid4(), "read_at": now}],
        )
        conn.execute(
            insert(tables.idempotency),
            [
                {
                    **made,
                    "api_key_id": uuid.uuid4(),
                    "idem_key": f"k{n}",
                    "aggregate_id": uuid.uuid4(),
                    "created_at": now - timedelta(hours=48 - n),
                }
                for n in range(records + 1)
            ],
        )
        conn.execute(  # the last one made now
            tables.idempotency.update()
            .where(tables.idempotency.c.idem_key == f"k{records}")
            .values(created_at=now)
        )


def count(store: Store, table: sqlalchemy.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_prune_killed_half_way_is_run_again_and_finishes(store: Store) -> None:
    old_records(store, reads=7, records=5)

    def killed(kind: str, removed: int) -> None:
        if kind == READ_AUDIT:
            raise RuntimeError("the process was killed")

    with pytest.raises(PruneStopped) as stopped:
        Retention(store, batch=2, pause=0).prune(killed)
    done = {r.kind: r.removed for r in stopped.value.removals}
    assert done == {IDEMPOTENCY: 5, READ_AUDIT: 2}  # whole batches only
    assert count(store, tables.access_log) == 1 + 5
    with store.engine.connect() as conn:
        said = conn.execute(select(tables.prunes).order_by(tables.prunes.c.id)).all()
    assert [(s.kind, s.removed, s.finished_at is None) for s in said] == [
        (IDEMPOTENCY, 5, False),
        (READ_AUDIT, 2, True),  # accounted for, and not finished
    ]

    again = Retention(store, batch=2, pause=0).prune()
    assert {r.kind: r.removed for r in again} == {IDEMPOTENCY: 0, READ_AUDIT: 5}
    assert count(store, tables.access_log) == 1 and count(store, tables.idempotency) == 1
    assert Retention(store).survey()[1].removed == 0


def test_between_two_batches_the_write_lock_is_free(settings: Settings, store: Store) -> None:
    """After each batch has committed, another process takes the register's write lock
    at once (SQLite: BEGIN IMMEDIATE that would not wait; PostgreSQL: the events table's
    lock, NOWAIT): a prune holds it for one batch at a time, never for its length."""
    old_records(store, reads=6, records=6)
    other = plain_engine(settings)
    took: list[str] = []

    def write_between(kind: str, removed: int) -> None:
        raw = other.raw_connection()
        try:
            cursor = raw.cursor()
            if settings.is_sqlite:
                cursor.execute("PRAGMA busy_timeout = 0")
                cursor.execute("BEGIN IMMEDIATE")
            else:
                cursor.execute(f"LOCK TABLE {store.events_table.name} IN EXCLUSIVE MODE NOWAIT")
            raw.rollback()
        finally:
            raw.close()
        took.append(kind)

    try:
        removed = Retention(store, batch=2, pause=0).prune(write_between)
    finally:
        other.dispose()
    assert [r.removed for r in removed] == [6, 6]
    assert took == [IDEMPOTENCY] * 3 + [READ_AUDIT] * 3


def test_a_read_audit_kept_forever_is_never_pruned(settings: Settings) -> None:
    store = Store(settings.model_copy(update={"read_audit_days": "forever"}))
    try:
        old_records(store, reads=3, records=2)
        removed = Retention(store, pause=0).prune()
        assert [(r.kind, r.cutoff, r.removed) for r in removed][1] == (READ_AUDIT, None, 0)
        assert removed[0].removed == 2 and count(store, tables.access_log) == 4
        lines = [said(r, store.settings) for r in removed]
    finally:
        store.close()
    assert lines[1] == "read-audit records (kept forever): none removed"
    assert lines[0].startswith("idempotency records (kept 24 h, made before ")
