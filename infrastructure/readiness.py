"""Whether the service can serve (``GET /ready``): its database answers a read and
accepts writes, and a SQLite register's disk has room."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from typing import TYPE_CHECKING

from sqlalchemy import select

from infrastructure import tables

if TYPE_CHECKING:
    from infrastructure.store import Store

# Below this much free disk space, a SQLite register is not ready: writes and the read
# audit would soon fail with 507.
MIN_FREE_BYTES = 64 * 2**20


def unready(store: Store) -> str | None:
    """What keeps the service from serving, or None: the database must answer a
    read and accept writes (not a read-only file, a standby, a read-only session),
    and on SQLite the disk must have room (``MIN_FREE_BYTES``). A write lock held
    by a long write is not a problem: it will end."""
    with store.engine.connect() as conn:
        conn.execute(select(tables.register_head.c.position)).scalar_one()
        if store.dialect == "postgresql":
            standby, read_only = conn.exec_driver_sql(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
            ).one()
            if standby or read_only == "on":
                return "the database refuses writes (a standby, or read-only)"
            return None
    if not _sqlite_writable(store):
        return "the database file refuses writes (read-only?)"
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
        return f"the database's folder refuses writes ({code})"
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        return f"the disk holding the register has {free // 2**20} MB free"
    return None


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
