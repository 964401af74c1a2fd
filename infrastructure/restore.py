"""``casebook restore FILE [--force] [--checkpoint KEPT]``: put a backup
(``infrastructure.backup``) in place of the register, verified, with every erasure
made since the copy made again, and a signed statement of what was done.

In order, with the service stopped (the README says so; a SQLite file replaced under
a running service would be written by it no more):

1. The backup's manifest (the copy's SHA-256 and the checkpoint of its head) must be
   signed by this installation's key, and the copy must be of this store's kind
   (SQLite or PostgreSQL), and hash to what the manifest says before anything of it is
   loaded. A register that holds events is replaced only with ``--force``.
2. The erasure ledger's intents are settled against the register being replaced while
   it can still be read; any it cannot settle are taken as done (erasing someone whose
   erasure was asked for is safer than bringing back someone who was erased).
3. The copy is put where it is checked: SQLite beside the register
   (``casebook.sqlite.restoring``), PostgreSQL in the register's database itself
   (``pg_restore``, in one transaction, then marked unfinished in ``casebook_owed``:
   a store refuses to open a register so marked).
4. Its chain is verified against its own checkpoint and every checkpoint the operator
   kept up to the copy's head; kept checkpoints past it cannot match any more and are
   listed. A copy that does not verify is refused (SQLite: the register is untouched).
5. A statement "restored from position P" is recorded, signed (``casebook_restores``),
   so that an auditor whose checkpoints past P no longer match sees why; then a store
   opens it, which makes again every erasure in the ledger it does not hold
   (``infrastructure.ledger``), and a fresh checkpoint is signed.
6. SQLite: the checked copy is renamed over the register (atomic). PostgreSQL: the
   unfinished mark is removed.

A restore killed part-way is run again: SQLite's register is untouched until the last
step; PostgreSQL's stays marked unfinished, and the store refuses it until then.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import sqlalchemy
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
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
from infrastructure.checkpoints import Checkpoint, Signer
from infrastructure.ledger import ErasureLedger, ledger_url, reconcile
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
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))
            key.verify(bytes.fromhex(self.signature), self.message())
        except (ValueError, InvalidSignature):
            return False
        return True


@dataclass
class Restored:
    position: int
    events: int
    erased_again: list[UUID] = field(default_factory=list)
    kept_past: list[Checkpoint] = field(default_factory=list)


def restore(
    settings: Settings, source: Path, *, force: bool, kept: Sequence[Checkpoint] = ()
) -> Restored:
    try:
        manifest = read_manifest(source)
    except BackupError as e:
        raise RestoreRefused(str(e)) from None
    kind = "sqlite" if settings.is_sqlite else "postgresql"
    if manifest.dialect != kind:
        raise RestoreRefused(f"the copy is of a {manifest.dialect} register; this one is {kind}")
    signer = Signer.from_settings(settings)
    copy_checkpoint = manifest.checkpoint
    if not manifest.signed_by(signer.public_key):
        raise RestoreRefused("the backup is not signed by this installation's key")
    held = _events_held(settings)
    if held and not force:
        raise RestoreRefused(
            f"the register holds {held} events: a restore replaces them (add --force)"
        )
    ledger = ErasureLedger.of(settings)
    try:
        _settle_intents(settings, ledger)
    finally:
        ledger.close()
    past = [k for k in kept if k.position > copy_checkpoint.position]
    before = [k for k in kept if k.position <= copy_checkpoint.position]
    if settings.is_sqlite:
        done = _sqlite(settings, source, manifest, before, signer)
    else:
        done = _postgres(settings, source, manifest, before, signer)
    done.kept_past = past
    return done


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


def _settle_intents(settings: Settings, ledger: ErasureLedger) -> None:
    """Settle every intent against the register being replaced, if it can be read;
    take any left as done."""
    from infrastructure.store import Store

    try:
        store = Store(settings, require_current=False)
    except Exception:  # damaged or gone: why one restores
        store = None
    if store is not None:
        try:
            ledger.settle(store, everything=True)
        finally:
            store.close()
    ledger.assume_done()


def _sqlite(
    settings: Settings,
    source: Path,
    manifest: Manifest,
    kept: Sequence[Checkpoint],
    signer: Signer,
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
        done = _check_and_finish(work, manifest, kept, signer)
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
) -> Restored:
    pg_restore = tool("pg_restore")
    url, env = libpq(settings.url())
    engine = sqlalchemy.create_engine(settings.url())
    try:
        with tempfile.TemporaryDirectory() as work:
            dump = Path(work) / manifest.member
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
            migrations.owe(conn, migrations.RESTORE)
            conn.execute(insert(tables.checkpoints).values(**manifest.checkpoint.as_dict()))
    finally:
        engine.dispose()
    done = _check_and_finish(settings, manifest, kept, signer)
    engine = sqlalchemy.create_engine(settings.url())
    try:
        with engine.begin() as conn:
            migrations.paid(conn, migrations.RESTORE)
    finally:
        engine.dispose()
    return done


def _check_and_finish(
    settings: Settings, manifest: Manifest, kept: Sequence[Checkpoint], signer: Signer
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
        erased = reconcile(store, store.ledger)
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
