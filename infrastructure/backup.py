"""``casebook backup FILE``: a consistent copy of the register, taken while the service
runs, ending with a fresh signed checkpoint of the copy's own head.

FILE is a tar archive of two members: the copy, and ``manifest.json``, which names the
copy's kind, its SHA-256, the checkpoint of its head, and a signature of all of that
with the installation's key. A restore checks the signature and the hash before it
reads a byte of the copy: a copy altered or swapped after the backup (a trigger slipped
into a SQLite file would undo an erasure; a crafted dump would run its own SQL) is
refused, not loaded.

- **SQLite**: SQLite's online backup API copies the database in one step, which is one
  read transaction: a consistent state, while writers go on (WAL). The member
  ``register.sqlite`` is that database (journal mode DELETE: one file), with the
  checkpoint also in its ``casebook_checkpoints``, so that ``casebook verify`` checks it
  once extracted.
- **PostgreSQL**: ``pg_dump`` (custom format) reads a snapshot exported by a
  REPEATABLE READ transaction in which the copy's head is read too, so the dump and the
  checkpoint describe the same state. The member is ``register.dump``. Without
  ``pg_dump`` on the path the command says so; the README says how to use the server's
  own tools instead (then the erasure ledger still makes erasures again when the
  service starts).

The archive is written beside FILE as ``FILE.partial``, flushed to disk and renamed: a
backup killed half-way leaves no FILE that looks whole. FILE must not exist. The
erasure ledger (``infrastructure.ledger``) is not in the copy, by design.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import make_url

from infrastructure import tables
from infrastructure.checkpoints import Checkpoint, Signer, signature_holds

if TYPE_CHECKING:
    from infrastructure.store import Store

FORMAT = "casebook-backup-v1"
MEMBERS = {"sqlite": "register.sqlite", "postgresql": "register.dump"}
MANIFEST = "manifest.json"
MANIFEST_MAX = 64 * 1024


class BackupError(Exception):
    """The copy could not be made or read; the message says why (no personal data)."""


@dataclass(frozen=True)
class Manifest:
    dialect: str
    checkpoint: Checkpoint
    made_at: str
    sha256: str  # of the copy (the archive's other member)
    ledger_id: str  # the erasure ledger the register was paired with
    master_check: str  # the check value of the master key that wraps its keys
    signature: str = ""  # hex: of ``message()``, with the checkpoint's key

    @property
    def member(self) -> str:
        return MEMBERS[self.dialect]

    def message(self) -> bytes:
        head = (
            f"{FORMAT}\n{self.dialect}\n{self.made_at}\n{self.member}\n{self.sha256}\n"
            f"{self.ledger_id}\n{self.master_check}\n"
        )
        return head.encode() + self.checkpoint.message()

    def signed_by(self, public_key: str) -> bool:
        """Whether ``public_key`` signed this manifest and its checkpoint."""
        if self.checkpoint.public_key != public_key or not self.checkpoint.signature_holds():
            return False
        return signature_holds(public_key, self.signature, self.message())

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "dialect": self.dialect,
            "made_at": self.made_at,
            "member": self.member,
            "sha256": self.sha256,
            "ledger_id": self.ledger_id,
            "master_check": self.master_check,
            "checkpoint": self.checkpoint.as_dict(),
            "signature": self.signature,
        }


def backup(store: Store, target: Path, signer: Signer) -> Manifest:
    """Copy the register to ``target`` (which must not exist); the manifest says what
    the copy holds. Its files are the owner's only (0600): the copy holds every
    person's wrapped key. A killed backup leaves ``FILE.partial`` and ``FILE.work``,
    removed by the next backup to FILE (or by hand)."""
    if target.exists():
        raise BackupError(f"{target} exists: choose a new file (a backup never overwrites)")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder")
    partial = target.with_name(target.name + ".partial")
    work = target.with_name(target.name + ".work")
    partial.unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    old_umask = os.umask(0o077)
    try:
        work.mkdir(mode=0o700)
        copy = work / "copy"
        if store.dialect == "sqlite":
            checkpoint, ledger_id, master = _sqlite(store, copy, signer)
        else:
            checkpoint, ledger_id, master = _postgres(store, copy, signer)
        unsigned = Manifest(
            store.dialect, checkpoint, checkpoint.made_at, sha256(copy), ledger_id, master
        )
        manifest = replace(unsigned, signature=signer.sign_bytes(unsigned.message()).hex())
        with tarfile.open(partial, "w:") as archive:
            data = json.dumps(manifest.as_dict(), indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(datetime.now(UTC).timestamp())
            archive.addfile(info, io.BytesIO(data))
            archive.add(copy, arcname=manifest.member)
        fsync(partial)
        os.replace(partial, target)
        fsync(target.parent)
    finally:
        os.umask(old_umask)
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def _sqlite(store: Store, copy_path: Path, signer: Signer) -> tuple[Checkpoint, str, str]:
    source = sqlite3.connect(f"file:{store.settings.sqlite_path()}?mode=ro", uri=True)
    copy = sqlite3.connect(copy_path)
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
        paired = copy.execute(f"SELECT ledger_id FROM {tables.ledger_pairing.name}").fetchone()
        master = copy.execute(f"SELECT check_value FROM {tables.master_check.name}").fetchone()
    finally:
        copy.close()
        source.close()
    return checkpoint, paired[0] if paired else "", master[0] if master else ""


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


def _postgres(store: Store, dump: Path, signer: Signer) -> tuple[Checkpoint, str, str]:
    pg_dump = tool("pg_dump")
    url, env = libpq(store.settings.url())
    h = tables.register_head
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            head = conn.execute(select(h.c.chain_position, h.c.chain_hash)).one()
            paired = conn.execute(select(tables.ledger_pairing.c.ledger_id)).scalar()
            master = conn.execute(select(tables.master_check.c.check_value)).scalar()
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
    return checkpoint, paired or "", master or ""


def read_manifest(path: Path) -> Manifest:
    """A backup's manifest, as written (its signature is the caller's to check).
    ``BackupError`` for anything that is not a casebook backup: only an uncompressed
    tar whose manifest is a small regular file is read at all."""
    try:
        with tarfile.open(path, "r:") as archive:
            info = archive.getmember(MANIFEST)
            if not info.isreg() or info.size > MANIFEST_MAX:
                raise KeyError(MANIFEST)
            member = archive.extractfile(info)
            loaded = json.loads(member.read()) if member else None
    except (tarfile.TarError, KeyError, ValueError, OSError):
        loaded = None
    if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
        raise BackupError(f"{path} is not a casebook backup ({FORMAT})")
    try:
        manifest = Manifest(
            str(loaded["dialect"]),
            Checkpoint.from_dict(loaded["checkpoint"]),
            str(loaded["made_at"]),
            str(loaded["sha256"]),
            str(loaded["ledger_id"]),
            str(loaded["master_check"]),
            str(loaded["signature"]),
        )
        if manifest.member != loaded["member"]:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{path}: its manifest is damaged") from None
    return manifest


def extract_copy(path: Path, manifest: Manifest, target: Path) -> None:
    """The archive's copy, written to ``target`` (mode 0600) and flushed, once it has
    been read through and its SHA-256 found to be the manifest's: nothing of a copy that
    is not the signed one is written anywhere (``BackupError``)."""
    with tarfile.open(path, "r:") as archive:
        try:
            info = archive.getmember(manifest.member)
        except KeyError:
            raise BackupError(f"{path} holds no {manifest.member}") from None
        if not info.isreg() or info.issparse():
            raise BackupError(f"{path}: {manifest.member} is not a plain file")
        source = archive.extractfile(info)
        assert source is not None  # a regular member
        if not hmac.compare_digest(_digest(source), manifest.sha256):
            raise BackupError(f"{path}: the copy is not the one the manifest signed")
        source.seek(0)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return _digest(f)


def _digest(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := stream.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else "no message"
