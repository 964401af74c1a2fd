"""The summary report's counts, kept as projections, so that a summary reads rows in
proportion to its groups (and, as of a past day, to the days), not to the register.

Two tables (``tables.counts``, ``tables.count_days``), for each *viewer*, each counted
column (``DIMENSIONS``) and each value of it ("" stands for none):

- how many cases stand at the value now: each case's current, open-ended period;
- by how much that changes on each world day: +1 on a period's first day, -1 on the day
  after its last. The count as of a day is the sum of the changes up to that day.

A viewer is an organisation that may see the case (``case_access``: its owner and those
it is shared with), or ``ALL`` ("*") for those who see every case (auditors, the command
line). A case shared with a partner counts for the owner, the partner and ``ALL``.

Every write changes them in its own transaction, from the periods and the access rows it
replaces (``change``, called by ``projections``), by an upsert that adds to the counts:
writes are serialised by the register's write lock, so no two add at once. Nothing here
is personal: values are statuses, parties, nationalities and categories. ``recount``
computes them afresh from the periods and the access rows (the migration that added
them, and the views rebuild). Counts as known at a past instant are not kept: that
summary is read from the bitemporal periods, as before (``CaseReads.summary``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any
from uuid import UUID

from sqlalchemy import Table, delete, func, insert, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from domain.timeline import Period
from infrastructure import tables

DIMENSIONS = ("status", "held_by", "nationality", "category")
ALL = "*"  # the viewer who sees every case

# (viewer, dimension, value, day or None for now) -> change
Deltas = dict[tuple[str, str, str, date | None], int]


def _contributions(periods: Iterable[Period]) -> dict[tuple[str, str, date | None], int]:
    """What one case's periods add to the counts of one viewer."""
    out: dict[tuple[str, str, date | None], int] = defaultdict(int)
    for p in periods:
        for dimension in DIMENSIONS:
            value = getattr(p, dimension) or ""
            out[dimension, value, p.valid_from] += 1
            if p.valid_to is None:
                out[dimension, value, None] += 1
            else:
                out[dimension, value, p.valid_to] -= 1
    return out


def change(
    deltas: Deltas,
    viewers_before: set[str],
    periods_before: list[Period],
    viewers_after: set[str],
    periods_after: list[Period],
) -> None:
    """Add to ``deltas`` what one case's write changes: its periods and who sees it,
    before and after (a new case: no viewers and no periods before)."""
    if viewers_before == viewers_after and periods_before == periods_after:
        return
    before, after = _contributions(periods_before), _contributions(periods_after)
    both = viewers_before & viewers_after
    for viewer in viewers_before | viewers_after | {ALL}:
        if viewer in both or viewer == ALL:
            for k in before.keys() | after.keys():
                deltas[viewer, *k] += after.get(k, 0) - before.get(k, 0)
        elif viewer in viewers_before:
            for k, n in before.items():
                deltas[viewer, *k] -= n
        else:
            for k, n in after.items():
                deltas[viewer, *k] += n


def new_deltas() -> Deltas:
    return defaultdict(int)


def apply(session: Session, deltas: Mapping[tuple[str, str, str, date | None], int]) -> None:
    """Add the changes to the counts: one statement per table, however many cases."""
    now, days = [], []
    for (viewer, dimension, value, day), n in sorted(deltas.items(), key=_order):
        if n == 0:
            continue
        row = {"viewer": viewer, "dimension": dimension, "value": value}
        if day is None:
            now.append({**row, "n": n})
        else:
            days.append({**row, "day": day, "delta": n})
    dialect = session.get_bind().dialect.name
    if now:
        session.execute(_adding(dialect, tables.counts, "n"), now)
    if days:
        session.execute(_adding(dialect, tables.count_days, "delta"), days)


def _order(item: tuple[tuple[str, str, str, date | None], int]) -> tuple[Any, ...]:
    (viewer, dimension, value, day), _ = item
    return viewer, dimension, value, day or date.min


_ADDING: dict[tuple[str, str], Any] = {}


