"""Signed checkpoints of the hash chain: (position, head hash, time), signed Ed25519.

The installation signs with a key of its own. An auditor who keeps a checkpoint can
later prove that the chain up to its position was not rewritten, even by someone who
can write to the database and recompute every hash: they cannot sign for the
installation's key. In development mode the key is made in the data folder on first
use; in production mode the operator provides it (``CASEBOOK_SIGNING_KEY_FILE``) and
the service refuses to start without it.
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
from infrastructure.settings import Settings

TAG = "casebook-checkpoint-v1"
DEV_KEY_FILE = "checkpoint-signing-key.pem"


class MissingSecret(RuntimeError):
    """Production mode without an operator-provided secret."""


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
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))
            key.verify(bytes.fromhex(self.signature), self.message())
        except (ValueError, InvalidSignature):
            return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

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
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = raw.hex()
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

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
                _write_new_key(path)
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
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


def _write_new_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first: use theirs
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def make(engine: Engine, signer: Signer) -> Checkpoint:
    """Sign the chain's committed head and keep the checkpoint in the register too."""
    with engine.begin() as conn:
        head = conn.execute(
            select(tables.register_head.c.chain_position, tables.register_head.c.chain_hash)
        ).one()
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


def problem_with(conn: Connection, checkpoint: Checkpoint, public_key: str) -> str | None:
    """Why the chain does not agree with a checkpoint signed by ``public_key``, or None."""
    if checkpoint.public_key != public_key:
        return "the checkpoint was signed with another key than this installation's"
    if not checkpoint.signature_holds():
        return "the checkpoint's signature does not hold"
    if checkpoint.position == 0:
        return None
    c = tables.chain
    found = conn.execute(select(c.c.hash).where(c.c.position == checkpoint.position)).scalar()
    if found is None:
        return f"the chain is shorter than the checkpoint at position {checkpoint.position}"
    if found != checkpoint.head:
        return (
            f"the chain was rewritten at or before position {checkpoint.position}: "
            "its hash there is not the one signed in the checkpoint"
        )
    return None
