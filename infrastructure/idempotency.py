"""Idempotent retries: what a write with an ``Idempotency-Key`` recorded, so that the
same request sent again is answered the same and writes nothing.

The record is kept in the write's own transaction (``infrastructure.store.WriteUnit``):
a write that did not commit left no record, and one that did cannot be made twice.

A record answers for ``CASEBOOK_IDEMPOTENCY_HOURS`` (24 by default) after it was made,
measured on the store's stamp (``recorded_at``, taken under the register's write lock,
which never goes backwards), not on a client's or a host's clock. After that the key is
forgotten: the write that reuses it deletes the old record, in its own transaction, and
is a new request (it writes, and its record answers the next day's retries). Nothing
depends on ``casebook prune`` having run; prune only removes what no write could still
answer from (``infrastructure.retention``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
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
    made_at: datetime,
) -> None:
    """Keep what a write with an Idempotency-Key recorded, so that a retry can answer
    the same. The ``aggregate_id`` column holds the id of whatever was written (a case, a
    negotiation or an exchange); no personal data is kept: the request's digest is keyed
    (``Keyring.digest``), so a guessed body cannot be confirmed against it. ``made_at``
    is the write's stamp, from which the record's age is counted."""
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
            created_at=made_at,
        )
    )


def remembered(
    session: Session,
    keyring: Keyring,
    api_key_id: uuid.UUID,
    idem: Idempotency | None,
    now: datetime,
    window: timedelta,
) -> Written | None:
    """The answer a write first made with this key's Idempotency-Key recorded (to be
    rendered again), or None. The same key with a different request is an error, never a
    silent replay. A record ``window`` old or older at ``now`` (the write's stamp) is
    forgotten: deleted here, in the write's transaction, so that this request is a new
    one and its own record takes the key (if the write fails, the deletion rolls back
    with it: the record stays expired, and is deleted by the next write or prune)."""
    if idem is None:
        return None
    t = tables.idempotency
    row = session.execute(
        select(t).where(t.c.api_key_id == api_key_id, t.c.idem_key == idem.key)
    ).first()
    if row is None:
        return None
    if expired(row.created_at, now, window):
        session.execute(delete(t).where(t.c.api_key_id == api_key_id, t.c.idem_key == idem.key))
        return None
    if not hmac.compare_digest(row.request_hash, keyring.digest(idem.request_hash)):
        raise IdempotencyMismatch()
    return Written(row.status_code, row.aggregate_id, row.version, replayed=True)


def expired(made_at: datetime, now: datetime, window: timedelta) -> bool:
    """Whether a record made at ``made_at`` no longer answers a retry at ``now``."""
    if made_at.tzinfo is None:  # SQLite returns naive datetimes (stored in UTC)
        made_at = made_at.replace(tzinfo=UTC)
    return made_at <= now - window
