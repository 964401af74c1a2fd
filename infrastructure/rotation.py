"""Rotating the checkpoint-signing key, and the register's history of keys.

A rotation is a file written before one transaction, in this order, so that a kill
at any point leaves exactly one key in force:

1. The new key is in a file before anything is recorded. In development (the key in
   the data folder) it is made as ``checkpoint-signing-key.next-<key id>.pem`` (synced,
   mode 0600; named after the key, so that two rotations at once cannot overwrite each
   other's); in production the operator gives it (``--new-key-file``) and it is only
   read.
2. One transaction, under the register's write lock (so the head cannot move between
   the position it announces and its commit; see ``checkpoints.make``): it checks that
   the outgoing key is the one in force, reads the head and records the statement
   announcing the new key, signed by both (``infrastructure.signing``). Killed before
   the commit, nothing in the register changed and the outgoing key stays in force; the
   ``next-`` file is a key no statement names, which can never sign anything a verifier
   accepts (a refused rotation deletes its own; one left by a kill may be deleted).
3. In development, the ``next-`` file then replaces the data folder's key (one rename;
   the retired private key is gone with it: its public key is in the statement, which
   is all a verifier needs). Killed between 2 and 3, the register names the new key and
   the folder holds the old one: the service refuses to start with it, and running
   ``casebook signing-key rotate`` again does step 3 only.

In production the operator then points ``CASEBOOK_SIGNING_KEY_FILE`` at the new file
and restarts the service; a service still running with the outgoing key is refused
every checkpoint until then (``checkpoints.make``), and a service started with any key
but the one in force refuses to start (``require_current``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine

from infrastructure import checkpoints, tables
from infrastructure.checkpoints import DEV_KEY_FILE, Signer, StaleSigningKey, key_id
from infrastructure.faults import classify
from infrastructure.persistence import writing
from infrastructure.settings import Settings
from infrastructure.signing import Announcement, Stored

if TYPE_CHECKING:  # the store imports what imports this module (exports)
    from infrastructure.store import Store


class RotationRefused(Exception):
    """The rotation cannot be made as asked; nothing was recorded."""


def stored(conn: Connection) -> list[Stored]:
    """The announcements, in order (none in a register from before migration 0005,
    which an auditor may verify before it is upgraded)."""
    if not sqlalchemy.inspect(conn).has_table(tables.signing_keys.name):
        return []
    k = tables.signing_keys
    rows = conn.execute(
        select(
            k.c.position, k.c.statement, k.c.outgoing_signature, k.c.incoming_signature
        ).order_by(k.c.sequence)
    ).all()
    return [Stored(*row) for row in rows]


def in_force(conn: Connection) -> str | None:
    """The newest announced key (None: never rotated, the first key is in force)."""
    k = tables.signing_keys
    found: str | None = conn.execute(
        select(k.c.public_key).order_by(k.c.sequence.desc()).limit(1)
    ).scalar()
    return found


def require_current(engine: Engine, signer: Signer) -> None:
    """Refuse (``StaleSigningKey``) a key that is not the newest announced one."""
    with engine.connect() as conn:
        newest = in_force(conn)
    if newest is not None and newest != signer.public_key:
        raise StaleSigningKey(
            f"the signing key in CASEBOOK_SIGNING_KEY_FILE (key id {signer.key_id}) is not the "
            f"one in force (key id {key_id(newest)}): point it at the key that "
            "`casebook signing-key rotate` announced (in development, run that command "
            "again to finish a rotation that was interrupted)"
        )


def rotate(store: Store, outgoing: Signer, incoming: Signer) -> Announcement:
    """Step 2: announce ``incoming`` in one transaction under the write lock."""
    token = writing.set(True)  # SQLite: BEGIN IMMEDIATE, the register's write lock
    try:
        with store.engine.begin() as conn:
            if store.dialect == "postgresql":  # the lock every write takes first
                conn.exec_driver_sql(f"LOCK TABLE {store.events_table.name} IN EXCLUSIVE MODE")
            announcement = _announcement(conn, outgoing, incoming)
            _record(conn, announcement)
    except RotationRefused:
        raise
    except Exception as e:
        fault = classify(e)
        if fault is not None and fault is not e:
            raise fault from e
        raise
    finally:
        writing.reset(token)
    return announcement


def _announcement(conn: Connection, outgoing: Signer, incoming: Signer) -> Announcement:
    rows = stored(conn)
    current = in_force(conn) or _first_key(conn, outgoing)
    if outgoing.public_key != current:
        raise RotationRefused(
            f"the signing key given (key id {outgoing.key_id}) is not the one in force "
            f"(key id {key_id(current)}): only the key in force can announce the next"
        )
    k = tables.signing_keys
    used = set(conn.execute(select(k.c.public_key)).scalars()) | {current}
    used |= set(conn.execute(select(k.c.previous_public_key)).scalars())
    if incoming.public_key in used:
        raise RotationRefused(
            f"the new key (key id {incoming.key_id}) signed for this register before: "
            "give a key never used"
        )
    h = tables.register_head
    head = conn.execute(select(h.c.chain_position, h.c.chain_hash)).one()
    now = datetime.now(UTC).isoformat()
    return Announcement.make(
        len(rows) + 1, outgoing, incoming, head.chain_position, head.chain_hash, now
    )


def _first_key(conn: Connection, outgoing: Signer) -> str:
    """A register never rotated: its key is the one its checkpoints were signed with
    (the newest), or, with no checkpoint yet, the one given."""
    newest = checkpoints.listed(conn, 1)
    return newest[0][1].public_key if newest else outgoing.public_key


def _record(conn: Connection, announcement: Announcement) -> None:
    conn.execute(
        insert(tables.signing_keys).values(
            sequence=announcement.sequence,
            public_key=announcement.public_key,
            previous_public_key=announcement.previous_public_key,
            position=announcement.position,
            **announcement.as_dict(),
        )
    )


# Development: the key in the data folder.


def dev_key(settings: Settings) -> Path:
    return settings.data_dir / DEV_KEY_FILE


def next_key(settings: Settings, public_key: str) -> Path:
    """Where a rotation in development writes the new key first."""
    return settings.data_dir / f"checkpoint-signing-key.next-{key_id(public_key)}.pem"


def make_next_key(settings: Settings) -> Signer:
    """Step 1 in development: a new key in its own ``next-`` file."""
    made = Signer(Ed25519PrivateKey.generate())
    path = next_key(settings, made.public_key)
    checkpoints.write_key(path, made.private_key)
    _sync_folder(path.parent)
    return made


def install_next_key(settings: Settings, signer: Signer) -> None:
    """Step 3 in development: the announced key becomes the data folder's key."""
    os.replace(next_key(settings, signer.public_key), dev_key(settings))
    _sync_folder(settings.data_dir)


