"""``casebook restore FILE [--force] [--checkpoint KEPT] [--new-ledger]``: put a backup
(``infrastructure.backup``) in place of the register, verified, with every erasure
made since the copy made again, and a signed statement of what was done.

In order, with the service stopped (the README says so; a SQLite file replaced under
a running service would be written by it no more), one restore at a time (a lock file
in the data folder):

1. The backup's manifest (the copy's SHA-256, the checkpoint of its head, the id of
   the erasure ledger the register was paired with, the check value of the master key
   that wraps its keys) must be signed by this installation's key and name the master
   key given; the copy must be of this store's kind and hash to what the
   manifest says before a byte of it is written anywhere. A register that holds events
   is replaced only with ``--force``. The ledger must be the copy's: a new one (the
   old lost) does not know the erasures made after the copy, so it is refused unless
   the operator says ``--new-ledger``, knowingly.
2. The restore is marked in the ledger, outside the database it replaces: no store
   opens the register until the restore has finished.
3. The copy is put where it is checked: SQLite beside the register
   (``casebook.sqlite.restoring``), PostgreSQL in the register's database itself
   (``pg_restore``, in one transaction, after the old schema is dropped).
4. Its chain is verified against its own checkpoint and every checkpoint the operator
   kept up to the copy's head; kept checkpoints past it cannot match any more and are
   listed. A copy that does not verify is refused.
5. A statement "restored from position P" is recorded, signed (``casebook_restores``),
   so that an auditor whose checkpoints past P no longer match sees why; every erasure
   in the ledger the copy does not hold is made again (``infrastructure.reconcile``),
   and a fresh checkpoint is signed.
6. SQLite: the checked copy is renamed over the register (atomic). The mark is removed.

A restore that fails or is killed is run again. SQLite's register is untouched until
the rename (a failure before it removes the mark). PostgreSQL's may be half replaced:
the mark stays, and every store refuses the register until a restore succeeds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import sqlalchemy
from sqlalchemy import func, insert, select

from infrastructure import migrations, tables
from infrastructure.backup import (
    BackupError,
    Manifest,
    extract_copy,
    fsync,
    libpq,
    read_manifest,
    tool,
)
from infrastructure.checkpoints import Checkpoint, Signer, key_id, signature_holds
from infrastructure.crypto import Keyring, load_master_key
from infrastructure.ledger import ErasureLedger, ledger_url
from infrastructure.reconcile import adopt, reapply_all
from infrastructure.settings import Settings

TAG = "casebook-restore-v1"


class RestoreRefused(Exception):
    """Nothing was replaced; the message says why."""


@dataclass(frozen=True)
class RestoreStatement:
    """What the register records, signed: it was restored from a copy whose chain ended
    at ``position`` with ``head``, made at ``copy_made_at``."""

    position: int
    head: str
    copy_made_at: str
    restored_at: str
    public_key: str
    signature: str = ""

    def message(self) -> bytes:
        return (
            f"{TAG}\n{self.position}\n{self.head}\n{self.copy_made_at}\n"
            f"{self.restored_at}\n{self.public_key}"
        ).encode()

    def signature_holds(self) -> bool:
        return signature_holds(self.public_key, self.signature, self.message())


@dataclass
class Restored:
    position: int
    events: int
    erased_again: list[UUID] = field(default_factory=list)
    kept_past: list[Checkpoint] = field(default_factory=list)


def restore(
    settings: Settings,
    source: Path,
    *,
    force: bool,
    kept: Sequence[Checkpoint] = (),
    new_ledger: bool = False,
) -> Restored:
    try:
        manifest = read_manifest(source)
    except BackupError as e:
        raise RestoreRefused(str(e)) from None
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest.dialect != kind:
        raise RestoreRefused(f"the copy is of a {manifest.dialect} register; this one is {kind}")
    signer = Signer.from_settings(settings)
    if not manifest.signed_by(signer.public_key):
        earlier = manifest.checkpoint.public_key in _retired_keys(settings)
        if earlier and manifest.signed_by(manifest.checkpoint.public_key):
            raise RestoreRefused(
                f"the backup is signed with another key (key id "
                f"{key_id(manifest.checkpoint.public_key)}) than the one in force here (key "
                f"id {signer.key_id}): a copy made before a signing-key rotation cannot be "
                "restored by this version (the restored register would not know the key "
                "now in force); take a fresh backup after every rotation"
            )
        raise RestoreRefused("the backup is not signed by this installation's key")
    if manifest.master_check != Keyring(load_master_key(settings)).check_value:
        raise RestoreRefused(
            "the copy's keys are wrapped by another master key than the one given (one in "
            "use before a master-key rotation?): restore it with the master key of its "
            "time, then rotate again"
        )
    with _one_restore(settings):
        held = _events_held(settings)
        if held and not force:
            raise RestoreRefused(
                f"the register holds {held} events: a restore replaces them (add --force)"
            )
        ledger = ErasureLedger.of(settings)
        try:
            if manifest.ledger_id != ledger.id and not new_ledger:
                raise RestoreRefused(
                    "the erasure ledger here is not the one the copy's register was paired "
                    "with: without it, erasures made after the copy would not be made again. "
                    "Point CASEBOOK_ERASURE_LEDGER_URL at that ledger; if it is lost for "
                    "good, add --new-ledger (and erase again whoever was erased since)"
                )
            position = manifest.checkpoint.position
            before = [k for k in kept if k.position <= position]
            with ledger.restoring(keep_on_failure=not settings.is_sqlite):
                if settings.is_sqlite:
                    done = _sqlite(settings, source, manifest, before, signer, new_ledger)
                else:
                    done = _postgres(settings, source, manifest, before, signer, new_ledger)
        finally:
            ledger.close()
    done.kept_past = [k for k in kept if k.position > position]
    return done


def _retired_keys(settings: Settings) -> set[str]:
    """The signing keys this installation's register announced a successor for, as
    far as it can still be read (nothing if not)."""
    k = tables.signing_keys
    if settings.is_sqlite and not settings.sqlite_path().exists():
        return set()
    try:
        engine = sqlalchemy.create_engine(settings.url())
        try:
            with engine.connect() as conn:
                return set(conn.execute(select(k.c.previous_public_key)).scalars())
        finally:
            engine.dispose()
    except sqlalchemy.exc.SQLAlchemyError:
        return set()


@contextmanager
def _one_restore(settings: Settings) -> Iterator[None]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / "restore.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreRefused("another restore is running") from None
        yield


def _events_held(settings: Settings) -> int:
    if settings.is_sqlite and not settings.sqlite_path().exists():
        return 0
    engine = sqlalchemy.create_engine(settings.url())
    try:
        with engine.connect() as conn:
            if not sqlalchemy.inspect(conn).has_table(tables.register_head.name):
                return 0
            return int(conn.execute(select(tables.register_head.c.position)).scalar() or 0)
    finally:
        engine.dispose()


def _sqlite(
    settings: Settings,
    source: Path,
    manifest: Manifest,
    kept: Sequence[Checkpoint],
    signer: Signer,
    new_ledger: bool,
) -> Restored:
    target = settings.sqlite_path()
    restoring = target.with_name(target.name + ".restoring")
    for leftover in _files(restoring):
        leftover.unlink(missing_ok=True)
    try:
        extract_copy(source, manifest, restoring)
    except BackupError as e:
        raise RestoreRefused(str(e)) from None
    work = settings.model_copy(
        update={
            "database_url": f"sqlite:///{restoring}",
            "erasure_ledger_url": ledger_url(settings),
        }
    )
    try:
        done = _check_and_finish(work, manifest, kept, signer, new_ledger)
        con = sqlite3.connect(restoring)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode = DELETE")  # one file, to rename
        con.close()
        fsync(restoring)
        for old in _files(target)[1:]:  # the replaced register's WAL and index
            old.unlink(missing_ok=True)
        os.replace(restoring, target)
        fsync(target.parent)
    finally:
        for leftover in _files(restoring):
            leftover.unlink(missing_ok=True)
    return done


def _postgres(
    settings: Settings,
    source: Path,
    manifest: Manifest,
    kept: Sequence[Checkpoint],
    signer: Signer,
    new_ledger: bool,
) -> Restored:
    pg_restore = tool("pg_restore")
    url, env = libpq(settings.url())
    work = settings.data_dir / "restore-work"  # a fixed place: a killed run's is removed
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700, parents=True)
    engine = sqlalchemy.create_engine(settings.url())
    try:
        dump = work / manifest.member
        try:
            extract_copy(source, manifest, dump)
        except BackupError as e:
            raise RestoreRefused(str(e)) from None
        with engine.begin() as conn:
            for schema in ("casebook_rebuild", "casebook_retired", "public"):
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        command = [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={url}",
            str(dump),
        ]
        ran = subprocess.run(command, env=env, capture_output=True, text=True)
        if ran.returncode != 0:
            first = next((x for x in ran.stderr.splitlines() if x.strip()), "no message")
            raise RestoreRefused(f"pg_restore failed: {first[:300]}")
        with engine.begin() as conn:
            conn.execute(insert(tables.checkpoints).values(**manifest.checkpoint.as_dict()))
    finally:
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return _check_and_finish(settings, manifest, kept, signer, new_ledger)


def _check_and_finish(
    settings: Settings,
    manifest: Manifest,
    kept: Sequence[Checkpoint],
    signer: Signer,
    new_ledger: bool,
) -> Restored:
    """Verify the copy where it lies, record the signed statement; then open it as the
    service would (the ledger's erasures made again) and sign a fresh checkpoint."""
    from infrastructure.auditing import AuditReads
    from infrastructure.store import Store

    store = Store(settings, require_current=False)
    try:
        with store.engine.connect() as conn:
            if migrations.state(conn) != "current":
                raise RestoreRefused(
                    "the copy was made by an earlier casebook: upgrade it first "
                    "(CASEBOOK_DATABASE_URL=<the copy> casebook upgrade), then restore it"
                )
        store.signer = signer
        result = AuditReads(store).verify(kept)
        if not result.ok:
            raise RestoreRefused(
                f"the copy does not verify, at position {result.broken_at}: {result.problem}"
            )
        position = manifest.checkpoint.position
        if (result.events, result.head) != (position, manifest.checkpoint.head):
            raise RestoreRefused(
                f"the copy's chain ends at position {result.events}, its checkpoint at "
                f"{position}: not the copy this checkpoint was made for"
            )
        unsigned = RestoreStatement(
            position,
            manifest.checkpoint.head,
            manifest.made_at,
            datetime.now(UTC).isoformat(),
            signer.public_key,
        )
        statement = RestoreStatement(
            **{**unsigned.__dict__, "signature": signer.sign_bytes(unsigned.message()).hex()}
        )
        with store.engine.begin() as conn:
            conn.execute(insert(tables.restores).values(**statement.__dict__))
    finally:
        store.close()
    store = Store(settings, require_current=False)
    try:
        with store.engine.connect() as conn:
            events = int(conn.execute(select(func.count()).select_from(tables.chain)).scalar_one())
        if new_ledger:
            adopt(store, store.ledger, restoring=True)
        erased = reapply_all(store, store.ledger)
        store.signer = signer
        store.checkpoint()
    finally:
        store.close()
    return Restored(position, events, erased)


def statements(conn: sqlalchemy.Connection) -> list[RestoreStatement]:
    """The register's restore statements, oldest first (none before migration 0008)."""
    if not sqlalchemy.inspect(conn).has_table(tables.restores.name):
        return []
    r = tables.restores
    rows = conn.execute(select(r).order_by(r.c.id)).all()
    return [
        RestoreStatement(
            row.position,
            row.head,
            row.copy_made_at,
            row.restored_at,
            row.public_key,
            row.signature,
        )
        for row in rows
    ]


def _files(db: Path) -> list[Path]:
    return [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")]
