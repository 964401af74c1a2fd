"""The read side of exchanges: one exchange as recorded (each handover marked as still
standing on its case or not), the list of exchanges, and the answer to a write.

An exchange is seen only by the organisation that recorded it and auditors; the cases
it names that the caller may see are recorded in the read audit (who was handed over,
when, is a person's data).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from domain.errors import ExchangeNotFound
from domain.exchange import Exchange
from domain.ports import Caller, Written
from infrastructure import access, tables
from infrastructure.querying import org_page
from infrastructure.readlog import Reader
from infrastructure.store import Store


class ExchangeReads:
    def __init__(self, store: Store):
        self.store = store
        self.register = store.register

    def written(self, written: Written, key: Caller, reader: Reader | None) -> dict[str, Any]:
        """The answer to an exchange just recorded, each case's version of its fact; for
        a retry, rendered again: a read, given only to a caller who may see the exchange
        now, and recorded in the read audit for the cases it names that they may see."""
        if not written.replayed:
            versions = {str(c.id): c.version for c in written.others}
            return exchange_view(written.aggregate, standing=None, versions=versions)
        exchange = self.register.get_exchange(written.id)
        if not access.owns(key, exchange.recorded_by["org"]):
            raise ExchangeNotFound(written.id)
        with self.store.read() as conn:
            _, versions = self._handover_rows(conn, exchange.id)
        body = exchange_view(exchange, standing=None, versions=versions)
        record_named(self.store, body, key, reader)
        return body

    def exchange(
        self, exchange_id: uuid.UUID, key: Caller | None = None, reader: Reader | None = None
    ) -> dict[str, Any]:
        """The exchange as recorded; the cases it names that the caller may see are
        recorded in the read audit (who was handed over, when, is a person's data)."""
        view = self._exchange_read(exchange_id, key)
        record_named(self.store, view, key, reader)
        return view

    def _exchange_read(self, exchange_id: uuid.UUID, key: Caller | None) -> dict[str, Any]:
        exchange = self.register.get_exchange(exchange_id)
        if not access.owns(key, exchange.recorded_by["org"]):
            raise ExchangeNotFound(exchange_id)
        with self.store.read() as conn:
            standing, versions = self._handover_rows(conn, exchange_id)
        return exchange_view(exchange, standing, versions)

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
        key: Caller | None = None,
        reader: Reader | None = None,
    ) -> tuple[list[Any], str | None]:
        e = tables.exchanges
        of_one = [] if negotiation_id is None else [e.c.negotiation_id == negotiation_id]
        with self.store.read() as conn:
            ids, after = org_page(conn, e, key, limit, cursor, *of_one)
        items = [self._exchange_read(i, None) for i in ids]
        record_named(self.store, items, key, reader)
        return items, after


def exchange_view(
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
        "announced": [_beside(a, recorded["handed_over"], directions) for a in exchange.announced],
        "recorded_at": exchange.recorded_at.isoformat(),
        "recorded_by": exchange.recorded_by,
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


def record_named(store: Store, body: Any, key: Caller | None, reader: Reader | None) -> None:
    """Record in the read audit the cases an answer names that the caller may see."""
    if reader is None or not body:
        return
    named = {uuid.UUID(c) for c in _case_ids_in(body)}
    with store.read() as conn:
        shown = named - access.hidden_among(conn, key, named)
    store.record_read(reader, sorted(shown))


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
