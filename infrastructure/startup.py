"""What a store checks and writes once when it opens a register: the head row, the
master key's check value, and the access rows of cases recorded before organisations
were enforced. Each is read first and written only when missing, so that a read-only
store (a replica, a copy being verified) opens without writing."""

from __future__ import annotations

import hmac

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine

from infrastructure import tables
from infrastructure.crypto import Keyring, MissingMasterKey


def prepare(engine: Engine, keyring: Keyring) -> None:
    """The head row, the master key's check value and the access rows, each
    written only when missing, so that a read-only store (a replica, a copy being
    verified) opens without writing."""
    with engine.connect() as conn:
        has_head = conn.execute(select(tables.register_head.c.id)).first() is not None
    if not has_head:
        try:
            with engine.begin() as conn:
                conn.execute(insert(tables.register_head).values(id=1, position=0))
        except sqlalchemy.exc.IntegrityError:
            pass  # another process starting at the same time made it
    _check_master_key(engine, keyring)
    _backfill_access(engine)


def _check_master_key(engine: Engine, keyring: Keyring) -> None:
    """Refuse a master key other than the one this register's keys are wrapped
    with; the first start records which one that is."""
    t, value = tables.master_check, keyring.check_value
    with engine.connect() as conn:
        recorded = conn.execute(select(t.c.check_value)).scalar()
    if recorded is None:
        try:
            with engine.begin() as conn:
                conn.execute(insert(t).values(id=1, check_value=value))
        except sqlalchemy.exc.IntegrityError:
            pass  # another process starting at the same time recorded it
        with engine.connect() as conn:
            recorded = conn.execute(select(t.c.check_value)).scalar_one()
    if not hmac.compare_digest(recorded, value):
        raise MissingMasterKey(WRONG_MASTER_KEY)


WRONG_MASTER_KEY = "this is not the master key the register's data keys are wrapped with"


def master_key_opens(conn: Connection, keyring: Keyring) -> bool:
    """Whether the register's recorded check value is this master key's (``GET /ready``
    asks again while serving: the check value can change under a running service)."""
    recorded = conn.execute(select(tables.master_check.c.check_value)).scalar()
    return recorded is not None and hmac.compare_digest(recorded, keyring.check_value)


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
