"""Shadow copies of the projected tables: where ``casebook views rebuild`` refills the
views while the service keeps answering and writing, and the one short transaction that
puts them in place of the live ones (``infrastructure.rebuild`` drives the whole).

**How the projection code reaches the copies.** It runs unchanged, on a connection whose
statements SQLAlchemy translates (``schema_translate_map``, ``{None: SCHEMA}``): every
table it names, and only those, is read and written in the shadow.

- **PostgreSQL**: the copies live in a schema of their own, ``casebook_rebuild``, under
  the live tables' names, so their indexes, constraints and sequences have the very
  names the migrations gave the live ones (such names are per schema). The swap moves
  the live tables out to ``casebook_retired`` and the copies in (``ALTER TABLE ... SET
  SCHEMA``): changes to the catalog, not to rows, so as quick at a million people as
  at ten. A table the projections name that has no copy is an error, not a write to
  the live one. The retired tables are dropped once the swap has committed.
- **SQLite**: an attached file cannot be swapped in without copying every row, so the
  copies are in the register's file, named ``<table>__rebuild``. The translated
  statements name ``casebook_rebuild.<table>``; a hook on that one connection rewrites
  each such name to its copy, and refuses one that is not projected. The swap renames
  the live tables to ``<table>__retired`` and the copies to the live names. SQLite
  cannot rename an index, and making one again under the declared name would hold the
  database's only writer lock for seconds at a million people (every writer would
  wait), so each copy's index takes whichever of two names its live index does not
  have: the declared one, or the declared one with ``__alt``. Nothing that runs with
  the service reads index names (the planner does not; the query-plan test asks for
  scans by table). Migrations do: ``casebook upgrade``, which runs with the service
  stopped, gives every index its declared name back before it applies them and after
  the rebuild one may ask for (``before_migrations``), so that migrations always find
  the schema their revisions made, and a new register (which the migrations test
  compares with the revisions) has the declared names. The retired tables are emptied a few
  thousand rows per transaction (``secure_delete`` zeroes what is freed, which a DROP
  of a large table would do in one long transaction), then dropped.

The state of the rebuild (``STATE``: the log position the fill stops at, the last
aggregate filled, the position the copies have reached) lives in the shadow too and is
committed with each batch of rows, so a killed rebuild resumes where it stopped. It
names what the copies were built by and from (``rebuild.fingerprint``: the code, the schema's
revision, the master key; and the chain's link at that position): a copy made by other
code, for another schema or from another log is thrown away, never swapped in.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    event,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import quoted_name

from infrastructure import tables
from infrastructure.persistence import SQLITE_SYNCHRONOUS, writing

if TYPE_CHECKING:
    from infrastructure.store import Store

SCHEMA = "casebook_rebuild"  # PostgreSQL's shadow schema; on both, what statements name
RETIRED = "casebook_retired"  # PostgreSQL: where the replaced tables wait to be dropped
SHADOW_SUFFIX, RETIRED_SUFFIX, ALT_SUFFIX = "__rebuild", "__retired", "__alt"  # SQLite
LOCK_ID = 0x6361_7365_7265_6275  # PostgreSQL advisory lock: one rebuild at a time
SWAP_LOCK_WAIT_MS = 500  # PostgreSQL: readers of the live tables the swap waits for
CACHE_KB = 65_536  # SQLite: the shadow connection's page cache (a fixed size)
DROP_ROWS = 2_000  # SQLite: rows of a replaced table deleted per transaction
LOCK_WAIT = 30.0  # SQLite: seconds the shadow connection tries for the writer lock

BIGINT = BigInteger().with_variant(Integer(), "sqlite")
STATE = Table(
    "casebook_rebuild_state",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("head", BIGINT, nullable=False),  # the fill takes the log up to here
    Column("head_hash", String(64), nullable=True),  # the chain's link there
    Column("total", BIGINT, nullable=False),  # events up to ``head``
    Column("cursor", Uuid, nullable=True),  # the last aggregate filled, in id order
    Column("filled", Boolean, nullable=False),  # the fill (and the recount) are done
    Column("position", BIGINT, nullable=False),  # the copies hold every event up to here
    Column("done", BIGINT, nullable=False),  # events projected so far
)


class RebuildBusy(Exception):
    """Another views rebuild is running on this register."""


class Shadow:
    """The shadow copies of ``projected`` on the store's database."""

    def __init__(self, store: Store, projected: Sequence[Table]):
        self.store = store
        self.engine = store.engine
        self.sqlite = store.dialect == "sqlite"
        self.projected = tuple(projected)
        self.events = store.events_table.name
        # SQLite: the name each translated table has in the file.
        self.names = {t.name: t.name + SHADOW_SUFFIX for t in self.projected}
        self.names[STATE.name] = STATE.name

    # ---- connections and transactions ------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection on which the projection code reads and writes the copies. Its
        commits need not survive a power cut (SQLite ``synchronous=NORMAL``, PostgreSQL
        ``synchronous_commit=off``): a lost one is redone, the state with its rows; the
        swap commits durably. It is closed, never handed back to the pool."""
        conn = self.engine.connect()
        try:
            conn.execution_options(schema_translate_map={None: SCHEMA})
            if self.sqlite:
                event.listen(conn, "before_cursor_execute", self._rename, retval=True)
                self._pragma(conn, "PRAGMA synchronous = NORMAL")
                self._pragma(conn, f"PRAGMA cache_size = -{CACHE_KB}")
                self._pragma(conn, "PRAGMA busy_timeout = 1")  # ``_begin`` polls
                conn.polls_for_lock = True  # type: ignore[attr-defined]
            else:
                conn.exec_driver_sql("SET synchronous_commit = off")
                conn.commit()
            yield conn
        finally:
            conn.invalidate()
            conn.close()

    _SHADOW_NAME = re.compile(rf'\b{SCHEMA}\.(?:"([^"]+)"|(\w+))')

    def _rename(self, *args: Any) -> tuple[str, Any]:
        statement, parameters = args[2], args[3]
        return self._SHADOW_NAME.sub(self._copy_name, statement), parameters

    def _copy_name(self, match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in self.names:
            raise RuntimeError(f"a views rebuild writes only projected tables, not {name}")
        return f'"{self.names[name]}"'

    @staticmethod
    def _pragma(conn: Connection, statement: str) -> None:
        """A SQLite pragma, outside any transaction (the driver is in autocommit)."""
        conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]

    @contextmanager
    def writing(self, conn: Connection) -> Iterator[None]:
        """One short transaction on the copies. SQLite: it holds the database's writer
        lock (``BEGIN IMMEDIATE``) while it lasts, so each is kept short, and then the
        rebuild copies the write-ahead log into the file itself (a passive checkpoint,
        which no writer waits for): else the service's next commit past the log's
        threshold would, hundreds of milliseconds of the rebuild's pages. PostgreSQL:
        it takes no lock a writer of the register waits for."""
        with _immediate(conn):
            yield
        if self.sqlite:
            self._pragma(conn, "PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def register_locked(self, conn: Connection) -> Iterator[None]:
        """A transaction holding the register's write lock, as ``Store.write`` takes it
        (SQLite ``BEGIN IMMEDIATE``, PostgreSQL the events table's lock), committed
        durably: every writer waits until it ends."""
        if self.sqlite:
            self._pragma(conn, f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        try:
            with _immediate(conn):
                if not self.sqlite:
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = on")
                    conn.exec_driver_sql(f"LOCK TABLE {self.events} IN EXCLUSIVE MODE")
                yield
        finally:
            if self.sqlite:
                self._pragma(conn, "PRAGMA synchronous = NORMAL")

    @contextmanager
    def only_one(self) -> Iterator[None]:
        """Held for the whole rebuild, and let go if its process dies: a file lock beside
        the SQLite file, a PostgreSQL session's advisory lock."""
        if self.sqlite:
            with _file_lock(Path(f"{self.store.settings.sqlite_path()}.rebuild-lock")):
                yield
            return
        with self.engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": LOCK_ID})
            conn.commit()
            if not got.scalar_one():
                raise RebuildBusy("another views rebuild is running on this register")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
                conn.commit()

    # ---- the copies ------------------------------------------------------------------

    def state(self, conn: Connection) -> dict[str, Any] | None:
        """The rebuild's state, or None when there are no copies."""
        if not self._has(conn, STATE.name):
            return None
        row = conn.execute(select(STATE)).first()
        conn.rollback()
        return None if row is None else dict(row._mapping)

    def save(self, conn: Connection, **values: Any) -> None:
        """Update the state, in the transaction of the rows it accounts for."""
        conn.execute(update(STATE), values)

    def create(self, values: dict[str, Any]) -> None:
        """Empty copies of every projected table, and the state, in one transaction."""
        with self.engine.connect() as conn, self.writing(conn):
            if not self.sqlite:
                conn.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
            used = self._index_names(conn)
            metadata = MetaData()
            for table in self.projected:
                self._copy(table, metadata, used)
            state = self._copy(STATE, metadata, used)
            metadata.create_all(conn)
            conn.execute(state.insert().values(id=1, **values))

    def _copy(self, table: Table, metadata: MetaData, used: set[str]) -> Table:
        if not self.sqlite:
            return table.to_metadata(metadata, schema=SCHEMA)
        copy = table.to_metadata(metadata, name=self.names[table.name])
        for index in copy.indexes:
            declared = str(index.name)
            index.name = quoted_name(declared + ALT_SUFFIX if declared in used else declared, None)
            if index.name in used:
                raise RuntimeError(f"both names of index {declared} are taken")
        return copy

    def discard(self) -> None:
        """Throw the copies away (a fresh start, or copies that must not be swapped in):
        the state first, so that a kill half-way leaves nothing that could resume."""
        if not self.sqlite:
            with self.engine.connect() as conn, self.writing(conn):
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            return
        self._drop_slowly([STATE.name])
        self._drop_slowly(self._sqlite_tables(SHADOW_SUFFIX))

    def analyse(self, conn: Connection) -> None:
        """PostgreSQL: the copies' statistics, for the planner of the reads that will use
        them (they move with the tables; new tables have none). SQLite's plans do not
        depend on statistics, and it keeps none."""
        if not self.sqlite:
            with self.writing(conn):
                for table in self.projected:
                    conn.exec_driver_sql(f'ANALYZE {SCHEMA}."{table.name}"')

    def swap(self, conn: Connection, head: int) -> None:
        """In the transaction that holds the register's write lock, with the copies at
        ``head``: put them in the live tables' place and record that the views have
        reached ``head``."""
        if self.sqlite:
            for table in self.projected:
                live = table.name
                conn.exec_driver_sql(f'ALTER TABLE "{live}" RENAME TO "{live}{RETIRED_SUFFIX}"')
                conn.exec_driver_sql(f'ALTER TABLE "{self.names[live]}" RENAME TO "{live}"')
            conn.exec_driver_sql(f'DROP TABLE "{STATE.name}"')
        else:
            live = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            names = ", ".join(f'"{live}"."{t.name}"' for t in self.projected)
            # Readers of the live tables finish first (new ones queue behind the swap);
            # past a short wait the swap gives up, to be tried again.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {SWAP_LOCK_WAIT_MS}")
            conn.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            conn.exec_driver_sql(f"CREATE SCHEMA {RETIRED}")
            for table in self.projected:
                self._copy_grants(conn, live, table.name)
                conn.exec_driver_sql(f'ALTER TABLE "{live}"."{table.name}" SET SCHEMA {RETIRED}')
                conn.exec_driver_sql(f'ALTER TABLE {SCHEMA}."{table.name}" SET SCHEMA "{live}"')
            conn.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")  # the state, nothing else
        head_table = tables.register_head.name
        conn.execute(text(f"UPDATE {head_table} SET position = :position"), {"position": head})

    @staticmethod
    def _copy_grants(conn: Connection, live: str, name: str) -> None:
        """What other roles may do with a live table, they may do with its copy."""
        grants = conn.execute(
            text(
                "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                "WHERE table_schema = :schema AND table_name = :name AND grantee <> "
                "(SELECT tableowner FROM pg_tables WHERE schemaname = :schema "
                "AND tablename = :name)"
            ),
            {"schema": live, "name": name},
        )
        for grantee, privilege in grants:
            who = "PUBLIC" if grantee == "PUBLIC" else f'"{grantee}"'
            conn.exec_driver_sql(f'GRANT {privilege} ON {SCHEMA}."{name}" TO {who}')

    def retire(self) -> None:
        """Drop what a swap replaced (also what a swap killed before it got to that
        left): PostgreSQL in one statement, SQLite a few thousand rows at a time."""
        if not self.sqlite:
            with self.engine.connect() as conn, self.writing(conn):
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {RETIRED} CASCADE")
            return
        self._drop_slowly(self._sqlite_tables(RETIRED_SUFFIX))

    def declare_index_names(self) -> None:
        """SQLite, the service stopped: every index under its declared name again."""
        if self.sqlite:
            with self.engine.connect() as conn, _immediate(conn):
                declared_index_names(conn)

    def _drop_slowly(self, names: list[str]) -> None:
        with self.engine.connect() as conn:
            for name in names:
                if not self._has(conn, name):
                    continue
                deleted = -1
                while deleted != 0:
                    with self.writing(conn):
                        deleted = conn.exec_driver_sql(
                            f'DELETE FROM "{name}" WHERE rowid IN '
                            f'(SELECT rowid FROM "{name}" LIMIT {DROP_ROWS})'
                        ).rowcount
                with self.writing(conn):
                    conn.exec_driver_sql(f'DROP TABLE "{name}"')

    def _has(self, conn: Connection, name: str) -> bool:
        found = sqlalchemy.inspect(conn).has_table(name, None if self.sqlite else SCHEMA)
        conn.rollback()
        return found

    def _sqlite_tables(self, suffix: str) -> list[str]:
        with self.engine.connect() as conn:
            names = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).scalars()
            return sorted(n for n in names if n.endswith(suffix))

    @staticmethod
    def _index_names(conn: Connection) -> set[str]:
        if conn.dialect.name != "sqlite":
            return set()
        rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        return set(rows.scalars())


