"""The log read back and projected into the shadow tables, by the code that projects every
write (``infrastructure.projections``): for ``infrastructure.rebuild``.

Two ways, which leave the same rows (the rebuild's tests compare them):

- **The fill** (``fill_cases``, ``fill_others``): aggregates whole, many at once. A case's
  view, name keys and access rows from its last state; its periods and standing
  handover rows as each of its writes left them (a write's facts share its
  ``recorded_at``), with the ``since`` day each write's projection used, one statement
  per table for all the cases of a batch at each step. Its statements are computed
  before the batch's transaction begins (``_Later``) and run in it, so that on SQLite
  the database's writer lock is held for the writing only.
- **The catch-up** (``catch_up``): the events written since, each write of each
  aggregate projected as the live write projected it (``project_aggregates`` with the
  aggregate as that write left it, whether it opened it, and the types of fact it
  saved), in log order, in the catch-up's own transaction (the projections read what
  the write before left). The counts (``infrastructure.counts``) are kept there too.

A person erased since the log position being projected has no key to seal their view
with: the view is sealed with a key made for the purpose and forgotten at once
(``_Sealer``), which is what the live register holds for them until the erasure (a view
sealed with a destroyed key); the erasure's own write, which the catch-up projects
before any swap, replaces it.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import StoredEvent
from sqlalchemy import Select, func, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from domain.case import Case
from domain.facts import OPENED
from domain.timeline import Period, earliest_new_day
from infrastructure import tables
from infrastructure.crypto import NONCE, SEALED_TEXT, Keyring, NoKeyRow
from infrastructure.projections import (
    HANDOVER_CHANGING,
    case_history,
    case_rows,
    project_aggregates,
)
from infrastructure.views import chunks

if TYPE_CHECKING:
    from infrastructure.store import Store


@dataclass
class Logged:
    """One aggregate's events as read from the log, decoded, with their positions."""

    events: list[Any]
    positions: list[int]

    @property
    def id(self) -> UUID:
        return UUID(str(self.events[0].originator_id))

    @property
    def is_case(self) -> bool:
        return isinstance(self.events[0], Case.Opened)

    def built(self, upto: int | None = None) -> Any:
        aggregate = None
        for domain_event in self.events[:upto]:
            aggregate = domain_event.mutate(aggregate)
        return aggregate


