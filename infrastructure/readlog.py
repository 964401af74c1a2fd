"""The read audit: every answer that carries a person's data records who read which
case, when, and through which route, before the answer leaves. If the record cannot be
written the read is refused (``ReadNotRecorded``, answered 503): a read nobody can
account for does not happen.

Records are written by one thread per process (``ReadAudit``), in batches: the reads
that arrive while a batch is being committed go together into the next one, so many
reads share one durable commit (with ``synchronous=FULL`` on SQLite, one fsync) instead
of each paying its own, and each read still waits until its own record is committed.
The batches are written on an engine of their own that waits at most
``CASEBOOK_READ_AUDIT_WAIT_MS`` for a lock, a statement or a pooled connection, outside
the register's write lock (they write no event), and a read waits that long at most
for its batch: a lock held on the audit's table, or a long write holding SQLite's one
write lock, refuses the read (503, Retry-After) rather than holding a worker thread for
the length of someone else's transaction. A batch committed after its waiters gave up
records reads that were refused: the audit may over-report, never under-report.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

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


def rows_of(reader: Reader, case_ids: Iterable[UUID]) -> list[dict[str, Any]]:
    """The audit's rows for ``reader`` having read these cases (each once)."""
    now, key = datetime.now(UTC), reader.key
    return [
        {
            "read_at": now,
            "case_id": case_id,
            "key_name": key.name,
            "org": key.org,
            "role": key.role,
            "route": reader.route,
        }
        for case_id in dict.fromkeys(case_ids)
    ]


# Records waiting for the next batch beyond which reads are refused at once: the writer
# is stuck (a database that does not answer), and waiting would only pile them up.
MAX_WAITING_ROWS = 100_000


class _Batch:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.committed = threading.Event()
        self.error: BaseException | None = None
        self.awaiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def done(self, error: BaseException | None) -> None:
        self.error = error
        self.committed.set()
        for loop, future in self.awaiting:
            # RuntimeError: its event loop has closed, nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # its reader gave up waiting
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(ReadNotRecorded())


class ReadAudit:
    """The read audit's writer: one thread, started on the first read, committing the
    records of the reads that wait for it in batches (see the module)."""

    def __init__(self, engine: Engine, wait_seconds: float):
        self.engine, self.wait = engine, wait_seconds
        self._ready = threading.Condition()
        self._next = _Batch()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Told how many records each committed batch wrote (``api.metrics``).
        self.on_recorded: Callable[[int], None] = lambda _: None

    def record(self, reader: Reader | None, case_ids: Iterable[UUID]) -> None:
        """Record that ``reader`` read these cases' personal data, durably, before this
        returns; ``ReadNotRecorded`` if that cannot be done within the wait."""
        batch = self._enqueue(rows_of(reader, case_ids) if reader is not None else [])
        if batch is None:
            return
        if not batch.committed.wait(self.wait + 0.5):
            raise ReadNotRecorded()
        if batch.error is not None:
            raise ReadNotRecorded() from batch.error

    async def recorded(self, reader: Reader | None, case_ids: Iterable[UUID]) -> None:
        """``record`` for a caller on the event loop: it waits for the batch without
        holding a thread."""
        future = asyncio.get_running_loop().create_future()
        rows = rows_of(reader, case_ids) if reader is not None else []
        if self._enqueue(rows, (asyncio.get_running_loop(), future)) is None:
            return
        try:
            await asyncio.wait_for(future, self.wait + 0.5)
        except TimeoutError:
            raise ReadNotRecorded() from None

    def _enqueue(
        self,
        rows: list[dict[str, Any]],
        awaiting: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None,
    ) -> _Batch | None:
        if not rows:
            return None
        with self._ready:
            if self._closed or len(self._next.rows) >= MAX_WAITING_ROWS:
                raise ReadNotRecorded()  # stopped, or stuck: refuse rather than pile up
            batch = self._next
            batch.rows += rows
            if awaiting is not None:
                batch.awaiting.append(awaiting)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._write, name="casebook-read-audit", daemon=True
                )
                self._thread.start()
            self._ready.notify()
        return batch

    def _write(self) -> None:
        while True:
            with self._ready:
                while not self._next.rows and not self._closed:
                    self._ready.wait()
                if self._closed and not self._next.rows:
                    return
                batch, self._next = self._next, _Batch()
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(tables.access_log), batch.rows)
            except Exception as e:  # every read of the batch is refused
                batch.done(e)
            else:
                batch.done(None)
                self.on_recorded(len(batch.rows))
            # (``done`` never raises: the thread lives on for the next batch.)

    def close(self) -> None:
        """Commit what is waiting, then stop the thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout=self.wait + 1)


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
