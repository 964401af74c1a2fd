"""Schema migrations: Alembic owns the register's schema.

Each change to a table is a revision in ``versions/``; the register records the one it
is at in ``casebook_schema_version``. When a store is opened:

- an empty database gets today's schema in one step (``create``: every table as the
  code declares it, then stamped with the newest revision; a test checks that this is
  exactly what running every revision from nothing gives);
- a register at the newest revision opens;
- an older one (or one made before migrations, with no version table) is refused with
  ``UpgradeNeeded``, whose message says to run ``casebook upgrade``; so is one made by
  a newer casebook than this.

``upgrade`` (``casebook upgrade``) brings a register made before migrations to the
baseline (adding any table or index it lacks: the code then added them at each start,
so one last opened by an older release may miss some) and stamps it so, applies every
newer revision in one transaction under the register's write
lock, and says whether one of them asked for the projections to be rebuilt
(``REBUILD_VIEWS`` in its module): the command then rebuilds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Literal

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Connection, Engine

from infrastructure.persistence import writing

VERSION_TABLE = "casebook_schema_version"
BASELINE = "0001"
HERE = Path(__file__).resolve().parent
# A table every register has had since before migrations: its presence without a version
# table means a register made before them.
OLDEST_TABLE = "casebook_head"
LOCK_ID = 0x6361_7365_626F_6F6B  # "casebook": the advisory lock of schema changes

State = Literal["empty", "current", "behind", "ahead"]


class UpgradeNeeded(Exception):
    """The register's schema is not the one this code works with."""


def _config(
    connection: Connection | None = None, master_key: Callable[[], bytes] | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    config.attributes[MASTER_KEY] = master_key
    return config


# The config attribute through which a revision that needs the master key (0006: the
# register's secrets, wrapped by it) asks for it (``master_key``).
MASTER_KEY = "master_key"


def master_key() -> bytes:
    """The master key, for a revision that needs it, as ``upgrade`` was given it: read
    only when asked for, so that an upgrade that needs none never reads it."""
    from alembic import context

    given = context.config.attributes.get(MASTER_KEY)
    if given is None:
        raise UpgradeNeeded(
            "this upgrade needs the master key (CASEBOOK_MASTER_KEY or "
            "CASEBOOK_MASTER_KEY_FILE): give it and run `casebook upgrade` again"
        )
    key: bytes = given()
    return key


@cache
def scripts() -> ScriptDirectory:
    """The revisions, read from ``versions/`` once per process."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    found = scripts().get_current_head()
    assert found is not None
    return found


def state(conn: Connection) -> State:
    """Where the register on ``conn`` stands against this code's schema."""
    names = set(sqlalchemy.inspect(conn).get_table_names())
    if VERSION_TABLE not in names:
        return "behind" if OLDEST_TABLE in names else "empty"
    current = MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    if current == head():
        return "current"
    known = {script.revision for script in scripts().walk_revisions()}
    return "behind" if current in known else "ahead"


# What the event log was called before revision 0002 (after the class that ran it).
OLD_EVENTS_TABLE = "chainedregister_events"


def events_table_of(conn: Connection, today: Table) -> Table:
    """The event log's table in a register not yet upgraded: today's, or the same
    columns under the name it had before 0002 (for ``casebook verify`` of an old copy;
    its columns' types are today's, so ids read back as ids)."""
    names = set(sqlalchemy.inspect(conn).get_table_names())
    if today.name in names or OLD_EVENTS_TABLE not in names:
        return today
    return today.to_metadata(MetaData(), name=OLD_EVENTS_TABLE)


def check(conn: Connection) -> State:
    """``state``, refusing (``UpgradeNeeded``) a register this code cannot work on."""
    found = state(conn)
    if found == "behind":
        raise UpgradeNeeded(
            "this register was made by an earlier version of casebook: "
            "run `casebook upgrade` (once, with the service stopped) before using it"
        )
    if found == "ahead":
        raise UpgradeNeeded(
            "this register was made by a newer version of casebook than this one: "
            "run that version, or a newer one"
        )
    return found


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the register's schema lock: SQLite's write lock
    (``BEGIN IMMEDIATE``), a PostgreSQL advisory lock. Two processes starting on the
    same empty database, or two upgrades, take turns."""
    token = writing.set(True)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_ID})")
            yield conn
    finally:
        writing.reset(token)


def create(engine: Engine, metadatas: Sequence[MetaData | Table]) -> None:
    """Give an empty database today's schema, stamped with the newest revision; on a
    database that another process has set up meanwhile, do nothing."""
    with _locked(engine) as conn:
        if state(conn) != "empty":
            return
        for item in metadatas:
            if isinstance(item, Table):
                item.create(conn)
            else:
                item.create_all(conn)
        MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).stamp(
            scripts(), head()
        )


def upgrade(engine: Engine, master_key: Callable[[], bytes] | None = None) -> list[str]:
    """Bring a register to the newest revision; the revisions applied, oldest first.
    ``master_key`` gives the master key to a revision that needs it."""
    with _locked(engine) as conn:
        found = state(conn)
        if found == "ahead":
            check(conn)
        if found in ("empty", "current"):
            return []
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        start = context.get_current_revision()
        if start is None:  # made before migrations: brought to the baseline, stamped
            scripts().get_revision(BASELINE).module.complete(conn)
            context.stamp(scripts(), BASELINE)
            start = BASELINE
        applied = [
            s.revision for s in scripts().iterate_revisions(head(), start) if s.revision != start
        ]
        command.upgrade(_config(conn, master_key), "head")
        applied.reverse()
        if needs_rebuild(applied):  # owed until a rebuild swaps its views in
            _owe(conn, VIEWS_REBUILD)
    return applied


VIEWS_REBUILD = "views_rebuild"


def _owe(conn: Connection, what: str) -> None:
    owed = Table("casebook_owed", MetaData(), autoload_with=conn)
    conn.execute(sqlalchemy.delete(owed).where(owed.c.what == what))
    conn.execute(sqlalchemy.insert(owed).values(what=what, since=datetime.now(UTC)))


def owed(conn: Connection) -> set[str]:
    """The work a migration asked for that is not done yet (``VIEWS_REBUILD``)."""
    if not sqlalchemy.inspect(conn).has_table("casebook_owed"):
        return set()
    owed = Table("casebook_owed", MetaData(), autoload_with=conn)
    return set(conn.execute(sqlalchemy.select(owed.c.what)).scalars())


def paid(conn: Connection, what: str) -> None:
    """The work is done (a views rebuild swapped its views in)."""
    if sqlalchemy.inspect(conn).has_table("casebook_owed"):
        owed = Table("casebook_owed", MetaData(), autoload_with=conn)
        conn.execute(sqlalchemy.delete(owed).where(owed.c.what == what))


def needs_rebuild(revisions: Sequence[str]) -> bool:
    """Whether one of these revisions asks for the projections to be rebuilt."""
    found = scripts()
    return any(getattr(found.get_revision(r).module, "REBUILD_VIEWS", False) for r in revisions)
