"""The two time axes as query parameters, declared once for every route that takes them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import WithJsonSchema

from api.problems import Problem
from api.schemas import Day
from infrastructure.querying import When

# A date-time with its zone, as RFC 3339 writes it (no Unix seconds, no bare dates).
INSTANT = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


def _invalid(name: str, message: str) -> Problem:
    return Problem(
        422, "invalid-input", f"{name} is not valid", errors=[{"field": name, "message": message}]
    )


async def get_when(  # async: no I/O, so no hop to a worker thread
    as_of: Annotated[
        Day | None, Query(description="the world as of the end of this day (occurred_on)")
    ] = None,
    known_at: Annotated[
        str | None,
        Query(pattern=INSTANT, description="only what was recorded by this RFC 3339 instant"),
        WithJsonSchema({"type": "string", "format": "date-time"}),
    ] = None,
) -> When | None:
    """None for now; otherwise the point on both axes the answer is about."""
    if as_of is None and known_at is None:
        return None
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise _invalid("as_of", "must be a date YYYY-MM-DD") from None
    try:
        # In UTC: SQLite keeps instants without their zone, so every comparison is in UTC.
        instant = datetime.fromisoformat(known_at).astimezone(UTC) if known_at else None
    except ValueError:
        raise _invalid("known_at", "must be an RFC 3339 date-time with zone") from None
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _invalid("known_at", "must be between years 1 and 9999 in UTC") from None
    return When(day, instant)


WhenDep = Annotated[When | None, Depends(get_when)]
