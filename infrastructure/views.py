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
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from domain.case import Case
from domain.exchange import Exchange
from domain.facts import HANDOVER_TYPES, Fact
from domain.negotiation import Negotiation
from domain.state import CaseState, Period, active_facts, timeline
from infrastructure import names, tables
from infrastructure.crypto import SEALED_TEXT, Keyring, MissingPersonKey
from infrastructure.store import Store, current_unit

NAME_CHANGING = frozenset({"opened", "identity_updated", "retracted", "erased"})
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
        "erased": state.erased,
        "negotiations": [],
        "org": state.org,
        "shares": [
            {k: v for k, v in state.shares[org].items() if k != "by"}
            for org in sorted(state.shares)
        ],
        "opened_at": _iso(state.opened_at),
        "updated_at": _iso(state.updated_at),
    }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dumps(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"))


def project(session: Session, case: Case, seq: int | None, org: str) -> dict[str, Any]:
    """Write the case's view row, its name keys when its names may have changed, its
    periods and its handover rows, after a write of the case's last fact (``seq``: the
    log position of the opening, for a new case)."""
    if seq is None:
        return project_written(session, [case])[0]
    view = project_view_only(session, case, seq, org)
    write_periods(session, case.id, timeline(case.facts), case.facts[-1].recorded_at)
    return view


def project_written(session: Session, cases: list[Case]) -> list[dict[str, Any]]:
    """Project existing cases after a write to each, all at once: one UPDATE executed
    for every view row, one read of the current periods and handover rows of all the
    cases, and bulk writes. An exchange of 2,000 people costs a handful of statements,
    not seven per person."""
    t = tables.case_views
    rows, out = [], []
    for case in cases:
        state = case.state()
        view = render(case.id, state)
        rows.append({"b_case_id": case.id, **_view_columns(case.id, state, view)})
        out.append(view)
        if case.facts[-1].type in NAME_CHANGING:
            write_name_keys(session, case.id, state.person.names())
        if case.facts[-1].type in ACCESS_CHANGING:
            write_access(session, case.id, state)
    session.execute(update(t).where(t.c.case_id == bindparam("b_case_id")), rows)
    _write_periods_many(
        session, [(c.id, timeline(c.facts), c.facts[-1].recorded_at) for c in cases]
    )
    changed = [c for c in cases if c.facts[-1].type in HANDOVER_CHANGING]
    if changed:
        _write_handovers_many(session, [(c.id, c.facts, c.facts[-1].recorded_at) for c in changed])
    return out


def _view_columns(case_id: UUID, state: CaseState, view: dict[str, Any]) -> dict[str, Any]:
    """The view row: its JSON sealed with the person's key, unless they were erased
    (nothing personal is left in it then, and no key to seal it with)."""
    text = dumps(view)
    if state.erased is None:
        text = _keyring().seal_text(case_id, text)
    return {
        "version": state.version,
        "category": state.category,
        "status": state.status,
        "held_by": state.held_by,
        "nationality": state.person.nationality,
        "disputed": state.disputed,
        "view": text,
    }


def _keyring() -> Keyring:
    unit = current_unit.get()
    if unit is None:
        raise RuntimeError("views are written only inside Store.write()")
    return unit.keyring


def open_texts(keyring: Keyring, rows: list[tuple[UUID, str]]) -> dict[UUID, str]:
    """View rows' JSON text, opened: the keys read at once. A person erased between the
    read of their row and the read of their key has the row read again: the erasure
    rewrote it in clear in the transaction that destroyed the key."""
    keyring.load(case_id for case_id, _ in rows)
    out, again = {}, []
    for case_id, stored in rows:
        text = keyring.open_text(case_id, stored)
        if text is None:
            again.append(case_id)
        else:
            out[case_id] = text
    if again:
        t = tables.case_views
        with keyring.connect() as (conn, _):
            fresh = conn.execute(select(t.c.case_id, t.c.view).where(t.c.case_id.in_(again)))
            for case_id, stored in fresh:
                if stored.startswith(SEALED_TEXT):
                    raise MissingPersonKey(f"the view of case {case_id} is sealed, its key gone")
                out[case_id] = stored
    return out


def load_views(keyring: Keyring, rows: list[tuple[UUID, str]]) -> dict[UUID, dict[str, Any]]:
    """View rows, opened and parsed (``open_texts``)."""
    return {case_id: json.loads(text) for case_id, text in open_texts(keyring, rows).items()}


# A fact of these types may change which handover facts of a case stand.
HANDOVER_CHANGING = frozenset({*HANDOVER_TYPES, "retracted"})
OUTCOME_OF = {"handed_over": "handed_over", "handover_refused": "refused"}
OUTCOME_OF["handover_absent"] = "absent"


def write_handovers(
    session: Session, case_id: UUID, facts: list[Fact], at: datetime, current: set[int]
) -> set[int]:
    """``_write_handovers_many`` for one case whose standing rows are known (a rebuild)."""
    return _write_handovers_many(session, [(case_id, facts, at)], {case_id: current})[case_id]


def _write_handovers_many(
    session: Session,
    items: list[tuple[UUID, list[Fact], datetime]],
    current: dict[UUID, set[int]] | None = None,
) -> dict[UUID, set[int]]:
    """Bring each case's standing handover rows to its facts: close the rows of facts
    retracted since (recorded_to = the write's time), add rows for facts that now stand.
    Returns the versions that stand, per case."""
    t = tables.handovers
    if current is None:
        current = {case_id: set() for case_id, _, _ in items}
        for chunk in _chunks([case_id for case_id, _, _ in items]):
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
    if closed:
        session.execute(
            update(t).where(
                t.c.case_id == bindparam("b_case_id"),
                t.c.version == bindparam("b_version"),
                t.c.recorded_to.is_(None),
            ),
            closed,
        )
    if added:
        session.execute(insert(t), added)
    return out


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


def project_view_only(session: Session, case: Case, seq: int | None, org: str) -> dict[str, Any]:
    """The case's view row and name keys."""
    state = case.state()
    view = render(case.id, state)
    values = _view_columns(case.id, state, view)
    t = tables.case_views
    if seq is not None:  # the opening: a new row
        session.execute(insert(t).values(case_id=case.id, seq=seq, org=org, **values))
    else:
        session.execute(update(t).where(t.c.case_id == case.id).values(**values))
    if case.facts[-1].type in NAME_CHANGING or seq is not None:
        write_name_keys(session, case.id, state.person.names())
    if seq is not None:  # an opening, or a rebuild: who may see the case
        write_access(session, case.id, state)
    return view


# A fact of these types may change which organisations see a case.
ACCESS_CHANGING = frozenset({"shared", "share_ended", "retracted"})


def write_access(session: Session, case_id: UUID, state: CaseState) -> None:
    """The organisations that may see the case: its owner and those it is shared with."""
    t = tables.case_access
    session.execute(delete(t).where(t.c.case_id == case_id))
    rows = [{"case_id": case_id, "org": state.org, "via": "owner"}]
    rows += [{"case_id": case_id, "org": org, "via": "share"} for org in sorted(state.shares)]
    session.execute(insert(t), rows)


def write_periods(
    session: Session,
    case_id: UUID,
    periods: list[Period],
    at: datetime,
    current: list[Period] | None = None,
) -> list[Period]:
    """``_write_periods_many`` for one case."""
    known = None if current is None else {case_id: current}
    _write_periods_many(session, [(case_id, periods, at)], known)
    return periods


def _write_periods_many(
    session: Session,
    items: list[tuple[UUID, list[Period], datetime]],
    current: dict[UUID, list[Period]] | None = None,
) -> None:
    """Bring each case's current periods to the given ones: close the rows that no
    longer hold (recorded_to = the write's time) and add the new ones (recorded_from)."""
    t = tables.case_periods
    if current is None:
        current = {case_id: [] for case_id, _, _ in items}
        columns = [t.c[f] for f in PERIOD_COLUMNS]
        for chunk in _chunks([case_id for case_id, _, _ in items]):
            rows = session.execute(
                select(t.c.case_id, *columns).where(
                    t.c.case_id.in_(chunk), t.c.recorded_to.is_(None)
                )
            )
            for case_id, *values in rows:
                current[case_id].append(Period(*values))
    closed, added = [], []
    for case_id, periods, at in items:
        before = current[case_id]
        closed += [
            {"b_case_id": case_id, "b_valid_from": p.valid_from, "recorded_to": at}
            for p in before
            if p not in periods
        ]
        added += [
            {"case_id": case_id, "recorded_from": at, **asdict(p)}
            for p in periods
            if p not in before
        ]
    if closed:
        session.execute(
            update(t).where(
                t.c.case_id == bindparam("b_case_id"),
                t.c.valid_from == bindparam("b_valid_from"),
                t.c.recorded_to.is_(None),
            ),
            closed,
        )
    if added:
        session.execute(insert(t), added)


def write_name_keys(session: Session, case_id: UUID, person_names: list[str]) -> None:
    t = tables.case_name_keys
    session.execute(delete(t).where(t.c.case_id == case_id))
    keyring = _keyring()
    keys = sorted({keyring.name_key(k) for n in person_names for k in names.blocking_keys(n)})
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
    tables.case_access,
    tables.handovers,
    tables.negotiations,
    tables.negotiation_cases,
    tables.negotiation_mentions,
    tables.exchanges,
)


