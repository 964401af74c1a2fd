"""The erasure ledger: every erasure, recorded outside the register's database, so that
a register restored from a copy made before an erasure does not bring the person back.

A copy of the register made before an erasure holds the person's key, and so their
data: restoring it would undo the erasure. The ledger lives apart from the database
(``Settings.erasure_ledger_url``: by default a SQLite file beside a SQLite register, or
in the data folder beside a PostgreSQL one; for several hosts, a second database all
of them reach) and holds ids only, never a name: the ids of the keys an erasure
destroyed (the first is the case's: a person's key has the case's id) and when.

- **Before** an erasure commits, its intent is written to the ledger and made durable
  (``intend``: a committed transaction, SQLite ``synchronous=FULL``), in the erasure's
  write, under the register's write lock. Once it has committed, the entry is marked
  done. A process killed between the two leaves an intent; so does an erasure that
  failed.
- **Whenever a store opens a register for the service** (``reconcile``): an intent
  older than ``GRACE`` (no write lasts that long) is settled against the register: done
  if the case's key is destroyed there, dropped if not (the erasure never committed;
  its client was answered with an error and may ask again). Then every erasure in the
  ledger whose keys the register still holds is made again, before the service
  answers (``reapply``): the case's erasure recorded anew, with a reason saying so,
  by its owner organisation's name and ``REAPPLIED_BY``, and any other key of the entry
  destroyed. This is what brings a restore (``casebook restore``, or the database
  server's own tools) back to every erasure made after the copy.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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

from infrastructure import tables
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from infrastructure.store import Store

log = logging.getLogger("casebook.erasures")

# An intent older than this whose erasure is not in the register never committed.
GRACE = timedelta(minutes=5)
REAPPLIED_BY = "casebook-erasure-ledger"  # the name on an erasure made again
REAPPLIER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "casebook:erasure-ledger")

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
    (``casebook.sqlite`` -> ``casebook.erasures.sqlite``), else in the data folder."""
    if settings.erasure_ledger_url:
        return settings.erasure_ledger_url
    if settings.is_sqlite:
        db = settings.sqlite_path()
        return f"sqlite:///{db.with_name(db.stem + '.erasures.sqlite')}"
    return f"sqlite:///{(settings.data_dir / 'casebook.erasures.sqlite').resolve()}"


class ErasureLedger:
    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _durable)
        metadata.create_all(self.engine)

    @classmethod
    def of(cls, settings: Settings) -> ErasureLedger:
        on_one_host = not settings.is_sqlite and not settings.erasure_ledger_url
        if on_one_host and settings.mode == "production":
            log.warning(
                "the erasure ledger is a file on this host: with API processes on "
                "several hosts, set CASEBOOK_ERASURE_LEDGER_URL to a database they all "
                "reach, or a restore may not know of erasures made on another host"
            )
        return cls(ledger_url(settings))

    def intend(self, key_ids: Sequence[uuid.UUID], at: datetime) -> int:
        """Record that these keys are about to be destroyed; durable when it returns.
        An erasure made again for an entry already done reuses that entry."""
        ids = [str(k) for k in key_ids]
        with self.engine.begin() as conn:
            seq = conn.execute(
                select(entries.c.seq).where(entries.c.case_id == ids[0], entries.c.state == "done")
            ).scalar()
            if seq is not None:
                return int(seq)
            row = {"case_id": ids[0], "key_ids": json.dumps(ids), "intended_at": at}
            made = conn.execute(insert(entries).values(state="intended", **row))
            return int(made.inserted_primary_key[0])  # type: ignore[index]

    def done(self, seq: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(entries)
                .where(entries.c.seq == seq)
                .values(state="done", done_at=datetime.now(UTC))
            )

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

    def settle(self, store: Store, everything: bool = False) -> None:
        """Each intent older than ``GRACE`` (``everything``: each intent, when no write
        can be in progress): done if the register destroyed its case's key, dropped if
        not."""
        cutoff = datetime.now(UTC) - (timedelta(0) if everything else GRACE)
        pending = [e for e in self.entries() if e.state == "intended" and e.intended_at < cutoff]
        if not pending:
            return
        destroyed = _destroyed(store, [e.case_id for e in pending])
        for e in pending:
            if e.case_id in destroyed:
                self.done(e.seq)
            else:
                with self.engine.begin() as conn:
                    conn.execute(delete(entries).where(entries.c.seq == e.seq))

    def assume_done(self) -> None:
        """Every intent left taken as done (a restore, when the replaced register could
        not say whether they committed)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(entries)
                .where(entries.c.state == "intended")
                .values(state="done", done_at=datetime.now(UTC))
            )

    def close(self) -> None:
        self.engine.dispose()


def _durable(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _destroyed(store: Store, key_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    k = tables.person_keys
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(k.c.key_id).where(k.c.key_id.in_(list(key_ids)), k.c.wrapped.is_(None))
        )
        return set(rows.scalars())


def _still_held(store: Store, key_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    k = tables.person_keys
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(k.c.key_id).where(k.c.key_id.in_(list(key_ids)), k.c.wrapped.is_not(None))
        )
        return set(rows.scalars())


def reconcile(store: Store, ledger: ErasureLedger) -> list[uuid.UUID]:
    """Settle the intents, then make again every erasure the register does not hold
    (see the module's docstring). The cases erased again."""
    ledger.settle(store)
    done = [e for e in ledger.entries() if e.state == "done"]
    held = _still_held(store, [k for e in done for k in e.key_ids]) if done else set()
    again = []
    for entry in done:
        if held & set(entry.key_ids) and reapply(store, entry, held):
            again.append(entry.case_id)
    if again:
        log.warning("erasure ledger: %d erasures made again (a restored register)", len(again))
    return again


def reapply(store: Store, entry: Entry, held: set[uuid.UUID]) -> bool:
    """Erase the entry's case again if the register holds it unerased; destroy any of
    the entry's other keys it still holds. Whether the case was erased again."""
    from domain.cases import EraseCase
    from domain.rules import InvalidTransition

    erased_again = False
    if entry.case_id in held:
        org = _owner(store, entry.case_id)
        if org is not None:
            reason = (
                f"erasure of {entry.intended_at.date().isoformat()} made again from the "
                "erasure ledger: the register was restored from a copy made before it"
            )
            try:
                store.register.erase_case(EraseCase(entry.case_id, reason), _Reapplier(org), None)
                erased_again = True
            except InvalidTransition:
                pass  # erased meanwhile by another process
    rest = _still_held(store, list(entry.key_ids))
    if rest:  # the entry covers them already: no new one
        with store.write() as unit:
            unit.destroy_keys(sorted(rest), ledgered=False)
    return erased_again


def _owner(store: Store, case_id: uuid.UUID) -> str | None:
    v = tables.case_views
    with store.engine.connect() as conn:
        return conn.execute(select(v.c.org).where(v.c.case_id == case_id)).scalar()


@dataclass(frozen=True)
class _Reapplier:
    """The caller of an erasure made again: the register itself, in the name of the
    case's owner organisation (``Caller``)."""

    org: str
    id: uuid.UUID = REAPPLIER_ID
    name: str = REAPPLIED_BY
    role: str = "admin"
