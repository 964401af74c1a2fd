"""API keys: 256 random bits, shown once, stored only as a SHA-256 hash.

A key is looked up by its hash; the service remembers the keys it found valid
(``api.auth.KeyCheck``) but reads the count of revoked keys before every request and
forgets them all when it changed, so revocation takes effect on the next request, and
expiry is checked on every use. A revoked key's name is never given to another key:
names identify who recorded what in every case's history.

SHA-256 without salt is the right hash here: keys are random and long, so there is
nothing to brute-force, and an index on the hash finds a key in one lookup; the final
comparison is constant-time all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from infrastructure import tables
from infrastructure.persistence import writing

ROLES = ("case_worker", "auditor", "admin")
PREFIX = "cbk_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


class KeyError_(ValueError):
    """A key command that cannot be carried out, with a reason for the operator."""


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    name: str
    role: str
    org: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_valid(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or _aware(self.expires_at) > now


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


REVOCATIONS = f"SELECT count(*) FROM {tables.api_keys.name} WHERE revoked_at IS NOT NULL"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _row_to_key(row: object) -> ApiKey:
    return ApiKey(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        role=row.role,  # type: ignore[attr-defined]
        org=row.org,  # type: ignore[attr-defined]
        created_at=_aware(row.created_at),  # type: ignore[attr-defined]
        expires_at=row.expires_at and _aware(row.expires_at),  # type: ignore[attr-defined]
        revoked_at=row.revoked_at and _aware(row.revoked_at),  # type: ignore[attr-defined]
    )


@contextmanager
def _writing() -> Iterator[None]:
    """Key changes take the write lock up front (BEGIN IMMEDIATE on SQLite), so a
    concurrent write of the service makes them wait rather than fail."""
    token = writing.set(True)
    try:
        yield
    finally:
        writing.reset(token)


class KeyStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(
        self, name: str, role: str, org: str, expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """Make a key; return it and its secret, which is never stored or shown again."""
        if role not in ROLES:
            raise KeyError_(f"role must be one of {', '.join(ROLES)}")
        if not _NAME.match(name) or not _NAME.match(org):
            raise KeyError_("name and org: letters, digits and . _ - @, at most 100")
        secret = PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(uuid.uuid4(), name, role, org, datetime.now(UTC), expires_at)
        t = tables.api_keys
        with _writing(), self.engine.begin() as conn:
            if conn.execute(select(t.c.id).where(t.c.name == name)).first() is not None:
                raise KeyError_(f"a key named {name!r} already exists")
            conn.execute(
                insert(t).values(
                    id=key.id,
                    name=name,
                    role=role,
                    org=org,
                    key_hash=hash_key(secret),
                    created_at=key.created_at,
                    expires_at=expires_at,
                )
            )
        return key, secret

    def list(self) -> list[ApiKey]:
        t = tables.api_keys
        with self.engine.connect() as conn:
            return [_row_to_key(r) for r in conn.execute(select(t).order_by(t.c.created_at))]

    def revoke(self, name: str) -> ApiKey:
        t = tables.api_keys
        with _writing(), self.engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.name == name, t.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            if result.rowcount == 0:
                raise KeyError_(f"no active key named {name!r}")
            return _row_to_key(conn.execute(select(t).where(t.c.name == name)).one())

    def revocations(self) -> int:
        """How many keys were ever revoked: when it changes, keys remembered as valid
        must be looked up again (``api.auth.KeyCheck``)."""
        # Read before every request: through the driver on a pooled connection, which
        # costs a tenth of a SQLAlchemy Connection and statement (same answer).
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(REVOCATIONS)
            (count,) = cursor.fetchone()  # type: ignore[misc]
            cursor.close()
            return int(count)
        except Exception as e:
            # What SQLAlchemy does for its own statements: a connection the server
            # dropped is thrown away, not handed back to the pool to fail its reset.
            if self.engine.dialect.is_disconnect(e, raw.dbapi_connection, None):  # type: ignore[arg-type]
                raw.invalidate(e)
            raise
        finally:
            raw.close()  # back to the pool, which ends the read (its reset on return)

    def authenticate(self, secret: str) -> ApiKey | None:
        """The valid key with this secret, or None (unknown, revoked or expired)."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        digest = hash_key(secret)
        t = tables.api_keys
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.key_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        key = _row_to_key(row)
        return key if key.is_valid(datetime.now(UTC)) else None
