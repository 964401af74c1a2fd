"""The erasure ledger: every erasure, recorded outside the register's database, so that
a register restored from a copy made before an erasure does not bring the person back.

A copy of the register made before an erasure holds the person's key, and so their
data: restoring it would undo the erasure. The ledger lives apart from the database
(``Settings.erasure_ledger_url``: by default a SQLite file beside a SQLite register, or
in the data folder beside a PostgreSQL one; for several hosts, a second database all
of them reach; never the register's own database) and holds ids only, never a name or
a reason: the ids of the keys an erasure destroyed (the first is the case's: a
person's key has the case's id) and when.

- **Before** an erasure commits, its intent is written to the ledger and made durable
  (``intend``), in the erasure's write, under the register's write lock; once it has
  committed, the entry is marked done. A write that rolls back before its commit
  drops its intent; any other intent left (a process killed at the commit) counts as
  done: an erasure asked for is made rather than risk one made being undone.
- **Paired.** The ledger has an id; the register records the id of its ledger when a
  store first opens it (``casebook_ledger_pairing``), and every backup carries it. A
  store refuses a ledger that is not its register's (lost and made anew, or the
  setting changed): a new ledger does not know the erasures a restored copy lacks.
  ``casebook erasure-ledger adopt`` pairs a live register with a new ledger, once the
  operator has made sure it is not a restored copy.
- **Whenever a store opens a register for the service** (``reconcile``): the ledger
  takes in every erasure the register holds (registers erased before the ledger
  existed; a ledger adopted), then every erasure in it whose keys the register still
  holds is made again before the service answers (``reapply``): the case's erasure
  recorded anew, with a reason saying so, by its owner organisation's name and
  ``REAPPLIED_BY``, and every key of the entry destroyed. This is what brings a restore
  (``casebook restore``, or the database server's own tools) back to every erasure
  made after the copy.
- **A restore in progress** is marked in the ledger (``restoring``), outside the
  database it replaces: no store opens the register until the restore has finished.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import (
    BIGINT,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url

from infrastructure.settings import Settings

if TYPE_CHECKING:
    pass

log = logging.getLogger("casebook.erasures")

REAPPLIED_BY = "casebook-erasure-ledger"  # the name on an erasure made again
REAPPLIER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "casebook:erasure-ledger")
WAIT_SECONDS = 5  # a ledger that does not answer within this refuses the erasure
PG_SUFFIX = "_erasures"  # the default ledger's database, beside the register's

metadata = MetaData()
entries = Table(
    "casebook_erasure_ledger",
    metadata,
    Column("seq", BIGINT().with_variant(sqlalchemy.Integer, "sqlite"), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("key_ids", Text, nullable=False),  # JSON list of key ids; the case's first
    Column("intended_at", DateTime(timezone=True), nullable=False),
    Column("state", String(10), nullable=False),  # "intended" or "done"
    Column("done_at", DateTime(timezone=True), nullable=True),
)
facts = Table(  # "ledger_id": this ledger's id; "restoring": a restore in progress
    "casebook_erasure_ledger_facts",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("value", String(80), nullable=False),
)


class LedgerRefused(Exception):
    """The register cannot be opened with this ledger; the message says what to do."""


@dataclass(frozen=True)
class Entry:
    seq: int
    key_ids: tuple[uuid.UUID, ...]
    intended_at: datetime
    state: str

    @property
    def case_id(self) -> uuid.UUID:
        return self.key_ids[0]


def ledger_url(settings: Settings) -> str:
    """Where the ledger is: the setting, else a SQLite file beside a SQLite register
    (``casebook.sqlite`` -> ``casebook.erasures.sqlite``), else a second database on
    the register's PostgreSQL server (``DB`` -> ``DB_erasures``), which every API
    process on every host reaches as it reaches the register, and which a restore of
    the register's database does not touch."""
    if settings.erasure_ledger_url:
        return settings.erasure_ledger_url
    if settings.is_sqlite:
        db = settings.sqlite_path()
        return f"sqlite:///{db.with_name(db.stem + '.erasures.sqlite')}"
    url = make_url(settings.url())
    return url.set(database=f"{url.database}{PG_SUFFIX}").render_as_string(hide_password=False)


