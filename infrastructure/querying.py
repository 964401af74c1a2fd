"""What the read side's queries share: a point on both time axes, and page cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from domain.ports import Caller
from infrastructure import access, tables

CHUNK = 500  # ids per IN (...): well under every database's limit on parameters


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class When:
    """A point on both time axes: the world as of a day, as known at an instant."""

    as_of: date | None = None
    known_at: datetime | None = None

    def conditions(self) -> list[Any]:
        """The case periods (``tables.case_periods``) standing at this point."""
        p = tables.case_periods
        known: ColumnElement[bool]
        valid: ColumnElement[bool]
        if self.known_at is None:
            known = p.c.recorded_to.is_(None)
        else:
            known = and_(
                p.c.recorded_from <= self.known_at,
                or_(p.c.recorded_to.is_(None), p.c.recorded_to > self.known_at),
            )
        if self.as_of is None:
            valid = p.c.valid_to.is_(None)
        else:
            valid = and_(
                p.c.valid_from <= self.as_of,
                or_(p.c.valid_to.is_(None), p.c.valid_to > self.as_of),
            )
        return [known, valid]

    def as_dict(self) -> dict[str, str | None]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "known_at": self.known_at.isoformat() if self.known_at else None,
        }


def handover_conditions(when: When | None) -> list[ColumnElement[bool]]:
    """The standing handover rows at a point on both time axes (None: now)."""
    t = tables.handovers
    conditions: list[ColumnElement[bool]]
    if when is None or when.known_at is None:
        conditions = [t.c.recorded_to.is_(None)]
    else:
        conditions = [
            t.c.recorded_from <= when.known_at,
            or_(t.c.recorded_to.is_(None), t.c.recorded_to > when.known_at),
        ]
    if when is not None and when.as_of is not None:
        conditions.append(t.c.occurred_on <= when.as_of)
    return conditions


def encode_cursor(kind: str, value: int) -> str:
    raw = json.dumps({kind: value}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str) -> int:
    if cursor is None:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))[kind]
        if type(value) is not int or not 0 <= value < 2**62:
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError):
        raise BadCursor("the cursor is not one this list gave out") from None


def next_cursor(kind: str, rows: Sequence[Any], limit: int, position: int = 0) -> str | None:
    """The cursor after a page of ``limit`` rows read as ``limit + 1`` (the extra row
    says there is more), from the last shown row's ``position`` column."""
    return encode_cursor(kind, rows[limit - 1][position]) if len(rows) > limit else None


def org_page(
    conn: Connection,
    table: Table,
    key: Caller | None,
    limit: int,
    cursor: str | None,
    *conditions: ColumnElement[bool],
) -> tuple[list[Any], str | None]:
    """A page of negotiations or exchanges in the order they were recorded: their ids
    (the table's primary key), of the caller's organisation only (auditors: all), and
    the cursor after the page."""
    [id_column] = table.primary_key.columns
    query = select(id_column, table.c.seq).where(table.c.seq > decode_cursor(cursor, "s"))
    org = access.org_filter(key)
    if org is not None:
        query = query.where(table.c.org == org)
    rows = conn.execute(query.where(*conditions).order_by(table.c.seq).limit(limit + 1)).all()
    return [r[0] for r in rows[:limit]], next_cursor("s", rows, limit, 1)