def before_migrations(engine: Engine) -> None:
    """For ``casebook upgrade``, the service stopped, before a migration runs: no copies
    are left (they were made for the schema being replaced), no replaced table, and on
    SQLite every index bears its declared name, so that the migrations find the schema
    their revisions made. Holds the writer lock while SQLite builds those indexes."""
    with engine.connect() as conn, _immediate(conn):
        if conn.dialect.name != "sqlite":
            for schema in (SCHEMA, RETIRED):
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            return
        names = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        for name in sorted(names.scalars()):
            if name == STATE.name or name.endswith((SHADOW_SUFFIX, RETIRED_SUFFIX)):
                conn.exec_driver_sql(f'DROP TABLE "{name}"')
        declared_index_names(conn)


def declared_index_names(conn: Connection) -> None:
    """SQLite: each index a rebuild left under its ``__alt`` name made again under the
    declared one (in the caller's transaction)."""
    indexes = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    for name, sql in indexes.all():
        if sql is None or not name.endswith(ALT_SUFFIX):
            continue
        declared = name.removesuffix(ALT_SUFFIX)
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
        conn.exec_driver_sql(_INDEX_NAME.sub(rf'\1"{declared}"', sql, count=1))


_INDEX_NAME = re.compile(r'^(CREATE (?:UNIQUE )?INDEX )(?:"[^"]+"|\S+)', re.IGNORECASE)


