"""The register's report: exchanges per party and direction, and persons returned per
negotiation, at a point on both time axes; only the people the caller may see count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select

from domain.ports import Caller
from infrastructure import access, tables
from infrastructure.querying import When, handover_conditions
from infrastructure.store import Store


def report(
    store: Store, as_of: Any = None, known_at: datetime | None = None, key: Caller | None = None
) -> dict[str, Any]:
    """Exchanges per party and direction, and persons returned per negotiation, as
    of a world day and as known at an instant (both default to now). ``returned``
    counts the people handed over to the party of their nationality (as the case
    says now); ``handed_over`` counts everyone handed over, to a third country too."""
    t = tables.handovers
    conditions = handover_conditions(When(as_of, known_at))
    # Only the people the caller may see count: each handover row checked on its own
    # (correlated, through the access index), so that the report reads the handovers,
    # not the list of every case the organisation sees (330 ms at 200,000 people).
    visible = access.visible(key, t.c.case_id)
    if visible is not None:
        conditions.append(visible)
    handed = func.sum(case((t.c.outcome == "handed_over", 1), else_=0))
    refused = func.sum(case((t.c.outcome == "refused", 1), else_=0))
    absent = func.sum(case((t.c.outcome == "absent", 1), else_=0))
    with store.snapshot() as conn:
        directions = conn.execute(
            select(
                t.c.from_party,
                t.c.to_party,
                func.count(func.distinct(t.c.exchange_id)),
                handed,
                refused,
                absent,
            )
            .where(*conditions)
            .group_by(t.c.from_party, t.c.to_party)
            .order_by(t.c.from_party, t.c.to_party)
        ).all()
        v = tables.case_views
        home = case((t.c.to_party == v.c.nationality, t.c.case_id), else_=None)
        returned = conn.execute(
            select(
                t.c.negotiation_id,
                func.count(func.distinct(home)),
                func.count(func.distinct(t.c.case_id)),
            )
            .join(v, v.c.case_id == t.c.case_id)
            .where(*conditions, t.c.outcome == "handed_over", t.c.negotiation_id.is_not(None))
            .group_by(t.c.negotiation_id)
            .order_by(t.c.negotiation_id)
        ).all()
    return {
        "exchanges": [
            {
                "from_party": r[0],
                "to_party": r[1],
                "exchanges": r[2],
                "handed_over": int(r[3] or 0),
                "refused": int(r[4] or 0),
                "absent": int(r[5] or 0),
            }
            for r in directions
        ],
        "returned_by_negotiation": [
            {"negotiation_id": str(r[0]), "returned": r[1], "handed_over": r[2]} for r in returned
        ],
    }
