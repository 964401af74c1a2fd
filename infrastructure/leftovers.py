"""What a views rebuild may leave behind (``infrastructure.shadow``: a copy being filled
when it was killed, the tables a swap replaced when their drop was cut short), as an
erasure must reach it."""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy import Column, MetaData, Table, Uuid
from sqlalchemy.engine import Connection

from infrastructure import tables
from infrastructure.shadow import RETIRED, RETIRED_SUFFIX, SCHEMA, SHADOW_SUFFIX


def forget_names(conn: Connection, case_ids: list[Any]) -> None:
    """An erasure, in its transaction: the people's rows gone from every copy of the
    name index that a rebuild left (a copy being filled, or one stopped by a kill and
    not resumed; the replaced table of a swap whose drop was cut short). The live index
    loses them by the erasure's own projection, and a rebuild's catch-up would too, but
    a copy left behind would keep, in keyed hashes, what their names were. The views'
    copies keep their rows (sealed with the key the erasure destroys: unreadable), so
    that a resumed rebuild's catch-up finds them to update."""
    name = tables.case_name_keys.name
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            (name + SHADOW_SUFFIX, name + RETIRED_SUFFIX),
        ).scalars()
        copies = [(copy, None) for copy in found]
    else:
        found = conn.exec_driver_sql(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = %(name)s AND table_schema IN (%(shadow)s, %(retired)s)",
            {"name": name, "shadow": SCHEMA, "retired": RETIRED},
        ).scalars()
        copies = [(name, schema) for schema in found]
    for copy, schema in copies:
        t = Table(copy, MetaData(), Column("case_id", Uuid), schema=schema)
        conn.execute(sqlalchemy.delete(t).where(t.c.case_id.in_(case_ids)))
