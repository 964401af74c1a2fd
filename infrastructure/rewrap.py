"""Master-key rotation: every wrapped key and secret rewrapped under a new master key,
in batches, resumably (``casebook master-key rotate``).

The master key wraps each data key (a person's, a list entry's, a record's) and the
register's secrets (``infrastructure.secrets``). A rotation unwraps each with the old
master key and wraps it with the new one; the keys themselves do not change, so
nothing sealed, indexed or digested changes, and an erased key (its wrapped form gone)
stays erased: there is nothing to rewrap.

1. Under the register's write lock, the old key is checked (its check value is the
   register's, and it opens the secrets) and the new key's check value is recorded as
   ``casebook_master_check.rotating_to``. From then on no store opens (``startup``), a
   service left running writes nothing (``Store.write`` reads that row first, under the
   same lock) and opens no rewrapped key (``Keyring.load``): it answers 503.
2. The secrets, then the keys in order of their ids, ``BATCH`` at a time, each batch
   one transaction under the write lock: each key wrapped by the old master key (its
   ``wrapped_by``) is rewrapped and marked as wrapped by the new one.
3. Under the write lock, once no key is wrapped by any other master key, the check
   value becomes the new key's and ``rotating_to`` is cleared: from that commit on,
   the register opens with the new key only, and the old one is refused.

Killed anywhere, it is run again with the same two keys and goes on: every wrapped key
says which master key wraps it, so the batches done are skipped, and until step 3
commits the register knows both keys are needed. Run again after it finished, it says
so and changes nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from infrastructure import secrets, tables
from infrastructure.crypto import Keyring, wrap_aad
from infrastructure.persistence import writing

BATCH = 1000  # keys a transaction: each batch holds the write lock for a few ms
# Passes over the keys before giving up: one, unless something wrote meanwhile (a store
# opened before the rotation began, whose writes are refused: it cannot).
PASSES = 3
EVENTS = "casebook_events"  # the register's log, whose lock is its write lock (PostgreSQL)


class RotationRefused(Exception):
    """The rotation cannot be done with these keys, as the message says."""


@dataclass(frozen=True)
class Rotated:
    keys: int  # data keys rewrapped by this run
    before: int  # ... and by an earlier run that was stopped (resumed from there)
    secrets: int  # the register's secrets rewrapped by this run
    finished_before: bool = False  # the rotation had finished: nothing was done


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A transaction holding the register's write lock, as ``Store.write`` takes it:
    SQLite's ``BEGIN IMMEDIATE``, the log's table lock on PostgreSQL."""
    token = writing.set(True)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"LOCK TABLE {EVENTS} IN EXCLUSIVE MODE")
            yield conn
    finally:
        writing.reset(token)


def rotate(
    engine: Engine,
    old: Keyring,
    new: Keyring,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH,
) -> Rotated:
    """Rewrap every key and secret of the register from ``old``'s master key to
    ``new``'s; ``progress(done, total)`` after each batch (the keys rewrapped, by this
    run and any before it, of those not erased)."""
    if hmac.compare_digest(old.check_value, new.check_value):
        raise RotationRefused("the new master key is the one the register has now")
    with _locked(engine) as conn:
        if not _begin(conn, old, new):
            return Rotated(0, 0, 0, finished_before=True)
    with _locked(engine) as conn:
        rewrapped_secrets = _rewrap_secrets(conn, old, new)
    before = done = _count(engine, new.fingerprint)
    total = _count(engine, None)
    if progress is not None:
        progress(done, total)
    for _ in range(PASSES):
        last: UUID | None = None
        while True:
            with _locked(engine) as conn:
                count, last = _rewrap_batch(conn, old, new, last, batch)
            if not count:
                break
            done += count
            if progress is not None:
                progress(done, total)
        with _locked(engine) as conn:
            if _finish(conn, old, new):
                return Rotated(done - before, before, rewrapped_secrets)
    raise RotationRefused(
        "keys wrapped by the old master key keep appearing: something still writes to the "
        "register (stop the service), then run this again"
    )


