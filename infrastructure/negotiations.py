"""Negotiations and exchanges as the API sees them: each write in one transaction.

Like ``infrastructure.service`` for cases: a write takes the register's write lock,
answers a retried request from its idempotency record, runs one domain command, writes
the projections (the negotiation's and exchange's rows, and for an exchange every case's
view, periods and handover rows), and commits it all or nothing. Reads answer from the
aggregates (kept in the register's cache) and the projection tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from domain.case import Stamp
from domain.exchange import Exchange
from domain.facts import FactError
from domain.input import parse_agreement, parse_exchange, parse_list, parse_negotiation
from domain.negotiation import (
    CANDIDATES,
    CONFIRMED,
    MATCHED,
    UNMATCHED,
    CaseRow,
    HandoverRow,
    Negotiation,
    reconcile,
)
from domain.register import CaseNotFound, ExchangeNotFound, NegotiationNotFound
from infrastructure import access, tables
from infrastructure.keys import ApiKey
from infrastructure.matching import NameEntry, RegisterIndex, match_names
from infrastructure.readlog import Reader
from infrastructure.service import (
    Idempotency,
    When,
    Written,
    decode_cursor,
    encode_cursor,
    remember,
    remembered,
)
from infrastructure.store import Store, WriteUnit

_CHUNK = 500


def _today() -> Any:
    return datetime.now(UTC).date()


class Negotiations:
    """Negotiations, their lists, matches and agreements; exchanges; their reports."""

    def __init__(self, store: Store):
        self.store = store
        self.register = store.register

    # ---- writes -------------------------------------------------------------------

    def open(
        self,
        payload: dict[str, Any],
        key: ApiKey,
        idem: Idempotency | None,
        reader: Reader | None = None,
    ) -> Written:
        fields = parse_negotiation(payload, _today())

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            negotiation, _ = self.register.open_negotiation(uuid.uuid4(), stamp=stamp, **fields)
            return Written(201, negotiation.id, negotiation.version, self.summary(negotiation))

        return self._write(key, idem, command, reader)

    def submit_list(
        self,
        negotiation_id: uuid.UUID,
        payload: dict[str, Any],
        key: ApiKey,
        expected: int | None,
        idem: Idempotency | None,
        reader: Reader | None = None,
    ) -> Written:
        party, submitted_on, entries = parse_list(payload, _today())
        # Matching takes seconds for a long list: it reads a snapshot before the write
        # lock is taken, so other writers do not wait for it. Cases are never deleted,
        # so whatever it finds still exists when the list is recorded.
        self._owned(negotiation_id, key)
        with self.store.snapshot() as conn:
            self._match(conn, entries, key)

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            negotiation, _, _ = self.register.submit_list(
                negotiation_id, party, submitted_on, entries, stamp, expected
            )
            body = self._list_answer(negotiation, party)
            return Written(201, negotiation.id, negotiation.version, body)

        return self._write(key, idem, command, reader)

    def _owned(self, negotiation_id: uuid.UUID, key: ApiKey | None) -> Negotiation:
        """The negotiation, if the caller's organisation may see it (404 otherwise)."""
        negotiation = self.register.get_negotiation(negotiation_id)
        if not access.owns(key, negotiation.org):
            raise NegotiationNotFound(negotiation_id)
        return negotiation

    def _match(self, session: Any, entries: list[dict[str, Any]], key: ApiKey) -> None:
        """Give every entry its match: by case id (which must exist and be one the
        caller may see), or by name, against the cases the caller may see."""
        missing = {}
        by_id = [(i, e) for i, e in enumerate(entries) if "case_id" in e]
        ids = [uuid.UUID(e["case_id"]) for _, e in by_id]
        hidden = {str(c) for c in access.hidden_among(session, key, ids)}
        known = self._existing_cases(session, ids) - hidden
        for i, entry in by_id:
            if entry["case_id"] not in known:
                missing[f"entries[{i}].case_id"] = "no such case"
            entry["match"] = {"result": MATCHED, "case_id": entry["case_id"], "by": "case_id"}
        if missing:
            raise FactError(missing)
        named = [e for e in entries if "name" in e]
        results = match_names(
            [NameEntry(e["name"], e.get("date_of_birth"), e.get("nationality")) for e in named],
            RegisterIndex(session, self.store.keyring, None if access.sees_all(key) else key.org),
        )
        for entry, result in zip(named, results, strict=True):
            entry["match"] = result

    @staticmethod
    def _existing_cases(session: Any, case_ids: list[uuid.UUID]) -> set[str]:
        v = tables.case_views
        found: set[str] = set()
        for i in range(0, len(case_ids), _CHUNK):
            chunk = case_ids[i : i + _CHUNK]
            found.update(
                str(c)
                for c in session.execute(
                    select(v.c.case_id).where(v.c.case_id.in_(chunk))
                ).scalars()
            )
        return found

    def confirm(
        self,
        negotiation_id: uuid.UUID,
        payload: dict[str, Any],
        key: ApiKey,
        idem: Idempotency | None,
        expected: int | None = None,
        reader: Reader | None = None,
    ) -> Written:
        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            self._owned(negotiation_id, key)
            if not access.can_see(unit.session, key, payload["case_id"]):
                raise CaseNotFound(payload["case_id"])
            negotiation, _, _ = self.register.confirm_match(
                negotiation_id,
                payload["party"],
                payload["list_version"],
                payload["entry"],
                payload["case_id"],
                stamp,
                expected,
            )
            body = self._list_answer(negotiation, payload["party"], payload["list_version"])
            return Written(201, negotiation.id, negotiation.version, body)

        return self._write(key, idem, command, reader)

    def agree(
        self,
        negotiation_id: uuid.UUID,
        payload: dict[str, Any],
        key: ApiKey,
        expected: int | None,
        idem: Idempotency | None,
        reader: Reader | None = None,
    ) -> Written:
        fields = parse_agreement(payload, _today())

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            self._owned(negotiation_id, key)
            named = [uuid.UUID(t["case_id"]) for t in fields["transfers"]]
            hidden = {str(c) for c in access.hidden_among(unit.session, key, named)}
            unseen = {
                f"transfers[{i}].case_id": "no such case"
                for i, t in enumerate(fields["transfers"])
                if t["case_id"] in hidden
            }
            if unseen:
                raise FactError(unseen)
            negotiation, _, _ = self.register.agree(
                negotiation_id, stamp=stamp, expected_version=expected, **fields
            )
            body = self._agreement_answer(negotiation)
            return Written(201, negotiation.id, negotiation.version, body)

        return self._write(key, idem, command, reader)

    def record_exchange(
        self,
        payload: dict[str, Any],
        key: ApiKey,
        idem: Idempotency | None,
        reader: Reader | None = None,
    ) -> Written:
        new = parse_exchange(payload, _today())

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            if new.negotiation_id is not None:
                self._owned(new.negotiation_id, key)
            hidden = access.hidden_among(unit.session, key, [h.case_id for h in new.handovers])
            exchange, cases, _ = self.register.record_exchange(uuid.uuid4(), new, stamp, hidden)
            versions = {str(c.id): c.version for c in cases}
            body = self._exchange_view(exchange, standing=None, versions=versions)
            return Written(201, exchange.id, exchange.version, body)

        return self._write(key, idem, command, reader)

    def _write(
        self,
        key: ApiKey,
        idem: Idempotency | None,
        command: Callable[[WriteUnit, Stamp], Written],
        reader: Reader | None = None,
    ) -> Written:
        """Run one write in the register's write transaction and keep what it wrote
        for retries; a retry is answered from that record (``_replayed``)."""
        with self.store.write() as unit:
            first = remembered(unit.session, key, idem)
            if first is None:
                written = command(unit, Stamp(unit.recorded_at, key.name, key.org))
                remember(unit.session, key, idem, written.status_code, written.id, written.version)
                return written
        return self._replayed(first, key, reader)

    def _replayed(self, row: Any, key: ApiKey, reader: Reader | None) -> Written:
        """The first answer to a retried write, re-rendered from what it recorded. It is
        a read: given only to a caller who may see the negotiation or exchange now, and
        recorded in the read audit for the cases it names that the caller may see, as
        reading the record would be (503 when that cannot be)."""
        aggregate = self.register._get(row.aggregate_id, row.version)
        org = aggregate.recorded_by["org"] if isinstance(aggregate, Exchange) else aggregate.org
        if not access.owns(key, org):
            raise (ExchangeNotFound if isinstance(aggregate, Exchange) else NegotiationNotFound)(
                aggregate.id
            )
        if isinstance(aggregate, Exchange):
            with self.store.read() as conn:
                _, versions = self._handover_rows(conn, aggregate.id)
            body = self._exchange_view(aggregate, standing=None, versions=versions)
        else:
            events = self.register.events.get(row.aggregate_id, gt=row.version - 1, lte=row.version)
            last: Any = next(iter(events))
            if isinstance(last, Negotiation.Opened):
                body = self.summary(aggregate)
            elif isinstance(last, Negotiation.AgreementReached):
                body = self._agreement_answer(aggregate)
            else:  # a list just submitted (the last recorded), or a confirmation
                body = self._list_answer(aggregate, last.party, getattr(last, "list_version", None))
        self._record_named(body, key, reader)
        return Written(row.status_code, aggregate.id, aggregate.version, body)

    def _record_named(self, body: Any, key: ApiKey | None, reader: Reader | None) -> None:
        """Record in the read audit the cases an answer names that the caller may see."""
        if reader is None or not body:
            return
        named = {uuid.UUID(c) for c in _case_ids_in(body)}
        with self.store.read() as conn:
            shown = named - access.hidden_among(conn, key, named)
        self.store.record_read(reader, sorted(shown))

    # ---- rendering ----------------------------------------------------------------

    def summary(self, negotiation: Negotiation) -> dict[str, Any]:
        """The negotiation without its entries and reconciliation."""
        return {
            "id": str(negotiation.id),
            "version": negotiation.version,
            "title": negotiation.title,
            "parties": negotiation.parties,
            "mediators": negotiation.mediators,
            "principle": negotiation.principle,
            "opened_on": negotiation.opened_on.isoformat(),
            "lists": {
                party: {
                    "list_version": current["list_version"],
                    "submitted_on": current["submitted_on"],
                    "entries": len(current["entries"]),
                }
                for party in sorted(negotiation.lists)
                if (current := negotiation.current_list(party)) is not None
            },
            "agreements": len(negotiation.agreements),
            "opened_at": negotiation.opened_at.isoformat(),
            "updated_at": negotiation.updated_at.isoformat(),
        }

    def _list_answer(
        self, negotiation: Negotiation, party: str, list_version: int | None = None
    ) -> dict[str, Any]:
        """A list just submitted (the party's last recorded) or changed (``list_version``):
        each entry with its match result."""
        versions = negotiation.lists[party]
        written = versions[-1] if list_version is None else versions[list_version - 1]
        return {**self.summary(negotiation), "list": _render_list(written)}

    def _agreement_answer(self, negotiation: Negotiation) -> dict[str, Any]:
        return {**self.summary(negotiation), "agreement": negotiation.agreements[-1]}

    # ---- reads --------------------------------------------------------------------

    def view(
        self,
        negotiation_id: uuid.UUID,
        when: When | None = None,
        key: ApiKey | None = None,
        reader: Reader | None = None,
    ) -> dict[str, Any]:
        """The negotiation: parties, mediators, each party's current list, agreements,
        its exchanges and the reconciliation; with ``when``, as the register stood then:
        the negotiation's events recorded by ``known_at``, the lists submitted and the
        agreements reached by ``as_of``, handovers and each person's status then."""
        negotiation = self._owned(negotiation_id, key)
        if when is not None and when.known_at is not None:
            version = negotiation.version_known_at(when.known_at)
            if version == 0:
                raise NegotiationNotFound(negotiation_id)  # nobody knew of it then
            negotiation = self.register.get_negotiation(negotiation_id, version)
        if when is not None and when.as_of is not None:
            negotiation = negotiation.as_of(when.as_of)
        with self.store.snapshot() as conn:
            if when is not None and when.known_at is not None:
                negotiation = negotiation.forgetting(_erased_among(conn, negotiation.mentions()))
            handovers = self._handovers(conn, negotiation_id, when)
            named = (
                set(negotiation.case_ids())
                | negotiation.candidate_ids()
                | {h.case_id for h in handovers}
            )
            cases = self._case_rows(conn, named, when, key)
            cases.update(self._held_nationals(conn, negotiation.parties, when, key))
            exchanges = self._exchange_ids(conn, negotiation_id, when)
        out = {
            **self.summary(negotiation),
            "lists": {
                party: _render_list(current)
                for party in sorted(negotiation.lists)
                if (current := negotiation.current_list(party)) is not None
            },
            "agreements": negotiation.agreements,
            "exchanges": exchanges,
            "reconciliation": reconcile(negotiation, handovers, cases),
        }
        if when is not None:
            out.update(when.as_dict())
        # The lists name these people: their reads are recorded like any other.
        shown = sorted(uuid.UUID(c) for c in named if c in cases)
        self.store.record_read(reader, shown)
        return out

    @staticmethod
    def _handovers(
        conn: Connection, negotiation_id: uuid.UUID, when: When | None = None
    ) -> list[HandoverRow]:
        t = tables.handovers
        rows = conn.execute(
            select(
                t.c.case_id,
                t.c.outcome,
                t.c.exchange_id,
                t.c.occurred_on,
                t.c.from_party,
                t.c.to_party,
                t.c.willingness,
                t.c.recorded_from,
            ).where(t.c.negotiation_id == negotiation_id, *_handover_conditions(when))
        )
        return [HandoverRow(str(r[0]), r[1], str(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    @staticmethod
    def _status_table(when: When | None) -> tuple[Any, list[Any]]:
        """Where each person's status is read: the live views, or (``when``) the
        bitemporal periods at that point on both axes."""
        if when is None:
            return tables.case_views, []
        return tables.case_periods, when.conditions()

    def _case_rows(
        self,
        conn: Connection,
        case_ids: Iterable[str],
        when: When | None = None,
        key: ApiKey | None = None,
    ) -> dict[str, CaseRow]:
        """The status of each case the caller may see (the others are left out, so
        that no total counts them)."""
        v, conditions = self._status_table(when)
        visible = access.visible_ids(key)
        if visible is not None:
            conditions = [*conditions, v.c.case_id.in_(visible)]
        ids = sorted(uuid.UUID(c) for c in case_ids)
        out: dict[str, CaseRow] = {}
        columns = (v.c.case_id, v.c.status, v.c.held_by, v.c.nationality, v.c.disputed)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            for r in conn.execute(select(*columns).where(v.c.case_id.in_(chunk), *conditions)):
                out[str(r[0])] = CaseRow(str(r[0]), r[1], r[2], r[3], bool(r[4]))
        return out

    def _held_nationals(
        self,
        conn: Connection,
        parties: list[str],
        when: When | None = None,
        key: ApiKey | None = None,
    ) -> dict[str, CaseRow]:
        """Everyone held by one party who is a national of another (whom the caller
        may see)."""
        v, conditions = self._status_table(when)
        visible = access.visible_ids(key)
        if visible is not None:
            conditions = [*conditions, v.c.case_id.in_(visible)]
        rows = conn.execute(
            select(v.c.case_id, v.c.status, v.c.held_by, v.c.nationality, v.c.disputed).where(
                v.c.status.in_(("held", "hospitalised")),
                v.c.held_by.in_(parties),
                v.c.nationality.in_(parties),
                v.c.nationality != v.c.held_by,
                *conditions,
            )
        )
        return {str(r[0]): CaseRow(str(r[0]), r[1], r[2], r[3], bool(r[4])) for r in rows}

    @staticmethod
    def _exchange_ids(
        conn: Connection, negotiation_id: uuid.UUID, when: When | None = None
    ) -> list[dict[str, str]]:
        e = tables.exchanges
        query = select(e.c.exchange_id, e.c.occurred_on).where(e.c.negotiation_id == negotiation_id)
        if when is not None and when.as_of is not None:
            query = query.where(e.c.occurred_on <= when.as_of)
        if when is not None and when.known_at is not None:
            query = query.where(e.c.recorded_at <= when.known_at)
        rows = conn.execute(query.order_by(e.c.seq))
        return [{"id": str(r[0]), "occurred_on": r[1].isoformat()} for r in rows]

    def list_negotiations(
        self, limit: int, cursor: str | None, key: ApiKey | None = None
    ) -> tuple[list[Any], str | None]:
        t = tables.negotiations
        after = decode_cursor(cursor, "s")
        query = select(t.c.negotiation_id, t.c.seq).where(t.c.seq > after)
        if not access.sees_all(key):
            assert key is not None
            query = query.where(t.c.org == key.org)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(t.c.seq).limit(limit + 1)).all()
        items = [self.summary(self.register.get_negotiation(r[0])) for r in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor("s", rows[limit - 1][1]) if more else None

    def exchange(
        self, exchange_id: uuid.UUID, key: ApiKey | None = None, reader: Reader | None = None
    ) -> dict[str, Any]:
        """The exchange as recorded; the cases it names that the caller may see are
        recorded in the read audit (who was handed over, when, is a person's data)."""
        view = self._exchange_read(exchange_id, key)
        self._record_named(view, key, reader)
        return view

    def _exchange_read(self, exchange_id: uuid.UUID, key: ApiKey | None) -> dict[str, Any]:
        exchange = self.register.get_exchange(exchange_id)
        if not access.owns(key, exchange.recorded_by["org"]):
            raise ExchangeNotFound(exchange_id)
        with self.store.read() as conn:
            standing, versions = self._handover_rows(conn, exchange_id)
        return self._exchange_view(exchange, standing, versions)

    @staticmethod
    def _handover_rows(conn: Connection, exchange_id: uuid.UUID) -> tuple[set[str], dict[str, int]]:
        """The cases whose fact of this exchange still stands, and each case's version
        of that fact (standing or retracted since)."""
        t = tables.handovers
        rows = conn.execute(
            select(t.c.case_id, t.c.version, t.c.recorded_to).where(t.c.exchange_id == exchange_id)
        )
        standing, versions = set(), {}
        for case_id, version, recorded_to in rows:
            versions[str(case_id)] = version
            if recorded_to is None:
                standing.add(str(case_id))
        return standing, versions

    def list_exchanges(
        self,
        negotiation_id: uuid.UUID | None,
        limit: int,
        cursor: str | None,
        key: ApiKey | None = None,
        reader: Reader | None = None,
    ) -> tuple[list[Any], str | None]:
        e = tables.exchanges
        after = decode_cursor(cursor, "s")
        query = select(e.c.exchange_id, e.c.seq).where(e.c.seq > after)
        if not access.sees_all(key):
            assert key is not None
            query = query.where(e.c.org == key.org)
        if negotiation_id is not None:
            query = query.where(e.c.negotiation_id == negotiation_id)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(e.c.seq).limit(limit + 1)).all()
        items = [self._exchange_read(r[0], None) for r in rows[:limit]]
        self._record_named(items, key, reader)
        more = len(rows) > limit
        return items, encode_cursor("s", rows[limit - 1][1]) if more else None

    @staticmethod
    def _exchange_view(
        exchange: Exchange,
        standing: set[str] | None,
        versions: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """The exchange as recorded, each handover marked as still standing on its case
        (a retraction on the case undoes it), the counts recorded, and each party's
        announced figure beside them."""
        handovers = []
        for h in exchange.handovers:
            item = dict(h)
            item["standing"] = standing is None or h["case_id"] in standing
            if versions is not None and h["case_id"] in versions:
                item["version"] = versions[h["case_id"]]
            handovers.append(item)
        recorded = exchange.counts()
        directions: dict[tuple[str, str], int] = {}
        for h in exchange.handovers:
            if h["outcome"] == "handed_over":
                pair = (h["from_party"], h["to_party"])
                directions[pair] = directions.get(pair, 0) + 1
        return {
            "id": str(exchange.id),
            "negotiation_id": exchange.negotiation_id,
            "agreement": exchange.agreement,
            "occurred_on": exchange.occurred_on.isoformat(),
            "place": exchange.place,
            "mediators": exchange.mediators,
            "handovers": handovers,
            "consideration": exchange.consideration,
            "source": exchange.source,
            "recorded": {
                **recorded,
                "by_direction": [
                    {"from_party": f, "to_party": t, "handed_over": n}
                    for (f, t), n in sorted(directions.items())
                ],
            },
            "announced": [
                _beside(a, recorded["handed_over"], directions) for a in exchange.announced
            ],
            "recorded_at": exchange.recorded_at.isoformat(),
            "recorded_by": exchange.recorded_by,
        }

    # ---- reports ------------------------------------------------------------------

    def report(
        self, as_of: Any = None, known_at: datetime | None = None, key: ApiKey | None = None
    ) -> dict[str, Any]:
        """Exchanges per party and direction, and persons returned per negotiation, as
        of a world day and as known at an instant (both default to now). ``returned``
        counts the people handed over to the party of their nationality (as the case
        says now); ``handed_over`` counts everyone handed over, to a third country too."""
        t = tables.handovers
        conditions = _handover_conditions(When(as_of, known_at))
        visible = access.visible_ids(key)
        if visible is not None:  # only the people the caller may see count
            conditions.append(t.c.case_id.in_(visible))
        handed = func.sum(case((t.c.outcome == "handed_over", 1), else_=0))
        refused = func.sum(case((t.c.outcome == "refused", 1), else_=0))
        absent = func.sum(case((t.c.outcome == "absent", 1), else_=0))
        with self.store.snapshot() as conn:
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
                {"negotiation_id": str(r[0]), "returned": r[1], "handed_over": r[2]}
                for r in returned
            ],
        }


def _beside(
    announced: dict[str, Any], total: int, directions: dict[tuple[str, str], int]
) -> dict[str, Any]:
    """A party's announced figure with the recorded count it is about: the people handed
    over in the direction it names (from_party and/or to_party), else all of them."""
    start, end = announced.get("from_party"), announced.get("to_party")
    if start is None and end is None:
        recorded = total
    else:
        recorded = sum(
            n for (f, t), n in directions.items() if start in (None, f) and end in (None, t)
        )
    return {**announced, "recorded": recorded, "difference": announced["count"] - recorded}


def _handover_conditions(when: When | None) -> list[ColumnElement[bool]]:
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


def _erased_among(conn: Connection, case_ids: set[str]) -> set[str]:
    """Which of these cases' people were erased (by now, whatever the view's time)."""
    e, out = tables.erasures, set[str]()
    ordered = sorted(uuid.UUID(c) for c in case_ids)
    for i in range(0, len(ordered), 500):
        rows = conn.execute(select(e.c.key_id).where(e.c.key_id.in_(ordered[i : i + 500])))
        out.update(str(case_id) for case_id in rows.scalars())
    return out


def _case_ids_in(value: Any) -> set[str]:
    """Every case id an answer carries (under a ``case_id`` key, at any depth)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "case_id" and isinstance(v, str):
                found.add(v)
            else:
                found |= _case_ids_in(v)
    elif isinstance(value, list):
        for item in value:
            found |= _case_ids_in(item)
    return found


def _render_list(version: dict[str, Any]) -> dict[str, Any]:
    """A list version as answered: each entry without the id of its sealing key."""
    entries = [{k: v for k, v in e.items() if k != "key"} for e in version["entries"]]
    counts = dict.fromkeys((MATCHED, CONFIRMED, CANDIDATES, UNMATCHED), 0)
    for e in entries:
        counts[e["match"]["result"]] += 1
    return {**version, "entries": entries, "counts": counts}
