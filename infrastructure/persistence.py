"""Where the register's events live: eventsourcing-sqlalchemy, tuned for our guarantees.

``CasebookFactory`` is eventsourcing-sqlalchemy's factory with its engine configured
before the first connection is made:

- SQLite: WAL journal, ``synchronous=FULL`` (a write acknowledged to a client survives
  a power cut, not only a killed process; WAL with NORMAL may lose the last commits),
  a busy timeout, and write transactions that start with ``BEGIN IMMEDIATE`` so that two
  processes never both read and then both try to upgrade to writing (that upgrade fails
  at once with "database is locked", whatever the timeout).
- SQLite: ``secure_delete``, so that what an erasure deletes is overwritten.
- PostgreSQL: a ``lock_timeout`` so that a writer waiting for the register's write lock
  gives up and the client gets a 503 instead of a hung request; pooled connections are
  checked before use (``pool_pre_ping``), so that a backend that was terminated or a
  server that restarted costs a reconnect, not a failed request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar
from functools import cache
from typing import Any
from uuid import UUID

import sqlalchemy
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Table, create_engine, event, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from infrastructure import tables
from infrastructure.settings import Settings

log = logging.getLogger("casebook")

# Set while a write transaction is being opened: SQLite then begins IMMEDIATE.
writing: ContextVar[bool] = ContextVar("writing", default=False)

SQLITE_SYNCHRONOUS = "FULL"


class CasebookRecorder(SQLAlchemyApplicationRecorder):
    """The library's recorder, reading a case's events with one Core SELECT of plain
    rows instead of ORM objects: replaying a long case spent a third of its time
    building and expiring ORM instances that were thrown away at once."""

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        t = self.events_record_cls.__table__
        version = t.c.originator_version
        query = select(t.c.originator_id, version, t.c.topic, t.c.state).where(
            t.c.originator_id == originator_id
        )
        if gt is not None:
            query = query.where(version > gt)
        if lte is not None:
            query = query.where(version <= lte)
        query = query.order_by(version.desc() if desc else version)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction(commit=False) as session:
            rows = session.execute(query).all()
        return [StoredEvent(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        """The library's insert, as a Core INSERT ... RETURNING of plain rows instead of
        an ORM object per event and a flush: a bulk opening of 1,000 people spent a
        quarter of its time building and flushing them. The ids come back in the order
        of the events (``sort_by_parameter_order``): on PostgreSQL in batches of many
        rows a statement, on SQLite a row a statement on one prepared statement."""
        t = self.events_record_cls.__table__
        rows = [
            {
                "originator_id": e.originator_id,
                "originator_version": e.originator_version,
                "topic": e.topic,
                "state": e.state,
            }
            for e in stored_events
        ]
        if self._has_autoincrementing_ids:
            self._lock_table(session)
        statement = insert(t).returning(t.c.id, sort_by_parameter_order=True)
        ids = list(session.execute(statement, rows).scalars())
        self._notify_channel(session)
        return ids


class CasebookDatastore(SQLAlchemyDatastore):
    """The library's datastore, whose engine checks a pooled PostgreSQL connection
    before handing it out, and holds at most ``MAIN_POOL + MAIN_OVERFLOW`` of them (the
    library passes no engine options of its own)."""

    def __init__(self, **kwargs: Any):
        if str(kwargs.get("url") or "").startswith("postgresql"):
            kwargs.setdefault("pool_pre_ping", True)
            # Bounded, and a wait for a free connection that ends in a 503 (busy).
            kwargs.setdefault("pool_size", MAIN_POOL)
            kwargs.setdefault("max_overflow", MAIN_OVERFLOW)
            kwargs.setdefault("pool_timeout", 10)
        super().__init__(**kwargs)


class CasebookFactory(SQLAlchemyFactory):
    """eventsourcing-sqlalchemy with the connection settings above."""

    datastore_class = CasebookDatastore
    application_recorder_class = CasebookRecorder

    def __init__(self, env: Environment):
        super().__init__(env)
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        if engine.dialect.name == "sqlite":
            busy_ms = int(env.get("CASEBOOK_SQLITE_BUSY_TIMEOUT_MS") or 30_000)
            _configure_sqlite(engine, busy_ms)
            # We set WAL ourselves, outside any transaction, on every connection.
            self.datastore._tried_init_sqlite_wal_mode = True
            self.datastore.is_sqlite_wal_mode = True
        elif engine.dialect.name == "postgresql":
            lock_ms = int(env.get("CASEBOOK_PG_LOCK_TIMEOUT_MS") or 10_000)
            _configure_postgres(engine, lock_ms)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module, so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # Freed space is overwritten with zeros, so that a destroyed person key or an
        # erased person's rows do not linger in free pages (``scrub``).
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing.get() else "BEGIN")


def _configure_postgres(
    engine: Engine, lock_timeout_ms: int, statement_timeout_ms: int | None = None
) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
            if statement_timeout_ms is not None:
                cursor.execute(f"SET statement_timeout = {int(statement_timeout_ms)}")
        dbapi_connection.commit()


# Connections per process on PostgreSQL: the register's pool (reads and writes) and a
# small one of short waits beside it (the read audit, key checks). Several processes on
# several hosts share one server: workers x hosts x MAX_CONNECTIONS must stay under its
# max_connections (100 by default).
MAIN_POOL, MAIN_OVERFLOW = 8, 4
SIDE_POOL, SIDE_OVERFLOW = 2, 4
MAX_CONNECTIONS = MAIN_POOL + MAIN_OVERFLOW + SIDE_POOL + SIDE_OVERFLOW


def plain_engine(settings: Settings) -> Engine:
    """An engine with the register's connection settings, for work done without the
    register itself (schema migrations)."""
    engine = create_engine(settings.url())
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
    else:
        _configure_postgres(engine, settings.pg_lock_timeout_ms)
    return engine


def short_wait_engine(settings: Settings, wait_ms: int, pool_size: int = SIDE_POOL) -> Engine:
    """An engine of its own for short work beside the register's (the read audit, key
    checks): the same durability settings, but it waits at most ``wait_ms`` for a lock,
    a statement or a pooled connection, so that a lock held elsewhere or a busy pool
    never ties up a worker thread (or, for the key check on SQLite, the event loop) for
    longer: the request is answered 503 instead."""
    url, wait = settings.url(), max(wait_ms / 1000, 0.1)
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=wait)
        _configure_sqlite(engine, wait_ms)
    else:
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=SIDE_OVERFLOW,
            pool_timeout=wait,
        )
        _configure_postgres(engine, wait_ms, statement_timeout_ms=wait_ms)
    return engine


def persistence_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for our settings."""
    return {
        "PERSISTENCE_MODULE": "infrastructure.persistence:CasebookFactory",
        "SQLALCHEMY_URL": settings.url(),
        "CREATE_TABLE": "n",  # the schema is the migrations' (infrastructure.migrations)
        "CASEBOOK_SQLITE_BUSY_TIMEOUT_MS": str(settings.sqlite_busy_timeout_ms),
        "CASEBOOK_PG_LOCK_TIMEOUT_MS": str(settings.pg_lock_timeout_ms),
    }


