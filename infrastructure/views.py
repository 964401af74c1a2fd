"""The status projection: one view row per case, written in the write transaction.

The view is ``domain.state.derive`` of the case's facts, rendered as the JSON that
``GET /cases/{id}`` answers. The same rendering serves live writes, the rebuild from
the log, and the as-of / known-at answers, so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from domain.case import Case
from domain.state import CaseState, Period, timeline
from infrastructure import names, tables
from infrastructure.store import Store

NAME_CHANGING = frozenset({"opened", "identity_updated", "retracted"})
PERIOD_COLUMNS = [f.name for f in fields(Period)]


def render(case_id: UUID, state: CaseState) -> dict[str, Any]:
    """The case view of api.md, from a derived state."""
    return {
        "id": str(case_id),
        "version": state.version,
        "category": state.category,
        "person": state.person.to_dict(),
        "status": state.status,
        "held_by": state.held_by,
        "place": state.place,
        "last_seen_alive_on": _iso(state.last_seen_alive_on),
        "classifications": [state.classifications[p] for p in sorted(state.classifications)],
        "disputed": state.disputed,
        "disputes": state.disputes,
        "negotiations": [],
        "opened_at": _iso(state.opened_at),
        "updated_at": _iso(state.updated_at),
    }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dumps(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"))


def project(session: Session, case: Case, seq: int | None, org: str) -> dict[str, Any]:
    """Write the case's view row, its name keys when its names may have changed, and its
    periods, after a write of the case's last fact."""
    view = project_view_only(session, case, seq, org)
    write_periods(session, case.id, timeline(case.facts), case.facts[-1].recorded_at)
    return view


def project_view_only(session: Session, case: Case, seq: int | None, org: str) -> dict[str, Any]:
    """The case's view row and name keys."""
    state = case.state()
    view = render(case.id, state)
    values = {
        "version": state.version,
        "category": state.category,
        "status": state.status,
        "held_by": state.held_by,
        "nationality": state.person.nationality,
        "disputed": state.disputed,
        "view": dumps(view),
    }
    t = tables.case_views
    if seq is not None:  # the opening: a new row
        session.execute(insert(t).values(case_id=case.id, seq=seq, org=org, **values))
    else:
        session.execute(update(t).where(t.c.case_id == case.id).values(**values))
    if case.facts[-1].type in NAME_CHANGING or seq is not None:
        write_name_keys(session, case.id, state.person.names())
    return view


def write_periods(
    session: Session,
    case_id: UUID,
    periods: list[Period],
    at: datetime,
    current: list[Period] | None = None,
) -> list[Period]:
    """Bring the case's current periods to ``periods``: close the rows that no longer
    hold (recorded_to = ``at``) and add the new ones (recorded_from = ``at``)."""
    t = tables.case_periods
    if current is None:
        rows = session.execute(
            select(*(t.c[f] for f in PERIOD_COLUMNS)).where(
                t.c.case_id == case_id, t.c.recorded_to.is_(None)
            )
        )
        current = [Period(*row) for row in rows]
    for gone in (p for p in current if p not in periods):
        session.execute(
            update(t)
            .where(t.c.case_id == case_id, t.c.recorded_to.is_(None))
            .where(t.c.valid_from == gone.valid_from)
            .values(recorded_to=at)
        )
    added = [asdict(p) for p in periods if p not in current]
    if added:
        session.execute(insert(t), [{"case_id": case_id, "recorded_from": at, **p} for p in added])
    return periods


def write_name_keys(session: Session, case_id: UUID, person_names: list[str]) -> None:
    t = tables.case_name_keys
    session.execute(delete(t).where(t.c.case_id == case_id))
    keys = sorted({k for n in person_names for k in names.blocking_keys(n)})
    if keys:
        session.execute(insert(t), [{"key": k, "case_id": case_id} for k in keys])


def rebuild(store: Store, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild every view row from the log in one transaction; return events read.

    Streams the log in (case, version) order, so memory holds one case at a time
    however large the register. Writers wait for the rebuild (they queue on the write
    lock), so the rebuilt views and the tracked position match the log exactly.
    """
    done = 0
    with store.write() as unit:
        session = unit.session
        events = store.events_table
        total = session.execute(select(func.count()).select_from(events)).scalar_one()
        head = session.execute(select(func.max(events.c.id))).scalar_one() or 0
        session.execute(delete(tables.case_name_keys))
        session.execute(delete(tables.case_views))
        session.execute(delete(tables.case_periods))
        for case, seq, count in _cases_from_log(store, session):
            project_view_only(session, case, seq, case.facts[0].recorded_by.get("org", ""))
            _replay_periods(session, case)
            done += count
            if progress is not None:
                progress(done, total)
        unit.position = head  # exactly the log's head, even if it was behind or ahead
    return done


def _replay_periods(session: Session, case: Case) -> None:
    """The case's periods as each of its writes left them, from its facts' record times."""
    current: list[Period] = []
    for version in range(1, len(case.facts) + 1):
        prefix = case.facts[:version]
        current = write_periods(session, case.id, timeline(prefix), prefix[-1].recorded_at, current)


def _cases_from_log(store: Store, session: Session) -> Iterator[tuple[Case, int, int]]:
    events = store.events_table
    query = (
        select(
            events.c.id,
            events.c.originator_id,
            events.c.originator_version,
            events.c.topic,
            events.c.state,
        )
        .order_by(events.c.originator_id, events.c.originator_version)
        .execution_options(yield_per=1000)
    )
    mapper = store.register.mapper
    current: Any = None
    seq = count = 0
    for row in session.execute(query):
        stored = StoredEvent(row.originator_id, row.originator_version, row.topic, bytes(row.state))
        domain_event: Any = mapper.to_domain_event(stored)
        if row.originator_version == 1:
            if current is not None:
                yield current, seq, count
            current, seq, count = None, row.id, 0
        current = domain_event.mutate(current)
        count += 1
    if current is not None:
        yield current, seq, count


def read_view(session: Connection, case_id: UUID) -> tuple[int, str] | None:
    """The stored view JSON of a case and its version, or None."""
    t = tables.case_views
    row = session.execute(select(t.c.version, t.c.view).where(t.c.case_id == case_id)).first()
    return None if row is None else (row.version, row.view)
