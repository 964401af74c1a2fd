"""The store: the register application plus its tables, and the write transaction.

``Store.write()`` is the one way anything is written. It opens a transaction holding
the register's write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the events table
lock that eventsourcing-sqlalchemy takes too, taken first), stamps the time under that
lock, and commits the events, their chain links, every projection of them, the head
position and the idempotency record together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache
from eventsourcing.persistence import Mapper, Recording
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Table, func, select, text, update
from sqlalchemy.engine import Connection, Engine

from domain.case import Case
from domain.ports import Caller
from domain.register import Register
from infrastructure import (
    checkpoints,
    idempotency,
    migrations,
    readlog,
    reconcile,
    startup,
    tables,
)
from infrastructure.chain import ChainHead
from infrastructure.checkpoints import Checkpoint, MissingSecret, Signer
from infrastructure.crypto import Keyring, load_master_key
from infrastructure.faults import classify
from infrastructure.idempotency import Idempotency
from infrastructure.ledger import ErasureLedger
from infrastructure.persistence import (
    PlannerStatistics,
    lock_projected,
    persistence_env,
    read_aggregates,
    scrub,
    short_wait_engine,
    writing,
)
from infrastructure.projections import project
from infrastructure.readlog import Reader
from infrastructure.sealing import SealingMapper
from infrastructure.settings import Settings
from infrastructure.unit import WriteUnit, current_unit

log = logging.getLogger("casebook")


class ChainedRegister(Register):
    """The register as the store runs it: every save happens inside ``Store.write()``
    and its events are chained and counted there, by the store, not by each caller;
    each case event's personal part is sealed with the person's key (``SealingMapper``)."""

    # The application's name names its tables (``casebook_events``): without it, the
    # library would name them after this class (registers made before December 2026
    # have ``chainedregister_events``, renamed by migration 0002).
    name = "casebook"

    def __init__(self, keyring: Keyring, env: dict[str, str]):
        self.keyring = keyring
        super().__init__(env=env)

    def construct_mapper(self) -> Mapper[UUID]:
        return SealingMapper(self.construct_transcoder(), self.keyring, self._key_made)

    @staticmethod
    def _key_made(case_id: UUID) -> bool:
        """Whether the write in progress made this new case's key already (``_record``)."""
        unit = current_unit.get()
        return unit is not None and case_id in unit.keys_made

    def forget_cached(self) -> None:
        """Empty the aggregate cache. A new one: the library's ``LRUCache.clear`` resets
        its recency list but keeps the entries, which ``get`` still finds."""
        self.repository.cache = LRUCache(maxsize=int(self.env["AGGREGATE_CACHE_MAXSIZE"]))

    def _get(self, aggregate_id: UUID, version: int | None) -> Any:
        """Outside a write (which looks itself), first forget the cached keys if anyone
        was erased since: a replay of an old version is not redacted by the erasure."""
        if current_unit.get() is None:
            self.keyring.refresh_now()
        return super()._get(aggregate_id, version)

    def _record(self, processing_event: Any) -> list[Recording[Any]]:
        """Save in the write in progress: the events, their links in the chain, and
        every projection of them (``infrastructure.projections``), in one transaction."""
        unit = current_unit.get()
        if unit is None:
            raise RuntimeError("events are saved only inside Store.write()")
        opened = [e for e in processing_event.events if isinstance(e, Case.Opened)]
        if len(opened) > 1:  # many new cases at once: their keys in one statement
            self.keyring.create([e.originator_id for e in opened], opened[0].recorded_at)
        recordings = super()._record(processing_event)
        unit.logged(recordings)
        aggregates = processing_event.aggregates.values()
        unit.views.update(project(unit.session, unit.keyring, aggregates, recordings))
        return recordings

    def _get_many(self, aggregate_ids: list[UUID]) -> dict[UUID, Any]:
        """Many aggregates for one command (an exchange of 2,000 people) in one query
        per 500 instead of two per aggregate: every event of each, in order, built
        afresh. The cache is neither read (a concurrent read may be fast-forwarding a
        cached copy) nor written (it only ever holds what reads found). Outside a write
        (a page of a list as of a past day), on a connection of its own, after forgetting
        the cached keys if anyone was erased since."""
        with self.keyring.connect() as (conn, in_write):
            if not in_write:
                self.keyring.refresh(conn)
            events: Table = self.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
            return read_aggregates(conn, events, self.mapper, self.keyring, aggregate_ids)


# The head of the register, the newest erasure (for the keyring's cache) and which
# master key wraps the register's keys (and whether a rotation is under way), in the one
# statement every write begins with.
MASTER = tables.master_check
HEAD_AND_EPOCH = select(
    tables.register_head,
    select(func.max(tables.erasures.c.id)).scalar_subquery().label("epoch"),
    select(MASTER.c.check_value).where(MASTER.c.id == 1).scalar_subquery().label("master"),
    select(MASTER.c.rotating_to).where(MASTER.c.id == 1).scalar_subquery().label("rotating_to"),
)

