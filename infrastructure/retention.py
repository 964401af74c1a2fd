"""Retention: what the register keeps for a while only, and ``casebook prune``, which
removes it once its time is up.

Two kinds of rows expire; nothing else is ever pruned (the events, their hash chain,
the checkpoints, the keys and the views are not touched):

- idempotency records, ``CASEBOOK_IDEMPOTENCY_HOURS`` after the write they answer for
  (``infrastructure.idempotency``: a write that reuses an expired key forgets it
  itself, so no write depends on a prune having run);
- read-audit records, ``CASEBOOK_READ_AUDIT_DAYS`` after the read, or never
  ("forever").

A prune removes the oldest rows in batches of at most ``BATCH``, each its own short
transaction: an idempotency batch holds the register's write lock as a write does
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the events table's lock), since writes read
and replace those records under it; a read-audit batch holds SQLite's one writer lock
too (any write does), and on PostgreSQL no lock of the register's (the read audit
inserts new rows beside the old ones). On SQLite it then pauses, so that writers
waiting in SQLite's busy handler, which sleeps up to 100 ms between tries, get the lock
before the next batch. A prune killed half-way has committed whole batches only: run
it again and it goes on.

Each run that removes anything says so in ``casebook_prunes`` (the cutoff, how many,
the oldest and newest removed), in the transaction of each batch: the read audit is not
hash-chained or counted anywhere, but an auditor listing a case's reads relies on it
being complete, so the answer says from when it is (``pruned_before``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Delete, Select, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from infrastructure import tables
from infrastructure.persistence import writing
from infrastructure.store import Store

BATCH = 2_000  # rows a batch removes at most
SQLITE_PAUSE = 0.1  # seconds between two batches on SQLite, for the writers waiting

IDEMPOTENCY, READ_AUDIT = "idempotency", "read_audit"


@dataclass
class Removal:
    """What a prune removed (or, in a dry run, would remove) of one kind: the rows
    stamped before ``cutoff`` (None: kept forever), how many, the oldest and newest."""

    kind: str
    cutoff: datetime | None
    removed: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None

    def add(self, count: int, oldest: datetime | None, newest: datetime | None) -> None:
        self.removed += count
        if oldest is not None:
            oldest = _aware(oldest)
            self.oldest = oldest if self.oldest is None else min(self.oldest, oldest)
        if newest is not None:
            newest = _aware(newest)
            self.newest = newest if self.newest is None else max(self.newest, newest)


class PruneStopped(Exception):
    """A prune failed part of the way: what it had removed by then is committed."""

    def __init__(self, removals: Sequence[Removal], cause: BaseException):
        super().__init__(type(cause).__name__)
        self.removals, self.cause = list(removals), cause


@dataclass(frozen=True)
class _Kind:
    name: str
    table: Table
    stamp: Column[Any]  # when the row was made (a record) or the read was done
    # The row's key, by which a batch deletes exactly the rows it selected; None: by
    # the range of their stamps, which are unique (each write's record has the write's
    # own stamp; a list of key pairs is a filter of thousands of ORs to PostgreSQL).
    key: Column[Any] | None
    register_lock: bool  # changed by writes under the register's write lock


KINDS = (
    _Kind(
        IDEMPOTENCY,
        tables.idempotency,
        tables.idempotency.c.created_at,
        None,
        register_lock=True,
    ),
    _Kind(
        READ_AUDIT,
        tables.access_log,
        tables.access_log.c.read_at,
        tables.access_log.c.id,  # stamps are shared by the rows of one read
        register_lock=False,
    ),
)


class Retention:
    """The prune of one store (``casebook prune``)."""

    def __init__(self, store: Store, batch: int = BATCH, pause: float | None = None):
        self.store, self.batch = store, batch
        default = SQLITE_PAUSE if store.dialect == "sqlite" else 0.0
        self.pause = default if pause is None else pause

    def cutoffs(self) -> dict[str, datetime | None]:
        """Before when each kind's rows are past their time (None: kept forever).

        Idempotency records: the window before the register's last stamp. Every later
        write is stamped after it, so whatever is removed is expired for every write to
        come, whichever host's clock runs ahead. Read-audit records: the period before
        this host's clock (their stamps are the reading hosts' clocks; at years, their
        drift does not matter)."""
        settings = self.store.settings
        with self.store.engine.connect() as conn:
            last = conn.execute(select(tables.register_head.c.recorded_at)).scalar()
        now = datetime.now(UTC)
        days = settings.read_audit_days
        return {
            IDEMPOTENCY: _aware(last or now) - self.store.window,
            READ_AUDIT: None if days == "forever" else now - timedelta(days=days),
        }

    def survey(self) -> list[Removal]:
        """What a prune now would remove (``--dry-run``): nothing is written."""
        cutoffs = self.cutoffs()
        found = []
        with self.store.engine.connect() as conn:
            for kind in KINDS:
                removal = Removal(kind.name, cutoffs[kind.name])
                if removal.cutoff is not None:
                    removal.add(*conn.execute(past(kind, removal.cutoff)).one())
                found.append(removal)
        return found

    def prune(self, progress: Callable[[str, int], None] | None = None) -> list[Removal]:
        """Remove every row past its time, in batches; ``progress(kind, rows)`` after
        each batch has committed. ``PruneStopped`` says what was removed if it fails."""
        cutoffs = self.cutoffs()
        done = [Removal(kind.name, cutoffs[kind.name]) for kind in KINDS]
        try:
            for kind, removal in zip(KINDS, done, strict=True):
                if removal.cutoff is not None:
                    self._prune(kind, removal, progress)
        except Exception as e:
            raise PruneStopped(done, e) from e
        return done

    def _prune(
        self, kind: _Kind, removal: Removal, progress: Callable[[str, int], None] | None
    ) -> None:
        assert removal.cutoff is not None
        statement: int | None = None  # this run's row in casebook_prunes
        with self.store.engine.connect() as conn:
            while True:
                with self._batch(conn, kind):
                    removed = 0
                    rows = conn.execute(oldest(kind, removal.cutoff, self.batch)).all()
                    if rows:
                        removed = conn.execute(removing(kind, rows, removal.cutoff)).rowcount
                        removal.add(removed, rows[0].stamp, rows[-1].stamp)
                        statement = _account(conn, statement, removal)
                    elif statement is not None:
                        t = tables.prunes
                        finished = {"finished_at": datetime.now(UTC)}
                        conn.execute(update(t).where(t.c.id == statement).values(**finished))
                if not rows:
                    return
                if progress is not None:
                    progress(kind.name, removed)
                time.sleep(self.pause)

    @contextmanager
    def _batch(self, conn: Connection, kind: _Kind) -> Iterator[None]:
        """One short write transaction on ``conn``, holding the write lock that
        ``kind``'s rows are changed under (see the module). SQLite: then the write-ahead
        log is copied into the file by this connection (a passive checkpoint, which no
        writer waits for), else the service's next commit past the log's threshold
        would do it, hundreds of milliseconds of the prune's pages."""
        token = writing.set(True)  # SQLite: BEGIN IMMEDIATE, as every write
        try:
            transaction = conn.begin()
        finally:
            writing.reset(token)
        with transaction:
            if kind.register_lock and self.store.dialect == "postgresql":
                conn.exec_driver_sql(f"LOCK TABLE {self.store.events_table.name} IN EXCLUSIVE MODE")
            yield
        if self.store.dialect == "sqlite":
            driver: Any = conn.connection.driver_connection  # outside any transaction
            driver.execute("PRAGMA wal_checkpoint(PASSIVE)")


