"""Idempotent retries: what a write with an ``Idempotency-Key`` recorded, so that the
same request sent again is answered the same and writes nothing.

The record is kept in the write's own transaction (``infrastructure.store.WriteUnit``):
a write that did not commit left no record, and one that did cannot be made twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from domain.ports import Written
from infrastructure import tables
from infrastructure.crypto import Keyring


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before with a different request."""


@dataclass(frozen=True)
class Idempotency:
    """A request's idempotency key, and the digest of what it asks."""

    key: str
    request_hash: str


def request_hash(*parts: Any) -> str:
    data = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def remember(
    session: Session,
    keyring: Keyring,
    api_key_id: uuid.UUID,
    idem: Idempotency | None,
    written: Written,
) -> None:
    """Keep what a write with an Idempotency-Key recorded, so that a retry can answer
    the same. The ``aggregate_id`` column holds the id of whatever was written (a case, a
    negotiation or an exchange); no personal data is kept: the request's digest is keyed
    (``Keyring.digest``), so a guessed body cannot be confirmed against it."""
    if idem is None:
        return
    session.execute(
        insert(tables.idempotency).values(
            api_key_id=api_key_id,
            idem_key=idem.key,
            request_hash=keyring.digest(idem.request_hash),
            status_code=written.status_code,
            aggregate_id=written.id,
            version=written.version,
            created_at=datetime.now(UTC),
        )
    )


def remembered(
    session: Session, keyring: Keyring, api_key_id: uuid.UUID, idem: Idempotency | None
) -> Written | None:
    """The answer a write first made with this key's Idempotency-Key recorded (to be
    rendered again), or None. The same key with a different request is an error, never a
    silent replay."""
    if idem is None:
        return None
    t = tables.idempotency
    row = session.execute(
        select(t).where(t.c.api_key_id == api_key_id, t.c.idem_key == idem.key)
    ).first()
    if row is None:
        return None
    if not hmac.compare_digest(row.request_hash, keyring.digest(idem.request_hash)):
        raise IdempotencyMismatch()
    return Written(row.status_code, row.aggregate_id, row.version, replayed=True)
