"""Projections: every table that follows from events, kept from the events just saved.

``project`` runs inside the write transaction each time the register saves (the store's
``ChainedRegister._record`` calls it with the aggregates and the recordings of that
save), so no command projects anything by hand and nothing saved can miss its rows:

- a case that changed is derived once (``Case.state``) and its view row written
  (sealed with the person's key unless they were erased), its name keys when its names
  may have changed, who may see it when its shares may have changed, its bitemporal
  periods, and its standing handover rows when a handover may have changed;
- a negotiation's row, the cases it names and the cases its lists ever mentioned;
- an exchange's row, and the cases it names in its negotiation.

Many cases saved at once (an exchange of 2,000 people, a bulk load) are projected in a
handful of statements, not several per case. ``infrastructure.rebuild`` runs the same
code over the whole log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Recording
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from domain.case import Case
from domain.exchange import Exchange
from domain.facts import HANDOVER_TYPES, OPENED, Fact
from domain.negotiation import Negotiation
from domain.state import CaseState, active_facts
from domain.timeline import Period, earliest_new_day, timeline
from infrastructure import counts, names, tables
from infrastructure.crypto import Keyring
from infrastructure.inserts import insert_rows
from infrastructure.views import PERIOD_COLUMNS, chunks, dumps, render

if TYPE_CHECKING:
    pass

# Facts of these types may change a case's names, who sees it, or its standing handovers.
NAME_CHANGING = frozenset({OPENED, "identity_updated", "retracted", "erased"})
ACCESS_CHANGING = frozenset({OPENED, "shared", "share_ended", "retracted"})
HANDOVER_CHANGING = frozenset({*HANDOVER_TYPES, "retracted"})
OUTCOME_OF = {"handed_over": "handed_over", "handover_refused": "refused"}
OUTCOME_OF["handover_absent"] = "absent"


def project(
    session: Session, keyring: Keyring, aggregates: Iterable[Any], recordings: list[Recording[UUID]]
) -> dict[UUID, dict[str, Any]]:
    """Bring every projection up to the events just saved; return the case views
    rendered on the way (a write answers with its case's view)."""
    opened: dict[UUID, int] = {}  # aggregate -> log position of its first event
    kinds: dict[UUID, set[str]] = defaultdict(set)  # aggregate -> types of fact saved
    for recording in recordings:
        event = recording.domain_event
        if event.originator_version == 1:
            opened[event.originator_id] = recording.notification.id
        kinds[event.originator_id].add(getattr(event, "fact_type", None) or OPENED)
    return project_aggregates(session, keyring, aggregates, opened, kinds)


def project_aggregates(
    session: Session,
    keyring: Keyring,
    aggregates: Iterable[Any],
    opened: dict[UUID, int],
    kinds: dict[UUID, set[str]],
) -> dict[UUID, dict[str, Any]]:
    """``project``, told which aggregates were opened (at which log position) and which
    types of fact each was saved with."""
    cases: list[Case] = []
    for aggregate in aggregates:
        if isinstance(aggregate, Case):
            cases.append(aggregate)
        elif isinstance(aggregate, Negotiation):
            project_negotiation(session, aggregate, opened.get(aggregate.id))
        elif isinstance(aggregate, Exchange):
            project_exchange(session, aggregate, opened[aggregate.id])
        else:  # a kind of aggregate this version does not know: refuse half a write
            raise TypeError(f"no projection for {type(aggregate).__name__}")
    return _project_cases(session, keyring, cases, opened, kinds) if cases else {}


def _project_cases(
    session: Session,
    keyring: Keyring,
    cases: list[Case],
    opened: dict[UUID, int],
    kinds: dict[UUID, set[str]],
) -> dict[UUID, dict[str, Any]]:
    states = {case.id: case.state() for case in cases}
    new = {c.id for c in cases if c.id in opened}
    # Who saw each case and its periods before this write, for the counts: a new case
    # had none; a share's start or end is read before its access rows are replaced.
    viewers_before = counts.viewers(
        session, [c.id for c in cases if c.id not in new and kinds[c.id] & ACCESS_CHANGING]
    )
    periods_before = _current_periods(
        session, [c.id for c in cases], {case_id: [] for case_id in new}
    )
    views = case_rows(session, keyring, cases, states, opened, kinds)
    changed = [c for c in cases if kinds[c.id] & HANDOVER_CHANGING]
    periods_after, _ = case_history(
        session,
        [(c.id, c.facts, c.facts[-1].recorded_at) for c in cases],
        [(c.id, c.facts, c.facts[-1].recorded_at) for c in changed],
        periods_now=periods_before,
        standing_now={case_id: set() for case_id in new},
        since={c.id: day for c in cases if (day := earliest_new_day(c.facts)) is not None},
    )
    deltas = counts.new_deltas()
    for case in cases:
        state = states[case.id]
        viewers = {state.org, *state.shares}
        before = set() if case.id in new else viewers_before.get(case.id, viewers)
        counts.change(deltas, before, periods_before[case.id], viewers, periods_after[case.id])
    counts.apply(session, deltas)
    return views


def case_rows(
    session: Session,
    keyring: Keyring,
    cases: list[Case],
    states: dict[UUID, CaseState],
    opened: dict[UUID, int],
    kinds: dict[UUID, set[str]],
) -> dict[UUID, dict[str, Any]]:
    """The cases' view rows (inserted for a new case, at the log position of its first
    event; updated for the others), their name keys and who may see them: one
    statement per table for the whole save, however many cases it holds."""
    views, inserts, updates = {}, [], []
    name_keys: dict[UUID, list[dict[str, Any]]] = {}
    access: dict[UUID, list[dict[str, Any]]] = {}
    for case in cases:
        state = states[case.id]
        view = views[case.id] = render(case.id, state)
        values = _view_columns(keyring, case.id, state, view)
        if case.id in opened:
            inserts.append({"case_id": case.id, "seq": opened[case.id], "org": state.org, **values})
        else:
            updates.append({"b_case_id": case.id, **values})
        if kinds[case.id] & NAME_CHANGING:
            name_keys[case.id] = _name_key_rows(keyring, case.id, state.person.names())
        if kinds[case.id] & ACCESS_CHANGING:
            access[case.id] = _access_rows(case.id, state)
    if inserts:
        insert_rows(session, tables.case_views, inserts)
    if updates:
        session.execute(_UPDATE_VIEW, updates)
    _replace_rows(session, tables.case_name_keys, name_keys, opened.keys())
    _replace_rows(session, tables.case_access, access, opened.keys())
    return views


def _replace_rows(
    session: Session, table: Table, rows: dict[UUID, list[dict[str, Any]]], new: AbstractSet[UUID]
) -> None:
    """Each case's rows of ``table`` replaced by these (a new case has none to delete)."""
    for chunk in chunks(sorted(c for c in rows if c not in new)):
        session.execute(delete(table).where(table.c.case_id.in_(chunk)))
    every = [row for case_rows in rows.values() for row in case_rows]
    insert_rows(session, table, every)


def _access_rows(case_id: UUID, state: CaseState) -> list[dict[str, Any]]:
    """The organisations that may see the case: its owner and those it is shared with."""
    rows = [{"case_id": case_id, "org": state.org, "via": "owner"}]
    return rows + [{"case_id": case_id, "org": org, "via": "share"} for org in sorted(state.shares)]


def _name_key_rows(
    keyring: Keyring, case_id: UUID, person_names: list[str]
) -> list[dict[str, Any]]:
    """The case's rows in the name index: keyed hashes of its names' ``index_keys``."""
    keys = sorted({keyring.name_key(k) for n in person_names for k in names.index_keys(n)})
    return [{"key": k, "case_id": case_id} for k in keys]


_UPDATE_VIEW = update(tables.case_views).where(
    tables.case_views.c.case_id == bindparam("b_case_id")
)


def _view_columns(
    keyring: Keyring, case_id: UUID, state: CaseState, view: dict[str, Any]
) -> dict[str, Any]:
    """The view row: its JSON sealed with the person's key, unless they were erased
    (nothing personal is left in it then, and no key to seal it with)."""
    text = dumps(view)
    if state.erased is None:
        text = keyring.seal_text(case_id, text)
    return {
        "version": state.version,
        "category": state.category,
        "status": state.status,
        "held_by": state.held_by,
        "nationality": state.person.nationality,
        "disputed": state.disputed,
        "view": text,
    }


# ---- the bitemporal tables: periods and standing handovers --------------------------

History = list[tuple[UUID, list[Fact], datetime]]  # case, its facts, the write's time


def case_history(
    session: Session,
    periods: History,
    handovers: History,
    periods_now: dict[UUID, list[Period]] | None = None,
    standing_now: dict[UUID, set[int]] | None = None,
    since: dict[UUID, date] | None = None,
) -> tuple[dict[UUID, list[Period]], dict[UUID, set[int]]]:
    """Bring each case's current periods, and the standing handover rows of those in
    ``handovers``, to its facts: rows that no longer hold are closed (recorded_to =
    the write's time) and new ones added. What stands now per case may be given (a new
    case has none; a rebuild knows) instead of read. ``since``: for each case, the
    earliest day of the facts just added, when the periods before it stand as they are
    (``domain.timeline.timeline``). Returns what stands after."""
    return (
        _write_periods_many(session, periods, periods_now or {}, since or {}),
        _write_handovers_many(session, handovers, standing_now or {}) if handovers else {},
    )


def _current_periods(
    session: Session, case_ids: list[UUID], known: dict[UUID, list[Period]]
) -> dict[UUID, list[Period]]:
    t = tables.case_periods
    current = {case_id: list(known.get(case_id, [])) for case_id in case_ids}
    unknown = [case_id for case_id in case_ids if case_id not in known]
    columns = [t.c[f] for f in PERIOD_COLUMNS]
    if len(unknown) == 1:  # one case written: a statement built once
        rows = session.execute(_CURRENT_PERIODS, {"case_id": unknown[0]})
        current[unknown[0]] += [Period(*values) for _, *values in rows]
        return current
    for chunk in chunks(unknown):
        rows = session.execute(
            select(t.c.case_id, *columns).where(t.c.case_id.in_(chunk), t.c.recorded_to.is_(None))
        )
        for case_id, *values in rows:
            current[case_id].append(Period(*values))
    return current


_P = tables.case_periods
_CURRENT_PERIODS = select(_P.c.case_id, *[_P.c[f] for f in PERIOD_COLUMNS]).where(
    _P.c.case_id == bindparam("case_id"), _P.c.recorded_to.is_(None)
)


def _write_periods_many(
    session: Session,
    items: History,
    known: dict[UUID, list[Period]],
    since: dict[UUID, date],
) -> dict[UUID, list[Period]]:
    t = tables.case_periods
    current = _current_periods(session, [case_id for case_id, _, _ in items], known)
    closed, added, out = [], [], {}
    for case_id, facts, at in items:
        before = current[case_id]
        periods = timeline(facts, since.get(case_id), before)
        closed += [
            {"b_case_id": case_id, "b_valid_from": p.valid_from, "recorded_to": at}
            for p in before
            if p not in periods
        ]
        added += [
            {"case_id": case_id, "recorded_from": at, **vars(p)}  # flat: no deep copy
            for p in periods
            if p not in before
        ]
        out[case_id] = periods
    _close_and_add(session, t, t.c.valid_from == bindparam("b_valid_from"), closed, added)
    return out


def _write_handovers_many(
    session: Session, items: History, known: dict[UUID, set[int]]
) -> dict[UUID, set[int]]:
    t = tables.handovers
    current = {case_id: set(known.get(case_id, set())) for case_id, _, _ in items}
    unknown = [case_id for case_id, _, _ in items if case_id not in known]
    for chunk in chunks(unknown):
        rows = session.execute(
            select(t.c.case_id, t.c.version).where(
                t.c.case_id.in_(chunk), t.c.recorded_to.is_(None)
            )
        )
        for case_id, version in rows:
            current[case_id].add(version)
    closed, added, out = [], [], {}
    for case_id, facts, at in items:
        standing = {f.version: f for f in active_facts(facts) if f.type in HANDOVER_TYPES}
        before = current[case_id]
        closed += [
            {"b_case_id": case_id, "b_version": v, "recorded_to": at}
            for v in before - set(standing)
        ]
        added += [_handover_row(case_id, standing[v], at) for v in sorted(set(standing) - before)]
        out[case_id] = set(standing)
    _close_and_add(session, t, t.c.version == bindparam("b_version"), closed, added)
    return out


def _close_and_add(
    session: Session,
    t: Table,
    which: ColumnElement[bool],
    closed: list[dict[str, Any]],
    added: list[dict[str, Any]],
) -> None:
    """Close the current rows that no longer hold (``which`` of the case, with its
    ``recorded_to``) and insert the new ones, each in one statement for many cases."""
    if closed:
        current = (t.c.case_id == bindparam("b_case_id"), which, t.c.recorded_to.is_(None))
        session.execute(update(t).where(*current), closed)
    insert_rows(session, t, added)


def _handover_row(case_id: UUID, fact: Fact, at: datetime) -> dict[str, Any]:
    negotiation_id = fact.get("negotiation_id")
    return {
        "case_id": case_id,
        "version": fact.version,
        "exchange_id": UUID(fact.get("exchange_id")),
        "negotiation_id": UUID(negotiation_id) if negotiation_id else None,
        "outcome": OUTCOME_OF[fact.type],
        "from_party": fact.get("by_party"),
        "to_party": fact.get("to_party"),
        "occurred_on": fact.occurred_on,
        "willingness": fact.get("willingness"),
        "recorded_from": at,
    }


# ---- negotiations and exchanges -----------------------------------------------------


def project_negotiation(session: Session, negotiation: Negotiation, seq: int | None) -> None:
    """The negotiation's row (new at ``seq``, its log position, when it was opened in
    this write), and the cases it names (its lists and agreements) and ever mentioned."""
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
    m = tables.negotiation_mentions
    known = set(session.execute(select(m.c.case_id).where(m.c.negotiation_id == negotiation.id)))
    new = {UUID(c) for c in negotiation.mentions()} - {row[0] for row in known}
    if new:  # list versions never change: a mention, once made, stays
        session.execute(
            insert(m), [{"negotiation_id": negotiation.id, "case_id": c} for c in sorted(new)]
        )


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
    for chunk in chunks(sorted(gone)):
        session.execute(delete(t).where(*where, t.c.case_id.in_(chunk)))
    added = sorted(named - present)
    if added:
        session.execute(
            insert(t), [{"negotiation_id": negotiation_id, "case_id": c, "via": via} for c in added]
        )