def negotiations_of(
    session: Connection | Session,
    case_ids: list[UUID],
    as_of: date | None = None,
    org: str | None = None,
) -> dict[UUID, list[str]]:
    """Case id -> the ids of the negotiations that name the case, oldest first; with
    ``as_of``, only those opened by that day; with ``org``, only that organisation's
    (``access.org_filter``: a case shared with another organisation must not tell it
    which negotiations the owner is in). Which negotiations name a case is kept as it
    is now, not as it was known at past instants."""
    t, n = tables.negotiation_cases, tables.negotiations
    out: dict[UUID, list[str]] = {}
    for chunk in _chunks(case_ids):
        query = (
            select(t.c.case_id, t.c.negotiation_id, n.c.seq)
            .distinct()
            .join(n, n.c.negotiation_id == t.c.negotiation_id)
            .where(t.c.case_id.in_(chunk))
            .order_by(t.c.case_id, n.c.seq)
        )
        if as_of is not None:
            query = query.where(n.c.opened_on <= as_of)
        if org is not None:
            query = query.where(n.c.org == org)
        rows = session.execute(query)
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


def read_view(session: Connection, keyring: Keyring, case_id: UUID) -> tuple[int, str] | None:
    """The view JSON of a case, opened, and its version; or None."""
    t = tables.case_views
    row = session.execute(select(t.c.version, t.c.view).where(t.c.case_id == case_id)).first()
    if row is None:
        return None
    return row.version, open_texts(keyring, [(case_id, row.view)])[case_id]
