"""The projections rebuilt from the whole log (``casebook views rebuild``), by the code
that projects every write (``infrastructure.projections``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import StoredEvent
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from domain.case import Case
from domain.facts import OPENED
from domain.state import Period
from infrastructure import counts, tables
from infrastructure.crypto import Keyring
from infrastructure.projections import (
    HANDOVER_CHANGING,
    case_history,
    case_rows,
    project_aggregates,
)

if TYPE_CHECKING:
    from infrastructure.store import Store

# Every table ``project`` writes: the rebuild empties them and fills them again.
PROJECTED = (
    tables.case_views,
    tables.case_name_keys,
    tables.case_periods,
    tables.case_access,
    tables.handovers,
    tables.negotiations,
    tables.negotiation_cases,
    tables.negotiation_mentions,
    tables.exchanges,
    tables.counts,
    tables.count_days,
)


FORGET_KEYS_EVERY = 1000  # aggregates


def rebuild(store: Store, progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild every projected row from the log in one transaction; return events read.

    Streams the log in (aggregate, version) order, so memory holds one aggregate at a
    time however large the register. Each aggregate is projected by the code that
    projects a write: a negotiation or exchange as if saved whole; a case's rows from
    its last state, and its bitemporal periods and handover rows as each of its writes
    left them, from its facts' record times. Writers wait for the rebuild (they queue
    on the write lock), so the rebuilt rows and the tracked position match the log.
    """
    done = 0
    with store.write() as unit:
        session = unit.session
        events = store.events_table
        total = session.execute(select(func.count()).select_from(events)).scalar_one()
        head = session.execute(select(func.max(events.c.id))).scalar_one() or 0
        for table in PROJECTED:
            session.execute(delete(table))
        for n, (aggregate, seq, count) in enumerate(_aggregates_from_log(store, session)):
            if n % FORGET_KEYS_EVERY == 0:
                unit.keyring.forget()  # each person's key is opened once: keep none
            if isinstance(aggregate, Case):
                _rebuild_case(session, unit.keyring, aggregate, seq)
            else:
                opened, kinds = {aggregate.id: seq}, {aggregate.id: {OPENED}}
                project_aggregates(session, unit.keyring, [aggregate], opened, kinds)
            done += count
            if progress is not None:
                progress(done, total)
        counts.recount(session)  # the summary's counts, from the periods and access rows
        unit.position = head  # exactly the log's head, even if it was behind or ahead
    return done


def _rebuild_case(session: Session, keyring: Keyring, case: Case, seq: int) -> None:
    """The case's rows from its last state; its periods and handover rows as each of
    its writes left them (the facts one write saved share its ``recorded_at``)."""
    every_kind = {case.id: {OPENED, *(f.type for f in case.facts)}}
    case_rows(session, keyring, [case], {case.id: case.state()}, {case.id: seq}, every_kind)
    periods: list[Period] = []
    standing: set[int] = set()
    facts, kinds = case.facts, set[str]()
    for version in range(1, len(facts) + 1):
        kinds.add(facts[version - 1].type)
        if version < len(facts) and facts[version].recorded_at == facts[version - 1].recorded_at:
            continue  # the same write: its rows as that write left them, once
        prefix = facts[:version]
        item = [(case.id, prefix, prefix[-1].recorded_at)]
        changed = item if kinds & HANDOVER_CHANGING else []
        kinds = set()
        now_periods, now_standing = case_history(
            session, item, changed, {case.id: periods}, {case.id: standing}
        )
        periods = now_periods[case.id]
        standing = now_standing.get(case.id, standing)


def _aggregates_from_log(store: Store, session: Session) -> Iterator[tuple[Any, int, int]]:
    """Each aggregate, built from its events; the log position of its first; how many."""
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
