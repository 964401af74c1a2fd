"""The read side of negotiations: one negotiation with its lists, agreements, exchanges
and reconciliation (now, or as the register stood at a point on both time axes), the
list of negotiations, and the answer to a write.

A negotiation is seen only by its own organisation and auditors; the cases its lists
name are shown, counted and recorded in the read audit only when the caller may see
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from domain.errors import NegotiationNotFound
from domain.negotiation import CANDIDATES, CONFIRMED, MATCHED, UNMATCHED, Negotiation
from domain.ports import Caller, Written
from domain.reconciliation import CaseRow, HandoverRow, reconcile
from infrastructure import access, tables
from infrastructure.exchanges import record_named
from infrastructure.querying import CHUNK, When, handover_conditions, org_page
from infrastructure.readlog import Reader
from infrastructure.store import Store


class NegotiationReads:
    def __init__(self, store: Store):
        self.store = store
        self.register = store.register

    # ---- the answer to a write ------------------------------------------------------

    def written(
        self,
        written: Written,
        key: Caller,
        reader: Reader | None,
        party: str | None = None,
        list_version: int | None = None,
        agreement: bool = False,
    ) -> dict[str, Any]:
        """The answer to a write to a negotiation: its summary; with ``party``, with the
        list just submitted (the party's last) or changed (``list_version``); with
        ``agreement``, with the agreement just reached. A retry's answer is
        rendered again from the version the first request wrote: a read, given only to
        a caller who may see the negotiation now, and recorded in the read audit for the
        cases it names that the caller may see."""
        negotiation = self._as_written(written, key)
        if party is not None:
            versions = negotiation.lists[party]
            shown = versions[-1] if list_version is None else versions[list_version - 1]
            body = {**self.summary(negotiation), "list": _render_list(shown)}
        elif agreement:
            body = {**self.summary(negotiation), "agreement": negotiation.agreements[-1]}
        else:
            body = self.summary(negotiation)
        if written.replayed:
            record_named(self.store, body, key, reader)
        return body

    def visible(self, negotiation_id: uuid.UUID, key: Caller | None) -> Negotiation:
        """The negotiation, if the caller's organisation may see it (404 otherwise)."""
        negotiation = self.register.get_negotiation(negotiation_id)
        if not access.owns(key, negotiation.org):
            raise NegotiationNotFound(negotiation_id)
        return negotiation

    def _as_written(self, written: Written, key: Caller) -> Negotiation:
        if not written.replayed:
            negotiation: Negotiation = written.aggregate
            return negotiation
        negotiation = self.register.get_negotiation(written.id, written.version)
        if not access.owns(key, negotiation.org):
            raise NegotiationNotFound(written.id)
        return negotiation

    @staticmethod
    def summary(negotiation: Negotiation) -> dict[str, Any]:
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

    # ---- reads --------------------------------------------------------------------

    def view(
        self,
        negotiation_id: uuid.UUID,
        when: When | None = None,
        key: Caller | None = None,
        reader: Reader | None = None,
    ) -> dict[str, Any]:
        """The negotiation: parties, mediators, each party's current list, agreements,
        its exchanges and the reconciliation; with ``when``, as the register stood then:
        the negotiation's events recorded by ``known_at``, the lists submitted and the
        agreements reached by ``as_of``, handovers and each person's status then."""
        negotiation = self.visible(negotiation_id, key)
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
            ).where(t.c.negotiation_id == negotiation_id, *handover_conditions(when))
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
        key: Caller | None = None,
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
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i : i + CHUNK]
            for r in conn.execute(select(*columns).where(v.c.case_id.in_(chunk), *conditions)):
                out[str(r[0])] = CaseRow(str(r[0]), r[1], r[2], r[3], bool(r[4]))
        return out

    def _held_nationals(
        self,
        conn: Connection,
        parties: list[str],
        when: When | None = None,
        key: Caller | None = None,
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
        self, limit: int, cursor: str | None, key: Caller | None = None
    ) -> tuple[list[Any], str | None]:
        with self.store.read() as conn:
            ids, after = org_page(conn, tables.negotiations, key, limit, cursor)
        return [self.summary(self.register.get_negotiation(i)) for i in ids], after


def _erased_among(conn: Connection, case_ids: set[str]) -> set[str]:
    """Which of these cases' people were erased (by now, whatever the view's time)."""
    e, out = tables.erasures, set[str]()
    ordered = sorted(uuid.UUID(c) for c in case_ids)
    for i in range(0, len(ordered), 500):
        rows = conn.execute(select(e.c.key_id).where(e.c.key_id.in_(ordered[i : i + 500])))
        out.update(str(case_id) for case_id in rows.scalars())
    return out


def _render_list(version: dict[str, Any]) -> dict[str, Any]:
    """A list version as answered: each entry without the id of its sealing key."""
    entries = [{k: v for k, v in e.items() if k != "key"} for e in version["entries"]]
    counts = dict.fromkeys((MATCHED, CONFIRMED, CANDIDATES, UNMATCHED), 0)
    for e in entries:
        counts[e["match"]["result"]] += 1
    return {**version, "entries": entries, "counts": counts}
