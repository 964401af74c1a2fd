"""Whether the service can serve (``GET /ready``): its database answers a read and
accepts writes, the register's schema is the one this code works with and owes no views
rebuild, the chain's head can be read, the master key opens the register's keys and a
signing key is loaded, and a SQLite register's disk has room.

Each of those can change under a running service: an upgrade run by a newer casebook,
a migration whose rebuild has not run, a master key rotated by another process, a head
row damaged by hand. ``unready`` names every one that is missing, so that the operator
reads the whole answer at once."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infrastructure import migrations, rotation, tables
from infrastructure.startup import master_key_opens

if TYPE_CHECKING:
    from infrastructure.store import Store

# Below this much free disk space, a SQLite register is not ready: writes and the read
# audit would soon fail with 507.
MIN_FREE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Missing:
    """One thing the service lacks: ``what`` is a short fixed code (``database``,
    ``writes``, ``disk``, ``schema``, ``views-rebuild``, ``chain-head``, ``master-key``,
    ``signing-key``) for monitors; ``detail`` says it to the operator."""

    what: str
    detail: str


def unready(store: Store) -> list[Missing]:
    """Everything that keeps the service from serving; empty when it can. The database
    must answer a read and accept writes (not a read-only file, a standby, a read-only
    session), and on SQLite the disk must have room (``MIN_FREE_BYTES``). A write lock
    held by a long write is not a problem: it will end."""
    missing: list[Missing] = []
    if store.signer is None:
        missing.append(Missing("signing-key", "no signing key is loaded to sign checkpoints"))
    with store.engine.connect() as conn:
        schema = _schema(conn)
        missing += schema
        if not schema:  # the other tables are as this code knows them
            missing += _chain_head(conn)
            if not master_key_opens(conn, store.keyring):
                missing.append(
                    Missing(
                        "master-key",
                        "the master key does not open the register's keys, or a rotation "
                        "is under way (finish it, then restart with the register's key)",
                    )
                )
            newest = rotation.in_force(conn)
            if store.signer is not None and newest not in (None, store.signer.public_key):
                missing.append(
                    Missing(
                        "signing-key",
                        "the signing key loaded is not the one in force (rotated by "
                        "another process): restart with the key the rotation announced",
                    )
                )
        if store.dialect == "postgresql":
            standby, read_only = conn.exec_driver_sql(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
            ).one()
            if standby or read_only == "on":
                missing.append(
                    Missing("writes", "the database refuses writes (a standby, or read-only)")
                )
            return missing
    return missing + _sqlite_room(store)


BEHIND = (
    "the register's schema is older than this casebook: run `casebook upgrade` "
    "(with the service stopped)"
)
AHEAD = "the register's schema is newer than this casebook: run the newer version"
OWED = (
    "a migration's views rebuild has not run: run `casebook views rebuild` "
    "(searches may miss people until then)"
)


def _schema(conn: Connection) -> list[Missing]:
    state = migrations.state(conn)
    if state == "behind":
        return [Missing("schema", BEHIND)]
    if state == "ahead":
        return [Missing("schema", AHEAD)]
    if state == "empty":
        return [Missing("schema", "the register has no tables")]
    owed = set(conn.execute(select(tables.owed.c.what)).scalars())
    if migrations.VIEWS_REBUILD in owed:
        return [Missing("views-rebuild", OWED)]
    return []


def _chain_head(conn: Connection) -> list[Missing]:
    """The head row, and the chain's link at its position with the hash it names."""
    h, c = tables.register_head, tables.chain
    head = conn.execute(select(h.c.chain_position, h.c.chain_hash)).first()
    if head is None:
        return [Missing("chain-head", "the register has no head row")]
    if head.chain_position == 0:
        return []
    link = conn.execute(select(c.c.hash).where(c.c.position == head.chain_position)).scalar()
    if link != head.chain_hash:
        detail = f"the chain has no link matching its head at position {head.chain_position}"
        return [Missing("chain-head", detail + ": run `casebook verify`")]
    return []


def _sqlite_room(store: Store) -> list[Missing]:
    if not _sqlite_writable(store):
        return [Missing("writes", "the database file refuses writes (read-only?)")]
    folder = store.settings.sqlite_path().parent
    try:  # a file system remounted read-only after an error shows only here
        probe = folder / ".casebook-ready"
        with probe.open("wb") as f:
            f.write(b"ready")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        code = errno.errorcode.get(e.errno or 0, "error")
        return [Missing("writes", f"the database's folder refuses writes ({code})")]
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        return [Missing("disk", f"the disk holding the register has {free // 2**20} MB free")]
    return []


def _sqlite_writable(store: Store) -> bool:
    """Whether SQLite would take a write: one that changes nothing, rolled back,
    without waiting for a writer (a busy database is a writable one)."""
    raw = store.engine.raw_connection()
    cursor = raw.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 0")
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(f"UPDATE {tables.register_head.name} SET id = id WHERE 0")
        return True
    except sqlite3.OperationalError as e:
        return e.sqlite_errorcode & 0xFF in (5, 6)  # busy, locked: it will end
    finally:
        if raw.driver_connection is not None and raw.driver_connection.in_transaction:
            cursor.execute("ROLLBACK")
        cursor.execute(f"PRAGMA busy_timeout = {int(store.settings.sqlite_busy_timeout_ms)}")
        cursor.close()
        raw.close()
