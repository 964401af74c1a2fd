"""Storage faults are classified in one place: real driver errors, however wrapped,
become busy (503), unavailable (503) or full (507); anything else stays unclassified."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
import sqlalchemy
import sqlalchemy.exc
from eventsourcing.persistence import OperationalError as LibraryOperationalError

from domain.errors import VersionConflict
from infrastructure.faults import StoreBusy, StoreFull, StoreUnavailable, classify


def raised(fn) -> BaseException:  # type: ignore[no-untyped-def]
    try:
        fn()
    except BaseException as e:
        return e
    raise AssertionError("nothing was raised")


def sqlite_full() -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA max_page_count = 3")
    conn.execute("CREATE TABLE t (x)")

    def fill() -> None:
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (randomblob(1000))")

    error = raised(fill)
    assert isinstance(error, sqlite3.Error)
    return error


def test_a_full_sqlite_database_is_storage_full() -> None:
    assert isinstance(classify(sqlite_full()), StoreFull)


def test_a_read_only_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)")
    ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    error = raised(lambda: ro.execute("INSERT INTO t VALUES (1)"))
    assert isinstance(classify(error), StoreUnavailable)


def test_a_missing_table_is_unavailable() -> None:
    error = raised(lambda: sqlite3.connect(":memory:").execute("SELECT * FROM gone"))
    assert isinstance(classify(error), StoreUnavailable)


def test_a_locked_sqlite_database_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    error = raised(lambda: other.execute("BEGIN IMMEDIATE"))
    assert isinstance(classify(error), StoreBusy)


def test_wrapped_by_sqlalchemy_and_eventsourcing_the_driver_error_is_found() -> None:
    driver = sqlite_full()
    wrapped = sqlalchemy.exc.OperationalError("INSERT ...", {}, driver)
    library = LibraryOperationalError("save failed")
    library.__cause__ = wrapped
    assert isinstance(classify(wrapped), StoreFull)
    assert isinstance(classify(library), StoreFull)


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (psycopg.errors.DiskFull("no space left on device"), StoreFull),
        (psycopg.errors.LockNotAvailable("lock timeout"), StoreBusy),
        (psycopg.errors.QueryCanceled("statement timeout"), StoreBusy),
        (psycopg.errors.AdminShutdown("terminating connection"), StoreUnavailable),
        (psycopg.errors.ReadOnlySqlTransaction("read-only"), StoreUnavailable),
        (psycopg.errors.UndefinedTable("no such relation"), StoreUnavailable),
        (psycopg.errors.InsufficientPrivilege("permission denied"), StoreUnavailable),
        (psycopg.OperationalError("server closed the connection unexpectedly"), StoreUnavailable),
        (OSError(errno.ENOSPC, "No space left on device"), StoreFull),
        (OSError(errno.EROFS, "Read-only file system"), StoreUnavailable),
        (sqlalchemy.exc.TimeoutError("QueuePool limit reached"), StoreBusy),
    ],
)
def test_postgresql_and_os_errors_are_classified(error: BaseException, fault: type) -> None:
    assert isinstance(classify(error), fault)


def test_errors_that_are_not_the_storage_s_stay_unclassified() -> None:
    assert classify(ValueError("bad input")) is None
    assert classify(psycopg.errors.UniqueViolation("duplicate key")) is None
    assert classify(sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError())) is None
    # A domain error raised while a storage error was being handled is the domain's.
    conflict = VersionConflict(3, 2)
    conflict.__context__ = sqlite_full()
    assert classify(conflict) is None
