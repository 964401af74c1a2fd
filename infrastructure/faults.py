"""Storage faults, classified in one place: what a client is told when the database
cannot do what was asked, through no fault of the request.

- ``StoreBusy`` (503): the write lock could not be had in time (SQLite busy, a
  PostgreSQL lock or pool timeout, a serialisation failure). Retry shortly.
- ``StoreUnavailable`` (503): the store cannot be used right now: a read-only file or
  database, a connection that was lost or refused, an I/O error, a missing table.
- ``StoreFull`` (507): the disk (or the database's file-size limit) is full.

Each is answered with ``Retry-After`` and a problem body that names the fault, never
the database's own message (it may quote the data it choked on). Nothing is written in
any of these cases: every write is one transaction, and the fault rolls it back.
An error that is none of these stays what it is (a 500, logged by type).
"""

from __future__ import annotations

import errno
import sqlite3

import sqlalchemy.exc
from eventsourcing.persistence import PersistenceError

# SQLite primary result codes (https://sqlite.org/rescode.html).
_SQLITE_FULL = {13}  # SQLITE_FULL
_SQLITE_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
# SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_CANTOPEN,
# SQLITE_PROTOCOL, SQLITE_NOTADB
_SQLITE_UNAVAILABLE = {3, 8, 10, 11, 14, 15, 26}

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_FULL = {"53100"}  # disk_full
_PG_BUSY = {"55P03", "40001", "40P01", "57014"}  # lock, serialisation, deadlock, timeout
_PG_UNAVAILABLE_CLASSES = {"08", "53", "57", "58"}  # connection, resources, operator, system
# read-only transaction, no table, no database, no rights (a role set up wrong)
_PG_UNAVAILABLE = {"25006", "42P01", "3D000", "42501"}

_OS_FULL = {errno.ENOSPC, errno.EDQUOT}
_OS_UNAVAILABLE = {errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}


class StorageFault(Exception):
    """The store could not do its part; the request itself was fine."""

    status = 503
    slug = "store-unavailable"
    detail = "the register's store cannot be used right now; nothing was recorded"


class StoreBusy(StorageFault):
    slug = "busy"
    detail = "the register is busy with other writes; nothing was recorded"


class StoreUnavailable(StorageFault):
    pass


class StoreFull(StorageFault):
    status = 507
    slug = "storage-full"
    detail = "the register's storage is full; nothing was recorded"


def classify(error: BaseException) -> StorageFault | None:
    """The storage fault behind ``error`` (looking through the wrappers that
    SQLAlchemy and eventsourcing put around the driver's error), or None. Only errors
    of the storage's own kinds are looked at: a domain error raised while another was
    being handled is never mistaken for the one it replaced."""
    if isinstance(error, StorageFault):
        return error
    if not isinstance(error, _STORAGE_ERRORS) and not _is_psycopg(error):
        return None
    for cause in _chain(error):
        fault = _from_driver(cause)
        if fault is not None:
            return fault
    return None


_STORAGE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, PersistenceError, sqlite3.Error, OSError)


def _is_psycopg(error: BaseException) -> bool:
    return type(error).__module__.startswith("psycopg")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _from_driver(error: BaseException) -> StorageFault | None:
    if isinstance(error, sqlite3.Error):
        return _sqlite(error)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) or _is_psycopg(error):
        return _postgres(error, sqlstate)
    if isinstance(error, sqlalchemy.exc.TimeoutError):
        return StoreBusy()  # no pooled connection came free in time
    if isinstance(error, OSError) and error.errno is not None:
        if error.errno in _OS_FULL:
            return StoreFull()
        if error.errno in _OS_UNAVAILABLE:
            return StoreUnavailable()
    return None


def _sqlite(error: sqlite3.Error) -> StorageFault | None:
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(error).lower()
    if primary in _SQLITE_FULL:
        return StoreFull()
    if primary in _SQLITE_BUSY or "database is locked" in message:
        return StoreBusy()
    if primary in _SQLITE_UNAVAILABLE or "no such table" in message:
        return StoreUnavailable()
    return None


def _postgres(error: BaseException, sqlstate: str | None) -> StorageFault | None:
    if sqlstate is None:
        # psycopg's OperationalError without a state: the connection was lost or
        # could not be made.
        return StoreUnavailable() if type(error).__name__ == "OperationalError" else None
    if sqlstate in _PG_FULL:
        return StoreFull()
    if sqlstate in _PG_BUSY:
        return StoreBusy()
    if sqlstate in _PG_UNAVAILABLE or sqlstate[:2] in _PG_UNAVAILABLE_CLASSES:
        return StoreUnavailable()
    return None