# An erasure's scrub on SQLite: tries (0.1 s apart: about five seconds in all), and how
# long each waits for a reader of an older snapshot, holding the write lock meanwhile.
SCRUB_TRIES, SCRUB_WAIT_MS = 45, 10


def scrub(engine: Engine) -> None:
    """After an erasure: push what it overwrote out of the database's files, without
    stopping the register's reads (or, for more than a moment, its writes).

    SQLite (``secure_delete`` is on, so the freed cells are zeros): copy the WAL into
    the database file and truncate it, so that no older copy of the destroyed key's
    page remains in either. That checkpoint holds the write lock while it copies the
    WAL (its frames since the last checkpoint: a few MB at most, not the file) and
    while it waits for readers of an older snapshot; readers never wait for it. So each
    try waits at most ``SCRUB_WAIT_MS`` for them (not the connection's busy timeout of
    many seconds, during which every write would wait too), then lets writes through
    before the next; after ``SCRUB_TRIES`` it is left to the next erasure, logged.
    PostgreSQL: a plain VACUUM of the key, view and name tables, outside any
    transaction, which removes the dead row versions (the destroyed wrapped key's among
    them) and takes no lock that reads or writes wait for; not VACUUM FULL, whose
    exclusive lock stopped every read of the register while it rewrote the table, nor
    the truncation of empty pages at the end, which takes one briefly. Neither reaches
    backups, replicas or PostgreSQL's write-ahead log: a master-key rotation does (the
    README's data-protection section)."""
    if engine.dialect.name == "sqlite":
        for _ in range(SCRUB_TRIES):
            with engine.connect() as conn:
                waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {SCRUB_WAIT_MS}")
                try:
                    busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
                finally:
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited or 0)}")
            if busy is not None and busy[0] == 0:
                return
            time.sleep(0.1)
        log.warning("erasure: the WAL could not be truncated yet (readers); retry later")
        return
    names = (tables.person_keys, tables.case_views, tables.case_name_keys)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM (TRUNCATE false) {', '.join(t.name for t in names)}")