class Log:
    """Reads the register's events, whole aggregates at a time."""

    def __init__(self, store: Store, reader: Connection):
        self.store, self.reader = store, reader
        e = store.events_table
        self.columns = (e.c.id, e.c.originator_id, e.c.originator_version, e.c.topic, e.c.state)
        self.events = e

    def head(self) -> int:
        with self.reader.begin():
            return int(self.reader.execute(select(func.max(self.events.c.id))).scalar() or 0)

    def batch(self, after: UUID | None, upto: int, limit: int) -> tuple[list[Logged], UUID | None]:
        """The aggregates after ``after`` (in id order) whose events fill about ``limit``
        rows, each up to log position ``upto``; and the last aggregate read."""
        e = self.events
        query = select(*self.columns).order_by(e.c.originator_id, e.c.originator_version)
        if after is not None:
            query = query.where(e.c.originator_id > after)
        with self.reader.begin():
            rows = list(self.reader.execute(query.limit(limit)))
            if len(rows) == limit:  # the last aggregate may go on: read it next time
                last = rows[-1].originator_id
                whole = [r for r in rows if r.originator_id != last]
                if whole:
                    rows = whole
                else:  # one aggregate longer than a batch: all of it
                    rows += self.reader.execute(
                        select(*self.columns)
                        .where(
                            e.c.originator_id == last,
                            e.c.originator_version > rows[-1].originator_version,
                        )
                        .order_by(e.c.originator_version)
                    )
        if not rows:
            return [], after
        # Positions only grow with versions: the events up to ``upto`` are a prefix.
        return self._decoded(r for r in rows if r.id <= upto), rows[-1].originator_id

    def window(self, after: int, upto: int) -> list[Logged]:
        """Every aggregate written after log position ``after``, up to ``upto``: all their
        events up to ``upto``, in the order of their first new event."""
        e = self.events
        with self.reader.begin():
            touched = list(
                self.reader.execute(
                    select(e.c.originator_id, e.c.id).where(e.c.id > after, e.c.id <= upto)
                )
            )
            order = {r.originator_id: r.id for r in reversed(touched)}
            rows: list[Row[Any]] = []
            for chunk in chunks(sorted(order, key=order.__getitem__)):
                rows += self.reader.execute(
                    select(*self.columns)
                    .where(e.c.originator_id.in_(chunk), e.c.id <= upto)
                    .order_by(e.c.originator_id, e.c.originator_version)
                )
        logged = self._decoded(rows)
        return sorted(logged, key=lambda item: order[item.id])

    def _decoded(self, rows: Iterable[Row[Any]]) -> list[Logged]:
        """Rows of whole aggregates, decoded with their keys (read at once)."""
        rows = list(rows)
        keyring = self.store.keyring
        keyring.forget()  # each batch's keys only: memory stays flat
        ids = sorted({UUID(str(r.originator_id)) for r in rows})
        with self.reader.begin():
            keyring.load(ids, on=self.reader)
        mapper = self.store.register.mapper
        out: list[Logged] = []
        for row in rows:
            stored = StoredEvent(
                row.originator_id, row.originator_version, row.topic, bytes(row.state)
            )
            decoded = mapper.to_domain_event(stored)
            if row.originator_version == 1:
                out.append(Logged([], []))
            out[-1].events.append(decoded)
            out[-1].positions.append(row.id)
        return out

    def without_keys(self, logged: list[Logged]) -> list[UUID]:
        """The cases among these that have no key yet (opened before per-person
        encryption): sealing their views needs one, made in a write of its own."""
        missing = []
        for item in logged:
            if item.is_case:
                try:
                    self.store.keyring.key(item.id)
                except NoKeyRow:
                    missing.append(item.id)
        return missing


def make_keys(store: Store, case_ids: list[UUID]) -> None:
    """Keys for cases opened before per-person encryption, in one write (those another
    write has made meanwhile are not made again)."""
    with store.write() as unit:
        t = tables.person_keys
        query = select(t.c.key_id).where(t.c.key_id.in_(case_ids))
        have = set(unit.session.execute(query).scalars())
        store.keyring.create([c for c in case_ids if c not in have], unit.recorded_at)


# ---- the fill ---------------------------------------------------------------------------


def fill_cases(keyring: Keyring, logged: list[Logged]) -> list[tuple[Any, Any]]:
    """The statements that project these cases whole (none is in the shadow yet)."""
    later = _Later()
    session = cast(Session, later)
    sealer = cast(Keyring, _Sealer(keyring))
    cases: list[Case] = [item.built() for item in logged]
    opened = {item.id: item.positions[0] for item in logged}
    kinds = {case.id: {OPENED, *(f.type for f in case.facts)} for case in cases}
    states = {case.id: case.state() for case in cases}
    case_rows(session, sealer, cases, states, opened, kinds)
    _histories(session, cases)
    return later.statements


def _histories(session: Session, cases: list[Case]) -> None:
    """Each case's periods and standing handovers as each of its writes left them: the
    first write of every case in one call, then the second of those that have one..."""
    ends = {case.id: _write_ends(case) for case in cases}
    periods: dict[UUID, list[Period]] = {case.id: [] for case in cases}
    standing: dict[UUID, set[int]] = {case.id: set() for case in cases}
    step = 0
    while True:
        items, changed, since = [], [], {}
        for case in cases:
            if step >= len(ends[case.id]):
                continue
            start = ends[case.id][step - 1] if step else 0
            prefix = case.facts[: ends[case.id][step]]
            item = (case.id, prefix, prefix[-1].recorded_at)
            items.append(item)
            if {f.type for f in prefix[start:]} & HANDOVER_CHANGING:
                changed.append(item)
            if (day := earliest_new_day(prefix)) is not None:
                since[case.id] = day
        if not items:
            return
        now_periods, now_standing = case_history(
            session,
            items,
            changed,
            {case_id: periods[case_id] for case_id, _, _ in items},
            {case_id: standing[case_id] for case_id, _, _ in changed},
            since,
        )
        periods.update(now_periods)
        standing.update(now_standing)
        step += 1