def _begin(conn: Connection, old: Keyring, new: Keyring) -> bool:
    """Check the keys and record the rotation (or find it recorded by a run that was
    stopped); False when it has finished already."""
    t = tables.master_check
    row = conn.execute(select(t.c.check_value, t.c.rotating_to)).first()
    if row is None:
        raise RotationRefused("the register has never been started: it has no key to rotate")
    if row.rotating_to is None and hmac.compare_digest(row.check_value, new.check_value):
        return False
    if row.rotating_to is not None and not hmac.compare_digest(row.rotating_to, new.check_value):
        raise RotationRefused(
            "a rotation to another new master key was begun and has not finished: run it "
            "again with that key in --new-key-file to finish it first"
        )
    if not hmac.compare_digest(row.check_value, old.check_value):
        raise RotationRefused(
            "the master key given (CASEBOOK_MASTER_KEY or CASEBOOK_MASTER_KEY_FILE) is not "
            "the register's: it must stay the old key until the rotation has finished"
        )
    if row.rotating_to is None:
        secrets.load(conn, old)  # the old key opens the secrets: it is the right one
        conn.execute(update(t).values(rotating_to=new.check_value))
    return True


def _rewrap_secrets(conn: Connection, old: Keyring, new: Keyring) -> int:
    t = tables.secrets
    rows = conn.execute(select(t.c.name, t.c.wrapped).where(t.c.wrapped_by == old.fingerprint))
    changed = []
    for name, wrapped in rows:
        try:
            value = old.unwrap(secrets.aad(name), wrapped)
        except InvalidTag:
            raise RotationRefused(f"the secret {name!r} does not open with the old key") from None
        changed.append({"n": name, "w": new.wrap(secrets.aad(name), value)})
    if changed:
        statement = update(t).where(t.c.name == bindparam("n"))
        conn.execute(statement.values(wrapped=bindparam("w"), wrapped_by=new.fingerprint), changed)
    return len(changed)


def _rewrap_batch(
    conn: Connection, old: Keyring, new: Keyring, after: UUID | None, batch: int
) -> tuple[int, UUID | None]:
    """Rewrap the next ``batch`` keys wrapped by the old master key, in order of their
    ids from ``after``; how many, and the last id."""
    t = tables.person_keys
    query = (
        select(t.c.key_id, t.c.wrapped)
        .where(t.c.wrapped_by == old.fingerprint, t.c.wrapped.is_not(None))
        .order_by(t.c.key_id)
        .limit(batch)
    )
    if after is not None:
        query = query.where(t.c.key_id > after)
    rows = conn.execute(query).all()
    changed: list[dict[str, Any]] = []
    for key_id, wrapped in rows:
        try:
            data_key = old.unwrap(wrap_aad(key_id), wrapped)
        except InvalidTag:
            raise RotationRefused(
                f"the key {key_id} does not open with the old master key: the register is "
                "damaged there; nothing after it was rewrapped"
            ) from None
        changed.append({"k": key_id, "w": new.wrap(wrap_aad(key_id), data_key)})
    if changed:
        statement = update(t).where(t.c.key_id == bindparam("k"))
        conn.execute(statement.values(wrapped=bindparam("w"), wrapped_by=new.fingerprint), changed)
    return len(rows), (rows[-1].key_id if rows else after)


def _finish(conn: Connection, old: Keyring, new: Keyring) -> bool:
    """Switch the register to the new key if every key and secret is wrapped by it;
    False if some keys were still wrapped by the old one (rewrapped on another pass)."""
    _rewrap_secrets(conn, old, new)  # none left, unless the register was changed
    stray = 0
    for t in (tables.person_keys, tables.secrets):
        by = conn.execute(
            select(t.c.wrapped_by, func.count())
            .where(t.c.wrapped.is_not(None))
            .group_by(t.c.wrapped_by)
        ).all()
        if any(wrapped_by == old.fingerprint for wrapped_by, _ in by):
            return False
        stray += sum(n for wrapped_by, n in by if wrapped_by != new.fingerprint)
    if stray:
        raise RotationRefused(
            f"{stray} keys are wrapped by neither master key: the register is damaged; "
            "the rotation stays unfinished"
        )
    conn.execute(update(tables.master_check).values(check_value=new.check_value, rotating_to=None))
    return True


def _count(engine: Engine, wrapped_by: str | None) -> int:
    """The keys not erased (wrapped by ``wrapped_by``, if given)."""
    t = tables.person_keys
    query = select(func.count()).select_from(t).where(t.c.wrapped.is_not(None))
    if wrapped_by is not None:
        query = query.where(t.c.wrapped_by == wrapped_by)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