HEAD_UPDATE = update(tables.register_head)  # values bound at each write's end


class Store:
    """The register and its tables on one database."""

    def __init__(self, settings: Settings, require_current: bool = True):
        self.settings = settings
        # How long an idempotency record answers a retry (``infrastructure.idempotency``).
        self.window = timedelta(hours=settings.idempotency_hours)
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.keyring = Keyring(load_master_key(settings))  # production: refuses without
        self.keyring.connection = self._key_connection
        self.keyring.made = self._keys_made_in_write
        self.register = ChainedRegister(self.keyring, persistence_env(settings))
        self.register.writes = self  # the use cases' writes are this store's
        recorder = self.register.recorder
        assert isinstance(recorder, SQLAlchemyApplicationRecorder)
        self.recorder = recorder
        self.datastore: SQLAlchemyDatastore = recorder.datastore
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        self.engine = engine
        self.events_table: Table = recorder.events_record_cls.__table__
        self.dialect = engine.dialect.name
        self.statistics = PlannerStatistics(engine)
        # Short work beside the register's, on engines that wait only briefly: the read
        # audit (readlog), and the quick reads of every request (the key check, the case
        # view). On SQLite those run on the event loop, one at a time: one connection of
        # their own, which no worker thread can hold. On PostgreSQL they run in threads,
        # on the side pool.
        wait = settings.read_audit_wait_ms
        self.side_engine = short_wait_engine(settings, wait)
        self.quick_engine = (
            short_wait_engine(settings, wait, pool_size=1)
            if settings.is_sqlite
            else self.side_engine
        )
        self.read_audit = readlog.ReadAudit(self.side_engine, wait / 1000)
        self.signer: Signer | None = None  # set by whoever may sign checkpoints
        # The installation's public key when no signer is loaded (a verifier).
        self.public_key: str | None = None
        # Told the events of each committed write that recorded any (``api.metrics``).
        self.on_written: Callable[[int], None] = lambda _: None
        # The schema is the migrations' (``infrastructure.migrations``): an empty database
        # gets today's; an older register is refused until `casebook upgrade` (unless
        # ``require_current`` is False: verifying a copy reads only the chain's tables).
        with engine.connect() as conn:
            found = migrations.check(conn) if require_current else migrations.state(conn)
            if found == "behind":  # a verifier on an older register: the log's old name
                self.events_table = migrations.events_table_of(conn, self.events_table)
        if found == "empty":
            migrations.create(engine, [tables.metadata, self.events_table])
        startup.prepare(self.engine, self.keyring, current=found in ("empty", "current"))
        # The erasure ledger, outside this database; a service's store makes again any
        # erasure the register does not hold (a restored copy) before it answers.
        self.ledger = ErasureLedger.of(settings)
        if require_current:
            reconcile.open_for_service(self, self.ledger)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection for the views: plain Core, no ORM session (the
        session's bookkeeping cost more than the query on the hot read path)."""
        with self.engine.connect() as connection:
            self.keyring.refresh(connection)
            yield connection

    @staticmethod
    def _keys_made_in_write(key_ids: list[UUID]) -> None:
        unit = current_unit.get()
        if unit is not None:  # keys are made only in a write (Keyring.create checks)
            unit.keys_made.update(key_ids)

    @contextmanager
    def _key_connection(self) -> Iterator[tuple[Connection, bool]]:
        """Where the keyring reads a key it has not cached: the write transaction open
        in this context (it sees the keys made in it), else a connection of its own."""
        unit = current_unit.get()
        if unit is not None:
            yield unit.session.connection(), True
        else:
            with self.engine.connect() as connection:
                yield connection, False

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only connection on which several statements see one state of the
        database (REPEATABLE READ on PostgreSQL; a read transaction on SQLite). On
        PostgreSQL the projected tables are locked for reading before the snapshot is
        taken: a views rebuild's swap, which replaces them, then waits for this read,
        and a read begun during it waits for the swap, never reading the new tables
        with a snapshot older than them (it would miss what the swap wrote)."""
        with self.engine.connect() as connection:
            if self.dialect == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                if self.dialect == "postgresql":
                    connection.exec_driver_sql(lock_projected(self.engine))
                self.keyring.refresh(connection)
                yield connection

    @contextmanager
    def write(
        self, caller: Caller | None = None, retry_key: Idempotency | None = None
    ) -> Iterator[WriteUnit]:
        """One write for ``caller`` (None: the service's own, such as a rebuild), its
        retry answered from the idempotency record of ``retry_key`` (``unit.first``)."""
        token = writing.set(True)
        unit: WriteUnit | None = None
        unit_token = None
        checkpoint_due, written = False, 0
        keys_mark: int | None = None
        try:
            with self.recorder.transaction(commit=True) as session:
                session.connection()  # begin now, IMMEDIATE on SQLite
                if self.dialect == "postgresql":
                    session.execute(text(f"LOCK TABLE {self.events_table.name} IN EXCLUSIVE MODE"))
                # Under the write lock: no other write of this process destroys keys
                # until this one ends. The keys it makes are kept on the write itself.
                keys_mark = self.keyring.mark()
                head = session.execute(HEAD_AND_EPOCH).one()
                self.keyring.still_current(head.master, head.rotating_to)  # or a 503
                self.keyring.refresh_to(head.epoch or 0)  # erasures by other processes
                unit = WriteUnit(
                    session,
                    self._stamp_time(head.recorded_at),
                    head.position,
                    ChainHead(head.chain_position, head.chain_hash),
                    self.keyring,
                    caller,
                    retry_key,
                    ledger=self.ledger,
                )
                if caller is not None:
                    unit.first = idempotency.remembered(
                        session, self.keyring, caller.id, retry_key, unit.recorded_at, self.window
                    )
                unit_token = current_unit.set(unit)
                yield unit
                session.execute(
                    HEAD_UPDATE,
                    {
                        "recorded_at": unit.recorded_at,
                        "position": unit.position,
                        "chain_position": unit.chain.position,
                        "chain_hash": unit.chain.hash,
                    },
                )
                every = self.settings.checkpoint_every
                checkpoint_due = unit.chain.position // every > head.chain_position // every
                written = unit.chain.position - head.chain_position
                unit.committing = True  # past here, a failure may follow a commit
        except BaseException as e:
            if unit is not None and unit.ledger_entry is not None and not unit.committing:
                self._ledger_quietly(self.ledger.rolled_back, unit.ledger_entry)
            made = unit.keys_made if unit is not None else set()
            if keys_mark is not None and self.keyring.rolled_back(keys_mark, made):
                # Aggregates replayed after a key was destroyed in this write read as
                # erased, and the repository cached them; the write did not happen.
                self.register.forget_cached()
            fault = classify(e) if isinstance(e, Exception) else None
            if fault is not None and fault is not e:
                raise fault from e  # busy, unavailable or full: nothing was written
            raise
        finally:
            if unit_token is not None:
                current_unit.reset(unit_token)
            writing.reset(token)
        if unit is not None and unit.ledger_entry is not None:  # committed
            self._ledger_quietly(self.ledger.done, unit.ledger_entry)
        if unit is not None and unit.erased:  # committed: the key is gone; now the files
            self._scrub_quietly()
        if checkpoint_due:  # committed: sign the new head, every so many events
            self.auto_checkpoint()
        self.statistics.wrote(written, unit.position if unit is not None else 0)
        if written:
            self.on_written(written)

    @staticmethod
    def _ledger_quietly(mark: Callable[[int], None], entry: int) -> None:
        """Mark a ledger entry; a failure is logged, never raised: the erasure stands or
        fails by the register's commit, and an intent left counts as done."""
        try:
            mark(entry)
        except Exception as e:
            log.error("erasure ledger: marking an entry failed: %s", type(e).__name__)

    def _scrub_quietly(self) -> None:
        try:
            scrub(self.engine)
        except Exception as e:  # the files catch up at the next erasure
            log.warning("erasure: scrubbing the database files failed: %s", type(e).__name__)

    def checkpoint(self) -> Checkpoint:
        """Sign the committed head of the chain now (needs a signer)."""
        if self.signer is None:
            raise MissingSecret("no signing key configured for checkpoints")
        token = writing.set(True)
        try:
            return checkpoints.make(self.engine, self.signer)
        finally:
            writing.reset(token)

    def trusted_key(self) -> str | None:
        return self.signer.public_key if self.signer else self.public_key

    def head_moved_since_checkpoint(self) -> bool:
        with self.read() as conn:
            head = conn.execute(select(tables.register_head.c.chain_position)).scalar_one()
            listed = checkpoints.listed(conn, 1)
        return head > (listed[0][1].position if listed else 0)

    def auto_checkpoint(self) -> None:
        """A checkpoint that must never turn a committed write into an error."""
        if self.signer is None:
            return
        try:
            self.checkpoint()
        except Exception as e:
            log.error("automatic checkpoint failed: %s", type(e).__name__)

    @staticmethod
    def _stamp_time(last: datetime | None) -> datetime:
        now = datetime.now(UTC)
        if last is not None:
            if last.tzinfo is None:  # SQLite returns naive datetimes
                last = last.replace(tzinfo=UTC)
            if now <= last:
                now = last + timedelta(microseconds=1)
        return now

    def position(self) -> int:
        with self.read() as session:
            return int(session.execute(select(tables.register_head.c.position)).scalar_one())

    def max_notification_id(self) -> int:
        return self.recorder.max_notification_id() or 0

    def record_read(self, reader: Reader | None, case_ids: Iterable[UUID]) -> None:
        """Record in the read audit that ``reader`` was shown these cases' personal
        data; ``ReadNotRecorded`` (503) if that cannot be done within a short wait."""
        self.read_audit.record(reader, case_ids)

    def close(self) -> None:
        self.statistics.wait()
        self.read_audit.close()
        self.register.close()
        self.engine.dispose()
        self.side_engine.dispose()
        self.quick_engine.dispose()  # the side engine again on PostgreSQL: no harm
        self.ledger.close()
