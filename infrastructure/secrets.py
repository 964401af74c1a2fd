"""The register's own secrets: the name index's key and the request digests' key.

Both must keep their values for as long as the register lives: the name index holds
keyed hashes made with the one (a search looks up the hashes of what it is asked for),
the idempotency records keyed digests made with the other (a retry is compared with its
first request). Until schema 0006 they were derived from the master key, so a new
master key would have changed them and broken both; now each is 256 random bits, kept
in ``casebook_secrets`` wrapped by the master key (AES-256-GCM, bound to its name) like
the people's keys, and a master-key rotation rewraps them without changing them.

A new register makes them on its first start, in the transaction that records the
master key's check value (``infrastructure.startup``). For a register made before 0006,
the migration stores the values that code derived (``derived``): nothing indexed or
digested changes.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.engine import Connection

from infrastructure import tables
from infrastructure.crypto import Keyring, MissingMasterKey

NAME_INDEX = "name index"
REQUEST_DIGEST = "request digest"
NAMES = (NAME_INDEX, REQUEST_DIGEST)

NOT_THIS_KEY = "this is not the master key the register's data keys are wrapped with"


def aad(name: str) -> bytes:
    """What a secret's wrapped form is bound to: a wrapped secret moved to the row of
    another does not open."""
    return b"casebook secret:" + name.encode()


def new() -> dict[str, bytes]:
    """A new register's secrets: 256 random bits each."""
    return {name: os.urandom(32) for name in NAMES}


def derived(master: bytes) -> dict[str, bytes]:
    """The values the code before schema 0006 derived from the master key (HKDF-SHA-256,
    no salt, one info string per use), which a register made by it has in its name
    index and idempotency records. A copy of that derivation, kept for migration 0006:
    nothing else may use it."""
    infos = {NAME_INDEX: b"casebook name index", REQUEST_DIGEST: b"casebook request digest"}
    return {
        name: HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)
        for name, info in infos.items()
    }


def rows(keyring: Keyring, values: dict[str, bytes], at: datetime) -> list[dict[str, Any]]:
    """The secrets' rows, wrapped by ``keyring``'s master key."""
    return [
        {
            "name": name,
            "wrapped": keyring.wrap(aad(name), value),
            "wrapped_by": keyring.fingerprint,
            "created_at": at,
        }
        for name, value in values.items()
    ]


def load(conn: Connection, keyring: Keyring) -> None:
    """Open the register's secrets with ``keyring``'s master key and give them to it;
    ``MissingMasterKey`` if it is not the key that wraps them."""
    t, found = tables.secrets, {}
    for name, wrapped, wrapped_by in conn.execute(select(t.c.name, t.c.wrapped, t.c.wrapped_by)):
        if wrapped_by != keyring.fingerprint:
            raise MissingMasterKey(NOT_THIS_KEY)
        try:
            found[name] = keyring.unwrap(aad(name), wrapped)
        except InvalidTag:
            raise MissingMasterKey(NOT_THIS_KEY) from None
    missing = sorted(set(NAMES) - found.keys())
    if missing:
        raise MissingMasterKey(
            f"the register's secrets ({', '.join(missing)}) are missing: the register is "
            "damaged; restore it from a backup"
        )
    keyring.use_secrets(found[NAME_INDEX], found[REQUEST_DIGEST])