def interrupted(settings: Settings, conn: Connection) -> Signer | None:
    """The key in force, when a rotation announced it but step 3 did not happen."""
    newest = in_force(conn)
    if newest is None or not next_key(settings, newest).exists():
        return None
    return Signer.from_file(next_key(settings, newest))


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The history, as the register lists it (``GET /audit/keys``, ``signing-key list``).


def listing(conn: Connection, first_key: str | None) -> list[dict[str, Any]]:
    """Every key in order: public key, fingerprint, its span of positions, the first
    and last positions it signed checkpoints for, and the statement that announced it
    (none for the first key). ``first_key``: the key of a register never rotated (the
    installation's); a rotated register's first key is named by its first statement.
    This is what the register holds, unchecked: ``signing.check`` is the check."""
    k, c = tables.signing_keys, tables.checkpoints
    rows = conn.execute(select(k).order_by(k.c.sequence)).all()
    signed = {
        r.public_key: (r.first, r.last)
        for r in conn.execute(
            select(
                c.c.public_key,
                func.min(c.c.position).label("first"),
                func.max(c.c.position).label("last"),
            ).group_by(c.c.public_key)
        )
    }
    keys: list[tuple[str, int, Any]] = []
    if rows:
        keys.append((rows[0].previous_public_key, 0, None))
    elif first_key is not None:
        keys.append((first_key, 0, None))
    keys += [(r.public_key, r.position, r) for r in rows]
    out = []
    for n, (public_key, start, row) in enumerate(keys):
        end = keys[n + 1][1] if n + 1 < len(keys) else None
        first, last = signed.get(public_key, (None, None))
        statement = None
        if row is not None:
            statement = {
                "statement": row.statement,
                "outgoing_signature": row.outgoing_signature,
                "incoming_signature": row.incoming_signature,
            }
        out.append(
            {
                "sequence": n,
                "public_key": public_key,
                "fingerprint": checkpoints.fingerprint(public_key),
                "key_id": key_id(public_key),
                "in_force_from": start,
                "in_force_until": end,
                "current": end is None,
                "first_checkpoint": first,
                "last_checkpoint": last,
                "announcement": statement,
            }
        )
    return out
