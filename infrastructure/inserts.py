"""Many rows into one table in one statement: the views' and the chain's inserts of a
write.

SQLAlchemy turns each row of an ``executemany`` into bind parameters one by one
(``construct_params``), about ten microseconds a row in this process: a bulk opening
writes some sixteen view, key and chain rows a person, and that bookkeeping was an
eighth of its time. On SQLite, whose driver runs ``executemany`` itself in C, the rows
are handed to the driver directly: the statement is the one SQLAlchemy compiles for
``insert(table)`` with these columns, and each value goes through the column type's own
bind processor, so what is stored is exactly what ``execute(insert(table), rows)``
stores (``tests/integration/test_inserts.py`` compares them). Elsewhere (a rebuild's
connection to its shadow copies, whose table names SQLAlchemy translates as it
compiles; PostgreSQL, where SQLAlchemy batches the rows into multi-row ``VALUES``
itself; a table with a client-side default this module does not reproduce) it is that
``execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session


class Executor(Protocol):
    def execute(self, statement: Any, params: Any = None) -> Any: ...


Plan = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...]]


def insert_rows(executor: Executor, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (mappings with the same keys, as ``execute`` wants them) into
    ``table`` in the caller's transaction. Anything else with an ``execute`` (the
    rebuild's statement keeper, ``replaying._Later``) gets SQLAlchemy's insert."""
    if not rows:
        return
    conn = executor.connection() if isinstance(executor, Session) else executor
    plan = None
    if isinstance(conn, Connection) and conn.dialect.name == "sqlite" and not _translated(conn):
        plan = _plan(table, tuple(rows[0]), conn.dialect)
    if plan is None or not isinstance(conn, Connection):
        executor.execute(insert(table), list(rows))
        return
    sql, keys, processors = plan
    values = [
        tuple(r[k] if p is None else p(r[k]) for k, p in zip(keys, processors, strict=True))
        for r in rows
    ]
    conn.exec_driver_sql(sql, values)


def _translated(conn: Connection) -> bool:
    """Whether the connection's statements name other tables than they say: a views
    rebuild's (``infrastructure.shadow``) writes its copies through SQLAlchemy's
    ``schema_translate_map``, which only a compiled statement applies."""
    return bool(conn.get_execution_options().get("schema_translate_map"))


@lru_cache(maxsize=128)
def _plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> Plan | None:
    """The driver's statement for these columns, its parameters' order, and each
    one's bind processor; None when a column left out has a client-side default (which
    only SQLAlchemy's own insert applies) or the statement is not positional."""
    if any(c.default is not None or c.onupdate is not None for c in table.c if c.key not in keys):
        return None
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys))
    order = compiled.positiontup
    if not compiled.positional or order is None or sorted(order) != sorted(keys):
        return None
    processors = tuple(table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in order)
    return compiled.string, tuple(order), processors
