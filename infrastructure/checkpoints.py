"""Signed checkpoints of the hash chain: (position, head hash, time), signed Ed25519.

The installation signs with a key of its own. An auditor who keeps a checkpoint can
later prove that the chain up to its position was not rewritten, even by someone who
can write to the database and recompute every hash: they cannot sign for the
installation's key. In development mode the key is made in the data folder on first
use; in production mode the operator provides it (``CASEBOOK_SIGNING_KEY_FILE``) and
the service refuses to start without it.

A checkpoint names the key that signed it by its public key, which is part of what is
signed; its ``key_id`` (the first 16 hex digits of the key's SHA-256 fingerprint) is
printed beside it for people. The key is rotated by ``casebook signing-key rotate``
(``infrastructure.rotation``); a checkpoint is made only with the key in force, the
newest one the register announced.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection, Engine

from infrastructure import tables
from infrastructure.chain import GENESIS
from infrastructure.settings import Settings

TAG = "casebook-checkpoint-v1"
DEV_KEY_FILE = "checkpoint-signing-key.pem"


class MissingSecret(RuntimeError):
    """Production mode without an operator-provided secret."""


class StaleSigningKey(MissingSecret):
    """The key given is not the one in force: a rotation announced a newer one."""


def fingerprint(public_key: str) -> str:
    """The SHA-256 of a raw Ed25519 public key (hex), which names it in statements."""
    return hashlib.sha256(bytes.fromhex(public_key)).hexdigest()


def signature_holds(public_key: str, signature: str, message: bytes) -> bool:
    """Whether ``signature`` (hex) is the Ed25519 signature of ``message`` by
    ``public_key`` (hex of the raw key): checkpoints, backups' manifests, restores."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        key.verify(bytes.fromhex(signature), message)
    except (ValueError, InvalidSignature):
        return False
    return True


def key_id(public_key: str) -> str:
    return fingerprint(public_key)[:16]


@dataclass(frozen=True)
class Checkpoint:
    """What an auditor keeps: enough to check the signature and the chain."""

    position: int
    head: str
    made_at: str  # RFC 3339, UTC
    public_key: str  # hex of the raw Ed25519 public key
    signature: str  # hex

    def message(self) -> bytes:
        return f"{TAG}\n{self.position}\n{self.head}\n{self.made_at}\n{self.public_key}".encode()

    def signature_holds(self) -> bool:
        return signature_holds(self.public_key, self.signature, self.message())

    @property
    def key_id(self) -> str:
        try:
            return key_id(self.public_key)
        except ValueError:  # not hex: the signature cannot hold either
            return ""

    def as_dict(self) -> dict[str, Any]:
        """The signed fields, as the checkpoints table and an export keep them."""
        return asdict(self)

    def shown(self) -> dict[str, Any]:
        """What an auditor is given to keep: the signed fields, and the key's id."""
        return {**asdict(self), "key_id": self.key_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            position=int(data["position"]),
            head=str(data["head"]),
            made_at=str(data["made_at"]),
            public_key=str(data["public_key"]),
            signature=str(data["signature"]),
        )


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = self.private_key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = raw.hex()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        path = settings.signing_key_file
        if path is None:
            if settings.mode == "production":
                raise MissingSecret(
                    "production mode needs CASEBOOK_SIGNING_KEY_FILE: a PEM Ed25519 private key"
                )
            path = settings.data_dir / DEV_KEY_FILE
            if not path.exists():
                write_new_key(path)
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        """The key in a PEM file (an Ed25519 private key), or ``MissingSecret``."""
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as e:
            problem = f"{path}: not a readable PEM private key ({type(e).__name__})"
            raise MissingSecret(problem) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise MissingSecret(f"{path} is not an Ed25519 private key")
        return cls(key)

    @staticmethod
    def installed_public_key(settings: Settings) -> str | None:
        """The installation's public key, if its key file exists (never makes one): what
        a verifier on this machine trusts checkpoints from."""
        path = settings.signing_key_file or settings.data_dir / DEV_KEY_FILE
        if not Path(path).exists():
            return None
        return Signer.from_settings(settings).public_key

    def sign_bytes(self, message: bytes) -> bytes:
        """A signature of ``message`` (a restore statement, ``infrastructure.restore``)."""
        return self._key.sign(message)

    def sign(self, position: int, head: str) -> Checkpoint:
        made_at = datetime.now(UTC).isoformat()
        unsigned = Checkpoint(position, head, made_at, self.public_key, "")
        signature = self._key.sign(unsigned.message()).hex()
        return Checkpoint(position, head, made_at, self.public_key, signature)


def write_new_key(path: Path) -> bool:
    """Make a new key in a new file (mode 0600, synced to disk); False, and the file
    left as it is, if it exists already (another process made it first: use theirs)."""
    return write_key(path, Ed25519PrivateKey.generate())


def write_key(path: Path, key: Ed25519PrivateKey) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return True


def make(engine: Engine, signer: Signer) -> Checkpoint:
    """Sign the chain's committed head and keep the checkpoint in the register too.

    Only with the key in force: the head and the newest announced key are read by one
    statement, so from one snapshot. A rotation holds the write lock from reading the
    head it announces at to its commit, so a head read without seeing the rotation is
    at or before that position, where the outgoing key still signs; a head past it is
    read with the rotation, and the outgoing key is refused."""
    h, k = tables.register_head, tables.signing_keys
    newest = select(k.c.public_key).order_by(k.c.sequence.desc()).limit(1).scalar_subquery()
    with engine.begin() as conn:
        head = conn.execute(select(h.c.chain_position, h.c.chain_hash, newest)).one()
        in_force = head[2]
        if in_force is not None and in_force != signer.public_key:
            raise StaleSigningKey(
                f"the signing key given (key id {signer.key_id}) is not the one in force "
                f"(key id {key_id(in_force)}): point CASEBOOK_SIGNING_KEY_FILE at the key "
                "`casebook signing-key rotate` announced and restart (in development, "
                "run `casebook signing-key rotate` again to finish an interrupted rotation)"
            )
        checkpoint = signer.sign(head.chain_position, head.chain_hash)
        conn.execute(insert(tables.checkpoints).values(**checkpoint.as_dict()))
    return checkpoint


def listed(
    conn: Connection, limit: int | None = None, before: int | None = None
) -> list[tuple[int, Checkpoint]]:
    """Stored checkpoints with their row ids, newest first."""
    c = tables.checkpoints
    query = select(c).order_by(c.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    if before is not None:
        query = query.where(c.c.id < before)
    return [
        (r.id, Checkpoint(r.position, r.head, r.made_at, r.public_key, r.signature))
        for r in conn.execute(query)
    ]


def hash_at(conn: Connection, position: int) -> str | None:
    """The chain's hash at a position (the genesis hash at 0), None past its end: what a
    checkpoint or a key's announcement signed there is compared with."""
    if position == 0:
        return GENESIS
    c = tables.chain
    found: str | None = conn.execute(select(c.c.hash).where(c.c.position == position)).scalar()
    return found