def _adding(dialect: str, table: Table, column: str) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE adding to ``column``; built once per dialect."""
    statement = _ADDING.get((dialect, table.name))
    if statement is None:
        build = postgresql.insert if dialect == "postgresql" else sqlite.insert
        ins = build(table)
        keys = [c.name for c in table.primary_key.columns]
        statement = ins.on_conflict_do_update(
            index_elements=keys, set_={column: table.c[column] + ins.excluded[column]}
        )
        _ADDING[dialect, table.name] = statement
    return statement


def viewers(session: Session, case_ids: list[UUID]) -> dict[UUID, set[str]]:
    """The organisations that may see each case, as the access rows say now."""
    t = tables.case_access
    out: dict[UUID, set[str]] = {case_id: set() for case_id in case_ids}
    for i in range(0, len(case_ids), 500):
        rows = session.execute(
            select(t.c.case_id, t.c.org).where(t.c.case_id.in_(case_ids[i : i + 500]))
        )
        for case_id, org in rows:
            out[case_id].add(org)
    return out


# ---- reading -------------------------------------------------------------------------


def groups(
    conn: Connection, viewer: str, dimension: str, as_of: date | None = None
) -> list[dict[str, Any]]:
    """The counts of one column for one viewer, now or as of a day: the values that
    count at least one case, in order, with None (no value) last."""
    rows = [(value or None, int(n)) for value, n in conn.execute(query(viewer, dimension, as_of))]
    rows.sort(key=lambda r: (r[0] is None, r[0] or ""))
    return [{"value": value, "count": n} for value, n in rows]


def query(viewer: str, dimension: str, as_of: date | None = None) -> Select[Any]:
    """The statement of ``groups``: one viewer's rows of one column, now or summed up to
    a day."""
    if as_of is None:
        t = tables.counts
        return select(t.c.value, t.c.n).where(
            t.c.viewer == viewer, t.c.dimension == dimension, t.c.n > 0
        )
    d = tables.count_days
    total = func.sum(d.c.delta)
    return (
        select(d.c.value, total)
        .where(d.c.viewer == viewer, d.c.dimension == dimension, d.c.day <= as_of)
        .group_by(d.c.value)
        .having(total > 0)
    )


# ---- counting afresh -----------------------------------------------------------------


def recount(session: Session | Connection) -> None:
    """Both tables computed afresh from the current periods and the access rows, in a
    few INSERT ... SELECT statements (no case is read into Python)."""
    session.execute(delete(tables.counts))
    session.execute(delete(tables.count_days))
    p, a = tables.case_periods, tables.case_access
    for dimension in DIMENSIONS:
        value = func.coalesce(p.c[dimension], "")
        for viewer, join in ((a.c.org, True), (literal(ALL), False)):
            source = p.join(a, a.c.case_id == p.c.case_id) if join else p
            standing = p.c.recorded_to.is_(None)
            now = (
                select(viewer, literal(dimension), value, func.count())
                .select_from(source)
                .where(standing, p.c.valid_to.is_(None))
                .group_by(viewer, value)
            )
            session.execute(
                insert(tables.counts).from_select(["viewer", "dimension", "value", "n"], now)
            )
            starts = (
                select(
                    viewer.label("viewer"),
                    value.label("value"),
                    p.c.valid_from.label("day"),
                    literal(1).label("delta"),
                )
                .select_from(source)
                .where(standing)
            )
            ends = (
                select(
                    viewer.label("viewer"),
                    value.label("value"),
                    p.c.valid_to.label("day"),
                    literal(-1).label("delta"),
                )
                .select_from(source)
                .where(standing, p.c.valid_to.is_not(None))
            )
            changes = union_all(starts, ends).subquery()
            total = func.sum(changes.c.delta)
            days = (
                select(changes.c.viewer, literal(dimension), changes.c.value, changes.c.day, total)
                .group_by(changes.c.viewer, changes.c.value, changes.c.day)
                .having(total != 0)
            )
            session.execute(
                insert(tables.count_days).from_select(
                    ["viewer", "dimension", "value", "day", "delta"], days
                )
            )