@contextmanager
def _immediate(conn: Connection) -> Iterator[None]:
    """A write transaction on ``conn``: SQLite begins it IMMEDIATE (``writing`` is set for
    its BEGIN only: other connections opened meanwhile, to read, begin as readers)."""
    token = writing.set(True)
    try:
        transaction = _begin(conn)
    finally:
        writing.reset(token)
    with transaction:
        yield


def _begin(conn: Connection) -> Any:
    """``conn.begin()``; on the shadow connection (SQLite), asked for again every
    millisecond or so until ``LOCK_WAIT`` seconds have passed. SQLite has no queue for
    its writer lock: a writer that finds it taken sleeps, longer each time (up to 100 ms
    between tries), and one that writes back to back takes it again at once; so the
    rebuild, which holds it for moments, looks often instead."""
    if getattr(conn, "polls_for_lock", False) is not True:
        return conn.begin()
    give_up = time.monotonic() + LOCK_WAIT
    while True:
        try:
            return conn.begin()
        except OperationalError as e:
            busy = getattr(e.orig, "sqlite_errorcode", None) == 5  # SQLITE_BUSY
            if not busy or time.monotonic() > give_up:
                raise
        time.sleep(0.0005)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            _lock_file(fd)
        except OSError:
            raise RebuildBusy("another views rebuild is running on this register") from None
        yield
    finally:
        os.close(fd)  # lets the lock go


def _lock_file(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