def past(kind: _Kind, cutoff: datetime) -> Select[Any]:
    """How many rows of ``kind`` are past their time, the oldest and newest stamps."""
    stamp = kind.stamp
    return select(func.count(), func.min(stamp), func.max(stamp)).where(stamp < cutoff)


def oldest(kind: _Kind, cutoff: datetime, limit: int) -> Select[Any]:
    """A batch: the oldest rows of ``kind`` past their time (their key, their stamp)."""
    keyed = () if kind.key is None else (kind.key,)
    return (
        select(*keyed, kind.stamp.label("stamp"))
        .where(kind.stamp < cutoff)
        .order_by(kind.stamp)
        .limit(limit)
    )


def removing(kind: _Kind, rows: Sequence[Any], cutoff: datetime) -> Delete:
    """The deletion of a batch (``oldest``'s rows): within their stamps' range, so that
    the database reads the batch's rows only, and by their key where stamps are shared."""
    within = [kind.stamp >= rows[0].stamp, kind.stamp <= rows[-1].stamp, kind.stamp < cutoff]
    if kind.key is not None:
        within.append(kind.key.in_([row[0] for row in rows]))
    return delete(kind.table).where(*within)


def _account(conn: Connection, statement: int | None, removal: Removal) -> int:
    """Say in ``casebook_prunes``, in the batch's transaction, what this run removed."""
    t = tables.prunes
    counted = {"removed": removal.removed, "oldest": removal.oldest, "newest": removal.newest}
    if statement is None:
        values = {"kind": removal.kind, "cutoff": removal.cutoff, **counted}
        made = conn.execute(
            insert(t).values(started_at=datetime.now(UTC), **values).returning(t.c.id)
        )
        return int(made.scalar_one())
    conn.execute(update(t).where(t.c.id == statement).values(**counted))
    return statement


def pruned_before(conn: Connection) -> datetime | None:
    """The newest cutoff of a read-audit prune: reads before it may have been removed
    (None: none ever were)."""
    t = tables.prunes
    found = conn.execute(select(func.max(t.c.cutoff)).where(t.c.kind == READ_AUDIT)).scalar()
    return None if found is None else _aware(found)


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