class PlannerStatistics:
    """PostgreSQL's planner chooses how to page a list from its statistics of the
    tables; with none (a register filled faster than autovacuum looks, or a server with
    autovacuum off, as on our CI machine) it guessed that an organisation sees 20 cases
    and read all 20,000 it sees to sort them: a list page took 70 ms at 20,000 people
    instead of 0.3 ms. So each process analyses the tables the reads plan over itself,
    as autovacuum would: once it has written ``FIRST`` events, then each time it has
    written a tenth of the log again. SQLite's plans do not depend on statistics (the
    queries are written for its planner without them; ``tests/integration/
    test_query_plans.py``), so it is left alone there."""

    FIRST = 1000
    TABLES = (
        tables.case_views,
        tables.case_access,
        tables.case_periods,
        tables.case_name_keys,
        tables.counts,
        tables.count_days,
    )

    def __init__(self, engine: Engine):
        self.engine = engine
        self.written = 0  # events this process wrote since it last analysed
        self.due = self.FIRST
        self._running = threading.Lock()  # one ANALYZE at a time per process
        self._thread: threading.Thread | None = None

    def wrote(self, events: int, head: int) -> None:
        """After a commit: ``events`` written, the log now ``head`` long. The ANALYZE
        runs on a thread of its own: the write's caller has its answer without waiting
        for it (ANALYZE takes no lock that writers or readers wait for, but it may wait
        for another's, such as a views rebuild's swap)."""
        if self.engine.dialect.name != "postgresql":
            return
        self.written += events
        if self.written >= self.due and self._running.acquire(blocking=False):
            self.written, self.due = 0, max(self.FIRST, head // 10)
            self._thread = threading.Thread(target=self._analyse_then_release, daemon=True)
            self._thread.start()

    def wait(self) -> None:
        """Let an ANALYZE under way finish (the store closing)."""
        if self._thread is not None:
            self._thread.join()

    def _analyse_then_release(self) -> None:
        try:
            self.analyse()
        finally:
            self._running.release()

    def analyse(self) -> None:
        """ANALYZE the tables (a sample of each: a fraction of a second), quietly: the
        write it follows has committed, and a failure here costs only a slower plan. It
        gives up rather than wait long for a lock or run long."""
        if self.engine.dialect.name != "postgresql":
            return
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("SET lock_timeout = '2s'")
                c.exec_driver_sql("SET statement_timeout = '120s'")
                c.exec_driver_sql("ANALYZE " + ", ".join(t.name for t in self.TABLES))
        except Exception as e:  # by type only: a message may carry SQL
            log.warning("planner statistics not refreshed (%s)", type(e).__name__)


@cache
def lock_projected(engine: Engine) -> str:
    """PostgreSQL: LOCK TABLE of the projected tables this register has (one not yet
    upgraded, opened to be verified, lacks the newer ones), for ``Store.snapshot``."""
    present = set(sqlalchemy.inspect(engine).get_table_names())
    names = ", ".join(t.name for t in tables.PROJECTED if t.name in present)
    return f"LOCK TABLE {names} IN ACCESS SHARE MODE" if names else "SELECT 1"


def read_aggregates(
    conn: Connection, events: Table, mapper: Any, keyring: Any, aggregate_ids: list[UUID]
) -> dict[UUID, Any]:
    """Many aggregates by id (None for an unknown id), built afresh from every event of
    each, read in one query per 500 ids, their keys opened in one query first."""
    out: dict[UUID, Any] = dict.fromkeys(aggregate_ids)
    ordered = sorted(out)
    keyring.load(ordered, conn)
    columns = (events.c.originator_id, events.c.originator_version, events.c.topic)
    for i in range(0, len(ordered), 500):
        rows = conn.execute(
            select(*columns, events.c.state)
            .where(events.c.originator_id.in_(ordered[i : i + 500]))
            .order_by(events.c.originator_id, events.c.originator_version)
        )
        for row in rows:
            aggregate_id = UUID(str(row.originator_id))
            stored = StoredEvent(aggregate_id, row.originator_version, row.topic, bytes(row.state))
            domain_event: Any = mapper.to_domain_event(stored)
            out[aggregate_id] = domain_event.mutate(out[aggregate_id])
    return out
