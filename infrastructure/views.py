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
from domain.exchange import Exchange
from domain.facts import HANDOVER_TYPES, Fact
from domain.negotiation import Negotiation
from domain.state import CaseState, Period, active_facts, timeline
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
    if case.facts[-1].type in HANDOVER_CHANGING:
        write_handovers(session, case.id, case.facts, case.facts[-1].recorded_at)
    return view


# A fact of these types may change which handover facts of a case stand.
HANDOVER_CHANGING = frozenset({*HANDOVER_TYPES, "retracted"})
OUTCOME_OF = {"handed_over": "handed_over", "handover_refused": "refused"}
OUTCOME_OF["handover_absent"] = "absent"


def write_handovers(
    session: Session,
    case_id: UUID,
    facts: list[Fact],
    at: datetime,
    current: set[int] | None = None,
) -> set[int]:
    """Bring the case's standing handover rows to its facts: close the rows of facts
    retracted since (recorded_to = ``at``), add rows for facts that now stand. Returns
    the versions that stand."""
    t = tables.handovers
    standing = {f.version: f for f in active_facts(facts) if f.type in HANDOVER_TYPES}
    if current is None:
        current = set(
            session.execute(
                select(t.c.version).where(t.c.case_id == case_id, t.c.recorded_to.is_(None))
            ).scalars()
        )
    gone = current - set(standing)
    if gone:
        session.execute(
            update(t)
            .where(t.c.case_id == case_id, t.c.recorded_to.is_(None), t.c.version.in_(gone))
            .values(recorded_to=at)
        )
    added = [standing[v] for v in sorted(set(standing) - current)]
    if added:
        session.execute(
            insert(t),
            [
                {
                    "case_id": case_id,
                    "version": f.version,
                    "exchange_id": UUID(f.get("exchange_id")),
                    "negotiation_id": UUID(n) if (n := f.get("negotiation_id")) else None,
                    "outcome": OUTCOME_OF[f.type],
                    "from_party": f.get("by_party"),
                    "to_party": f.get("to_party"),
                    "occurred_on": f.occurred_on,
                    "willingness": f.get("willingness"),
                    "recorded_from": at,
                }
                for f in added
            ],
        )
    return set(standing)


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


# ---- negotiations and exchanges -----------------------------------------------------


def project_negotiation(session: Session, negotiation: Negotiation, seq: int | None) -> None:
    """The negotiation's row, and the cases it names (its lists and agreements)."""
    t = tables.negotiations
    values = {
        "version": negotiation.version,
        "opened_on": negotiation.opened_on,
        "updated_at": negotiation.updated_at,
    }
    if seq is not None:
        session.execute(
            insert(t).values(negotiation_id=negotiation.id, seq=seq, org=negotiation.org, **values)
        )
    else:
        session.execute(update(t).where(t.c.negotiation_id == negotiation.id).values(**values))
    named = {UUID(case_id) for case_id in negotiation.case_ids()}
    _name_cases(session, negotiation.id, named, "negotiation", replace=True)


def project_exchange(session: Session, exchange: Exchange, seq: int) -> None:
    """The exchange's row; the cases in it are named by its negotiation, if any."""
    negotiation_id = UUID(exchange.negotiation_id) if exchange.negotiation_id else None
    session.execute(
        insert(tables.exchanges).values(
            exchange_id=exchange.id,
            seq=seq,
            org=exchange.recorded_by["org"],
            negotiation_id=negotiation_id,
            occurred_on=exchange.occurred_on,
            recorded_at=exchange.recorded_at,
        )
    )
    if negotiation_id is not None:
        named = {UUID(h["case_id"]) for h in exchange.handovers}
        _name_cases(session, negotiation_id, named, "exchange", replace=False)


def _name_cases(
    session: Session, negotiation_id: UUID, named: set[UUID], via: str, replace: bool
) -> None:
    t = tables.negotiation_cases
    where = (t.c.negotiation_id == negotiation_id, t.c.via == via)
    present = set(session.execute(select(t.c.case_id).where(*where)).scalars())
    gone = present - named if replace else set()
    for chunk in _chunks(sorted(gone)):
        session.execute(delete(t).where(*where, t.c.case_id.in_(chunk)))
    added = sorted(named - present)
    if added:
        session.execute(
            insert(t), [{"negotiation_id": negotiation_id, "case_id": c, "via": via} for c in added]
        )


def _chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def project_other(session: Session, aggregate: Any, seq: int) -> None:
    """Project a negotiation or an exchange, as the rebuild finds it in the log."""
    if isinstance(aggregate, Negotiation):
        project_negotiation(session, aggregate, seq)
    elif isinstance(aggregate, Exchange):
        project_exchange(session, aggregate, seq)
    else:  # a kind of aggregate this version does not know: refuse to half-rebuild
        raise TypeError(f"no projection for {type(aggregate).__name__}")


# Tables the rebuild empties and refills besides the case views and periods.
REBUILT_WITH_CASES = (
    tables.handovers,
    tables.negotiations,
    tables.negotiation_cases,
    tables.exchanges,
)


def negotiations_of(session: Connection | Session, case_ids: list[UUID]) -> dict[UUID, list[str]]:
    """Case id -> the ids of the negotiations that name the case, oldest first."""
    t, n = tables.negotiation_cases, tables.negotiations
    out: dict[UUID, list[str]] = {}
    for chunk in _chunks(case_ids):
        rows = session.execute(
            select(t.c.case_id, t.c.negotiation_id, n.c.seq)
            .distinct()
            .join(n, n.c.negotiation_id == t.c.negotiation_id)
            .where(t.c.case_id.in_(chunk))
            .order_by(t.c.case_id, n.c.seq)
        )
        for case_id, negotiation_id, _ in rows:
            listed = out.setdefault(case_id, [])
            if str(negotiation_id) not in listed:
                listed.append(str(negotiation_id))
    return out


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
        for table in REBUILT_WITH_CASES:
            session.execute(delete(table))
        for aggregate, seq, count in _aggregates_from_log(store, session):
            if isinstance(aggregate, Case):
                project_view_only(session, aggregate, seq, aggregate.facts[0].recorded_by["org"])
                _replay_periods(session, aggregate)
            else:
                project_other(session, aggregate, seq)
            done += count
            if progress is not None:
                progress(done, total)
        unit.position = head  # exactly the log's head, even if it was behind or ahead
    return done


def _replay_periods(session: Session, case: Case) -> None:
    """The case's periods and handover rows as each of its writes left them, from its
    facts' record times."""
    current: list[Period] = []
    standing: set[int] = set()
    for version in range(1, len(case.facts) + 1):
        prefix = case.facts[:version]
        at = prefix[-1].recorded_at
        current = write_periods(session, case.id, timeline(prefix), at, current)
        if prefix[-1].type in HANDOVER_CHANGING:
            standing = write_handovers(session, case.id, prefix, at, standing)


def _aggregates_from_log(store: Store, session: Session) -> Iterator[tuple[Any, int, int]]:
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