def _write_ends(case: Case) -> list[int]:
    """Where each of the case's writes ends in its facts (one write, one time stamp)."""
    facts = case.facts
    return [
        n
        for n in range(1, len(facts) + 1)
        if n == len(facts) or facts[n].recorded_at != facts[n - 1].recorded_at
    ]


def fill_others(session: Session, keyring: Keyring, logged: list[Logged]) -> None:
    """Negotiations and exchanges, whole, as if each were saved at once (few: projected
    in the batch's transaction, since a negotiation's rows are read back)."""
    for item in logged:
        if not item.is_case:
            aggregate = item.built()
            opened, kinds = {item.id: item.positions[0]}, {item.id: {OPENED}}
            project_aggregates(session, cast(Keyring, _Sealer(keyring)), [aggregate], opened, kinds)


# ---- the catch-up -----------------------------------------------------------------------


def catch_up(session: Session, keyring: Keyring, window: list[Logged], after: int) -> int:
    """Project every write of these aggregates after log position ``after``, in log
    order, as the live write did; return how many events that was."""
    steps: list[tuple[int, Logged, int, int]] = []  # (position, aggregate, from, to)
    for item in window:
        done = sum(1 for p in item.positions if p <= after)
        ends = _event_write_ends(item) if item.is_case else [len(item.events)]
        start = done
        for end in ends:
            if end > done:
                steps.append((item.positions[end - 1], item, start, end))
                start = end
    steps.sort(key=lambda s: s[0])
    sealer = cast(Keyring, _Sealer(keyring))
    built: dict[UUID, tuple[Any, int]] = {}
    for _, item, start, end in steps:
        aggregate, applied = built.get(item.id, (None, 0))
        for domain_event in item.events[applied:end]:
            aggregate = domain_event.mutate(aggregate)
        built[item.id] = (aggregate, end)
        opened = {item.id: item.positions[0]} if start == 0 else {}
        saved = {getattr(e, "fact_type", None) or OPENED for e in item.events[start:end]}
        project_aggregates(session, sealer, [aggregate], opened, {item.id: saved})
    return sum(end - start for _, _, start, end in steps)


def _event_write_ends(item: Logged) -> list[int]:
    events = item.events
    return [
        n
        for n in range(1, len(events) + 1)
        if n == len(events) or events[n].recorded_at != events[n - 1].recorded_at
    ]


# ---- helpers ----------------------------------------------------------------------------


class _Later:
    """Stands in for the session while a fill batch is computed: keeps each statement,
    to be run in the batch's transaction. The fill reads nothing from the shadow (each
    case's periods and handovers so far are handed on from step to step)."""

    def __init__(self) -> None:
        self.statements: list[tuple[Any, Any]] = []

    def execute(self, statement: Any, params: Any = None) -> None:
        if isinstance(statement, Select):
            raise RuntimeError("the fill projects from what it holds: it reads nothing")
        self.statements.append((statement, params))


class _Sealer:
    """The keyring, but a view of a person erased since the position being projected is
    sealed with a key made for it and forgotten at once (see the module's docstring)."""

    def __init__(self, keyring: Keyring):
        self._keyring = keyring

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return cast(Callable[..., Any], getattr(self._keyring, name))

    def seal_text(self, case_id: UUID, text: str) -> str:
        if self._keyring.key(case_id) is not None:
            return self._keyring.seal_text(case_id, text)
        nonce = os.urandom(NONCE)
        blob = AESGCM(AESGCM.generate_key(bit_length=256)).encrypt(nonce, text.encode(), None)
        return SEALED_TEXT + base64.b64encode(nonce + blob).decode()
