"""``casebook backup FILE``: a consistent copy of the register, taken while the service
runs, ending with a fresh signed checkpoint of the copy's own head.

- **SQLite**: SQLite's online backup API copies the database in one step, which is one
  read transaction: a consistent state, while writers go on (WAL). FILE is a SQLite
  database (journal mode DELETE: one file) that ``sqlite3`` opens; the checkpoint is
  stored in its ``casebook_checkpoints`` table, so ``casebook verify`` checks the copy
  like any register.
- **PostgreSQL**: ``pg_dump`` (custom format) reads a snapshot exported by a
  REPEATABLE READ transaction in which the copy's head is read too, so the dump and
  the checkpoint describe the same state. FILE is a tar archive of ``register.dump``
  and ``manifest.json`` (the checkpoint). Without ``pg_dump`` on the path the command
  says so; the README says how to use the server's own tools instead (then the ledger
  still re-applies erasures when the service starts).

Either way the copy is written beside FILE as ``FILE.partial``, flushed to disk, and
renamed: a backup killed half-way leaves no FILE that looks whole. FILE must not exist.
The erasure ledger (``infrastructure.ledger``) is not in the copy, by design.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from infrastructure import tables
from infrastructure.checkpoints import Checkpoint, Signer

if TYPE_CHECKING:
    from infrastructure.store import Store

FORMAT = "casebook-backup-v1"
DUMP, MANIFEST = "register.dump", "manifest.json"
SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(Exception):
    """The copy could not be made or read; the message says why (no personal data)."""


@dataclass(frozen=True)
class Manifest:
    dialect: str
    checkpoint: Checkpoint
    made_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "dialect": self.dialect,
            "made_at": self.made_at,
            "checkpoint": self.checkpoint.as_dict(),
        }


def backup(store: Store, target: Path, signer: Signer) -> Manifest:
    """Copy the register to ``target`` (which must not exist); the manifest says what
    the copy holds."""
    if target.exists():
        raise BackupError(f"{target} exists: choose a new file (a backup never overwrites)")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if store.dialect == "sqlite":
            manifest = _sqlite(store, partial, signer)
        else:
            manifest = _postgres(store, partial, signer)
        fsync(partial)
        os.replace(partial, target)
        fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def _sqlite(store: Store, partial: Path, signer: Signer) -> Manifest:
    source = sqlite3.connect(f"file:{store.settings.sqlite_path()}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)  # one step: one read transaction, a consistent state
        position, head = copy.execute(
            f"SELECT chain_position, chain_hash FROM {tables.register_head.name}"
        ).fetchone()
        checkpoint = signer.sign(int(position), str(head))
        columns = ", ".join(checkpoint.as_dict())
        copy.execute(
            f"INSERT INTO {tables.checkpoints.name} ({columns}) VALUES (?, ?, ?, ?, ?)",
            tuple(checkpoint.as_dict().values()),
        )
        copy.commit()
        copy.execute("PRAGMA journal_mode = DELETE")  # the copy is one file
    finally:
        copy.close()
        source.close()
    return Manifest("sqlite", checkpoint, checkpoint.made_at)


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """The database URL as PostgreSQL's own tools take it, and their environment (the
    password, if any, in PGPASSWORD rather than on a command line others can read)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not on the path: install PostgreSQL's client tools (the server's "
            "major version), or use the server's own backup tools (README: Backups)"
        )
    return found


def _postgres(store: Store, partial: Path, signer: Signer) -> Manifest:
    pg_dump = tool("pg_dump")
    url, env = libpq(store.settings.url())
    h = tables.register_head
    with tempfile.TemporaryDirectory(dir=partial.parent) as work:
        dump = Path(work) / DUMP
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                head = conn.execute(select(h.c.chain_position, h.c.chain_hash)).one()
                command = [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={dump}",
                    f"--dbname={url}",
                ]
                done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {_first_line(done.stderr)}")
        checkpoint = signer.sign(int(head.chain_position), str(head.chain_hash))
        manifest = Manifest("postgresql", checkpoint, checkpoint.made_at)
        with tarfile.open(partial, "w") as archive:
            data = json.dumps(manifest.as_dict(), indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(datetime.now(UTC).timestamp())
            archive.addfile(info, io.BytesIO(data))
            archive.add(dump, arcname=DUMP)
    return manifest


def read_manifest(path: Path) -> Manifest:
    """What a backup file holds: a SQLite copy (its newest checkpoint) or a PostgreSQL
    archive (its manifest). ``BackupError`` for anything else."""
    with path.open("rb") as f:
        magic = f.read(len(SQLITE_MAGIC))
    if magic == SQLITE_MAGIC:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute(
                f"SELECT position, head, made_at, public_key, signature "
                f"FROM {tables.checkpoints.name} ORDER BY id DESC LIMIT 1"
            ).fetchone()
        except sqlite3.DatabaseError as e:
            raise BackupError(f"{path} is not a casebook register: {e}") from None
        finally:
            con.close()
        if row is None:
            raise BackupError(f"{path} holds no checkpoint: not a casebook backup")
        checkpoint = Checkpoint(int(row[0]), *(str(v) for v in row[1:]))
        return Manifest("sqlite", checkpoint, checkpoint.made_at)
    if not tarfile.is_tarfile(path):
        raise BackupError(f"{path} is neither a SQLite copy nor a casebook archive")
    with tarfile.open(path) as archive:
        try:
            member = archive.extractfile(MANIFEST)
            loaded = json.loads(member.read()) if member else None
        except (KeyError, ValueError):
            loaded = None
    if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
        raise BackupError(f"{path} is not a casebook backup ({FORMAT})")
    try:
        checkpoint = Checkpoint.from_dict(loaded["checkpoint"])
        return Manifest(str(loaded["dialect"]), checkpoint, str(loaded["made_at"]))
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{path}: its manifest is damaged") from None


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else "no message"
