"""On SQLite a write's view, key and chain rows go to the driver directly
(``infrastructure.inserts``): they must be stored exactly as SQLAlchemy's own insert
stores them, value for value and type for type, or readers would miss them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy
from sqlalchemy import insert, select

from infrastructure import tables
from infrastructure.inserts import _plan, insert_rows
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.integration.test_bulk import CAPTURED, HELD, person

WRITTEN = (
    tables.case_views,
    tables.case_access,
    tables.case_name_keys,
    tables.case_periods,
    tables.chain,
    tables.person_keys,
)


def _dump(path: Path, table: sqlalchemy.Table) -> list[tuple[object, ...]]:
    """Every row as SQLite holds it: each value with its storage class."""
    con = sqlite3.connect(path)
    columns = ", ".join(f"{c.name}, typeof({c.name})" for c in table.c)
    rows = sorted(con.execute(f"SELECT {columns} FROM {table.name}"), key=repr)
    con.close()
    return rows


def test_rows_handed_to_the_driver_are_stored_as_sqlalchemy_stores_them(
    sqlite_settings: Settings, tmp_path: Path
):
    store = Store(sqlite_settings)
    try:
        worker = KeyStore(store.engine).create("worker", "case_worker", "org-a")[0]
        store.register.open_cases([person(i, CAPTURED, HELD) for i in range(12)], worker)
        with store.engine.connect() as conn:
            written = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in WRITTEN}
    finally:
        store.close()
    assert all(written.values()), {name: len(rows) for name, rows in written.items()}

    copies = {}
    for how in ("sqlalchemy", "driver"):
        path = tmp_path / f"{how}.sqlite"
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        tables.metadata.create_all(engine, tables=list(WRITTEN))
        with engine.begin() as conn:
            for t in WRITTEN:
                if how == "driver":
                    assert _plan(t, tuple(written[t.name][0]), conn.dialect) is not None
                    insert_rows(conn, t, written[t.name])
                else:
                    conn.execute(insert(t), written[t.name])
        engine.dispose()
        copies[how] = {t.name: _dump(path, t) for t in WRITTEN}
    assert copies["driver"] == copies["sqlalchemy"]
    assert all(len(copies["driver"][t.name]) == len(written[t.name]) for t in WRITTEN)
