"""What a store checks and writes once when it opens a register: the head row, the
master key's check value and the register's secrets, and the access rows of cases
recorded before organisations were enforced. Each is read first and written only when
missing, so that a read-only store (a replica, a copy being verified) opens without
writing."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine

from infrastructure import secrets, tables
from infrastructure.crypto import Keyring, MissingMasterKey


def prepare(engine: Engine, keyring: Keyring, current: bool = True) -> None:
    """The head row, the master key's check value (and, on a new register, its
    secrets) and the access rows, each written only when missing, so that a read-only
    store (a replica, a copy being verified) opens without writing. ``current``: the
    register is at this code's schema (a verifier may open an older one, which has
    neither secrets nor rotations)."""
    with engine.connect() as conn:
        has_head = conn.execute(select(tables.register_head.c.id)).first() is not None
    if not has_head:
        try:
            with engine.begin() as conn:
                conn.execute(insert(tables.register_head).values(id=1, position=0))
        except sqlalchemy.exc.IntegrityError:
            pass  # another process starting at the same time made it
    _check_master_key(engine, keyring, current)
    _backfill_access(engine)


UNFINISHED = (
    "a master-key rotation was begun and has not finished: run `casebook master-key rotate "
    "--new-key-file FILE` again with the same two keys (the old one as the master key, "
    "the new one in FILE) to finish it; nothing starts until then"
)


def _check_master_key(engine: Engine, keyring: Keyring, current: bool) -> None:
    """Refuse a master key other than the one this register's keys are wrapped with,
    and any start while a rotation is unfinished; open the register's secrets. The
    first start records which master key it is and makes the secrets, together."""
    t = tables.master_check
    columns = [t.c.check_value, t.c.rotating_to] if current else [t.c.check_value]
    with engine.connect() as conn:
        found = conn.execute(select(*columns)).first()
    if found is None:
        try:
            with engine.begin() as conn:
                conn.execute(insert(t).values(id=1, check_value=keyring.check_value))
                if current:
                    made = secrets.rows(keyring, secrets.new(), datetime.now(UTC))
                    conn.execute(insert(tables.secrets), made)
        except sqlalchemy.exc.IntegrityError:
            pass  # another process starting at the same time recorded them
        with engine.connect() as conn:
            found = conn.execute(select(*columns)).one()
    if current and found.rotating_to is not None:
        raise MissingMasterKey(UNFINISHED)
    if not hmac.compare_digest(found.check_value, keyring.check_value):
        raise MissingMasterKey(secrets.NOT_THIS_KEY)
    if current:
        with engine.connect() as conn:
            secrets.load(conn, keyring)


def master_key_opens(conn: Connection, keyring: Keyring) -> bool:
    """Whether the register's recorded check value is this master key's, and no
    rotation is under way (``GET /ready`` asks again while serving: either can change
    under a running service, and then every write is refused)."""
    t = tables.master_check
    found = conn.execute(select(t.c.check_value, t.c.rotating_to)).first()
    if found is None or found.rotating_to is not None:
        return False
    return hmac.compare_digest(found.check_value, keyring.check_value)


def _backfill_access(engine: Engine) -> None:
    """Cases recorded before organisations were enforced have no access rows: give
    each its owner's (shares did not exist then). A no-op once done."""
    v, a = tables.case_views, tables.case_access
    missing = select(v.c.case_id, v.c.org, text("'owner'")).where(
        ~select(a.c.case_id).where(a.c.case_id == v.c.case_id).exists()
    )
    with engine.connect() as conn:  # read first: a read-only store opens too
        if conn.execute(missing.limit(1)).first() is None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(insert(a).from_select(["case_id", "org", "via"], missing))
    except sqlalchemy.exc.IntegrityError:
        pass  # another process starting at the same time did it