class ErasureLedger:
    def __init__(self, url: str, create_from: str | None = None):
        """The ledger at ``url``, its tables made if missing; on PostgreSQL its database
        too, if missing, through a connection to ``create_from`` (the register's)."""
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            args: dict[str, Any] = {"timeout": WAIT_SECONDS}
        else:
            options = f"-c statement_timeout={WAIT_SECONDS * 1000}"
            args = {"connect_timeout": WAIT_SECONDS, "options": options}
            if create_from is not None:
                _create_database(url, create_from)
        self.engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, connect_args=args
        )
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _durable)
        metadata.create_all(self.engine)
        self.id = self._fact("ledger_id") or ""
        if not self.id:  # a new ledger: its id, once (two processes at once: one wins)
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(facts).values(name="ledger_id", value=str(uuid.uuid4())))
            except sqlalchemy.exc.IntegrityError:
                pass
            self.id = self._fact("ledger_id") or ""

    @classmethod
    def of(cls, settings: Settings) -> ErasureLedger:
        url = ledger_url(settings)
        if _same_database(url, settings.url()):
            raise LedgerRefused(
                "CASEBOOK_ERASURE_LEDGER_URL names the register's own database: a restore "
                "replaces it, ledger and all; give the ledger a database of its own"
            )
        beside = not settings.is_sqlite and not settings.erasure_ledger_url
        return cls(url, create_from=settings.url() if beside else None)

    # ---- the erasures ------------------------------------------------------------------

    def intend(self, key_ids: Sequence[uuid.UUID], at: datetime) -> int:
        """Record that these keys are about to be destroyed; durable when it returns.
        An erasure made again for an entry already in the ledger reuses that entry."""
        ids = [str(k) for k in key_ids]
        with self.engine.begin() as conn:
            seq = conn.execute(select(entries.c.seq).where(entries.c.case_id == ids[0])).scalar()
            if seq is not None:
                return int(seq)
            row = {"case_id": ids[0], "key_ids": json.dumps(ids), "intended_at": at}
            made = conn.execute(insert(entries).values(state="intended", **row))
            return int(made.inserted_primary_key[0])  # type: ignore[index]

    def done(self, seq: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(entries)
                .where(entries.c.seq == seq, entries.c.state == "intended")
                .values(state="done", done_at=datetime.now(UTC))
            )

    def rolled_back(self, seq: int) -> None:
        """The erasure's write rolled back before its commit: it did not happen."""
        with self.engine.begin() as conn:
            conn.execute(delete(entries).where(entries.c.seq == seq, entries.c.state == "intended"))

    def entries(self) -> list[Entry]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(entries).order_by(entries.c.seq)).all()
        return [
            Entry(
                r.seq,
                tuple(uuid.UUID(k) for k in json.loads(r.key_ids)),
                _aware(r.intended_at),
                r.state,
            )
            for r in rows
        ]

    def take_in(self, key_ids: Sequence[uuid.UUID], at: datetime) -> int:
        """Record as done the erasure of every key not in the ledger yet (one entry
        each: a register's own erasures, which it holds already). How many."""
        known = {k for e in self.entries() for k in e.key_ids}
        missing = [k for k in key_ids if k not in known]
        if missing:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(entries),
                    [
                        {
                            "case_id": str(k),
                            "key_ids": json.dumps([str(k)]),
                            "intended_at": at,
                            "state": "done",
                            "done_at": at,
                        }
                        for k in missing
                    ],
                )
        return len(missing)

    # ---- a restore in progress -----------------------------------------------------------

    @contextmanager
    def restoring(self, keep_on_failure: bool) -> Iterator[None]:
        """Marks a restore in progress for its whole length. If it fails, the mark stays
        when the register may be half replaced (``keep_on_failure``): no store opens it
        until a restore succeeds."""
        with self.engine.begin() as conn:
            conn.execute(delete(facts).where(facts.c.name == "restoring"))
            conn.execute(insert(facts).values(name="restoring", value=_now()))
        try:
            yield
        except BaseException:
            if not keep_on_failure:
                self._unmark()
            raise
        self._unmark()

    def _unmark(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(facts).where(facts.c.name == "restoring"))

    def restore_unfinished(self) -> bool:
        return self._fact("restoring") is not None

    def _fact(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(facts.c.value).where(facts.c.name == name)).scalar()

    def close(self) -> None:
        self.engine.dispose()


def _durable(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _same_database(a: str, b: str) -> bool:
    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == "sqlite" and ub.get_backend_name() == "sqlite":
        pa, pb = Path(ua.database or ""), Path(ub.database or "")
        return pa.resolve() == pb.resolve()
    if ua.get_backend_name() != ub.get_backend_name():
        return False
    return (ua.host, ua.port or 5432, ua.database) == (ub.host, ub.port or 5432, ub.database)


def _create_database(url: str, via: str) -> None:
    """Make the ledger's PostgreSQL database if it does not exist (two processes at
    once: one makes it). Needs the CREATEDB privilege; without it, the error says to
    make the database or to name another with ``CASEBOOK_ERASURE_LEDGER_URL``."""
    name = make_url(url).database or ""
    engine = sqlalchemy.create_engine(via, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": name},
            ).first()
            if found is None:
                try:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                except sqlalchemy.exc.ProgrammingError as e:
                    if "already exists" not in str(e):
                        raise LedgerRefused(
                            f"the erasure ledger's database {name} does not exist and "
                            "cannot be made here: make it, or name another with "
                            "CASEBOOK_ERASURE_LEDGER_URL"
                        ) from None
    finally:
        engine.dispose()
