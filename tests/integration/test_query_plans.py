"""The statements every request or write runs for one case find their rows through an
index, on SQLite and PostgreSQL: none reads a whole table, so each stays as fast with a
million people as with ten. The plans are asked of the database itself (SQLite's
``EXPLAIN QUERY PLAN``; PostgreSQL's ``EXPLAIN`` with sequential scans priced out, so
that an empty test table still shows whether an index could serve).

So do the pages of a list, filtered by a column or not, for a case worker (whose
organisation's access is checked row by row), now and as of a past day (each case's
period then checked on the case's own periods); a full-name search's candidates (by
name key); and the summary's counts, now and as of a day, read from the kept counts
(``infrastructure.counts``), not from the cases.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import pytest
from sqlalchemy import select

from infrastructure import access, counts, retention, tables, views
from infrastructure.cases import CaseReads
from infrastructure.projections import _CURRENT_PERIODS
from infrastructure.querying import When
from infrastructure.store import HEAD_AND_EPOCH, Store

CASE = uuid.uuid4()
# One row whatever the register's size: reading it whole is reading one row.
SINGLE_ROW_TABLES = {tables.register_head.name}


def _hot_statements(store: Store) -> dict[str, tuple[Any, dict[str, Any]]]:
    events, chain, log, keys = (
        store.events_table,
        tables.chain,
        tables.access_log,
        tables.case_name_keys,
    )
    return {
        "GET /cases/{id}: the view, its visibility, negotiations, erasures": (
            views.ONE_VIEW,
            {"case_id": CASE, "org": "org-a"},
        ),
        "the access check of a write": (access._CAN_SEE, {"case_id": CASE, "org": "org-a"}),
        "the negotiations naming a case": (
            views._NAMING_FOR_ORG,
            {"case_id": CASE, "org": "org-a"},
        ),
        "a case's current periods": (_CURRENT_PERIODS, {"case_id": CASE}),
        "the head of a write": (HEAD_AND_EPOCH, {}),
        "a case's events after its cached version": (
            select(events).where(events.c.originator_id == CASE, events.c.originator_version > 3),
            {},
        ),
        "a case's links in the chain (history)": (
            select(chain.c.version, chain.c.hash).where(chain.c.case_id == CASE),
            {},
        ),
        "the reads of a case": (
            select(log).where(log.c.case_id == CASE, log.c.id > 0).order_by(log.c.id).limit(50),
            {},
        ),
        "a search's candidates by name key": (
            select(keys.c.case_id).where(keys.c.key.in_(["k1", "k2"])).distinct(),
            {},
        ),
        "a retried request's record": (
            select(tables.idempotency).where(
                tables.idempotency.c.api_key_id == CASE, tables.idempotency.c.idem_key == "k"
            ),
            {},
        ),
        "an API key not seen before": (
            select(tables.api_keys).where(tables.api_keys.c.key_hash == "h"),
            {},
        ),
        "a page of the cases a case worker may see": (_page({}), {}),
        "a page held by one party": (_page({"held_by": "AZ"}), {}),
        "a page with one status": (_page({"status": "held"}), {}),
        "a page of one nationality": (_page({"nationality": "AM"}), {}),
        "a page for an organisation that sees few cases": (_page({}, None, few=True), {}),
        "a page as of a past day": (_page({}, When(date(2022, 1, 1))), {}),
        "a page held by one party as of a past day": (
            _page({"held_by": "AZ"}, When(date(2022, 1, 1))),
            {},
        ),
        "a page as of a day as known at an instant": (
            _page({"status": "held"}, When(date(2022, 1, 1), datetime(2023, 1, 1, tzinfo=UTC))),
            {},
        ),
        "the summary's counts": (counts.query("org-a", "held_by"), {}),
        "the summary's counts as of a day": (
            counts.query("org-a", "held_by", date(2022, 1, 1)),
            {},
        ),
    }


class _Worker:
    """A case worker of one organisation, as the access rules see one."""

    role, org = "case_worker", "org-a"


def _page(filters: dict[str, Any], when: When | None = None, few: bool = False) -> Any:
    """The statement of a list's page, as ``GET /cases`` runs it, 200 pages in."""
    query = CaseReads.list_query(filters, when, _Worker(), few)
    return CaseReads.page_query(query, 10_000, 50)


def _plan(store: Store, statement: Any, params: dict[str, Any]) -> list[str]:
    """The database's plan for ``statement``, a line per step."""
    compiled = statement.compile(
        dialect=store.engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    # The values as the driver takes them (a UUID as SQLite stores it, for one).
    processors = compiled._bind_processors
    values = {
        name: processors[name](value) if name in processors and value is not None else value
        for name, value in compiled.construct_params(params).items()
    }
    bound: Any = (
        tuple(values[n] for n in compiled.positiontup or ()) if compiled.positional else values
    )
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", bound)
            return [row[-1] for row in rows]
        conn.exec_driver_sql("SET enable_seqscan = off")
        return [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", bound)]


def _full_scans(store: Store, plan: list[str]) -> list[str]:
    pattern = r"^SCAN (\w+)" if store.dialect == "sqlite" else r"Seq Scan on (\w+)"
    found = [re.search(pattern, line.strip()) for line in plan]
    return [m.group(1) for m in found if m and m.group(1) not in SINGLE_ROW_TABLES]


def test_the_statements_of_one_case_read_no_whole_table(store: Store):
    scans = {
        name: scanned
        for name, (statement, params) in _hot_statements(store).items()
        if (scanned := _full_scans(store, _plan(store, statement, params)))
    }
    assert scans == {}


def _prune_statements() -> dict[str, Any]:
    """``casebook prune``'s statements (``infrastructure.retention``) for each kind: how
    many are past their time, the oldest batch, and its deletion."""
    cutoff = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [_Row(7, datetime(2019, 1, 1, tzinfo=UTC)), _Row(8, datetime(2019, 2, 1, tzinfo=UTC))]
    found: dict[str, Any] = {}
    for kind in retention.KINDS:
        found[f"the {kind.name} records past their time"] = retention.past(kind, cutoff)
        found[f"the oldest {kind.name} records"] = retention.oldest(kind, cutoff, 2000)
        found[f"a batch of {kind.name} records removed"] = retention.removing(kind, rows, cutoff)
    return found


class _Row(NamedTuple):
    """A row as ``retention.oldest`` returns it: its key, then its stamp."""

    key: int
    stamp: datetime


def test_a_prune_reads_only_the_rows_past_their_time(store: Store):
    """At a million reads, a prune finds its oldest batch by the stamps' index and
    deletes it by key or stamp range, never reading the whole table."""
    scans = {
        name: scanned
        for name, statement in _prune_statements().items()
        if (scanned := _full_scans(store, _plan(store, statement, {})))
    }
    assert scans == {}


def test_the_plan_check_sees_a_full_scan(store: Store):
    """The check itself can fail: a filter on a column no index covers is a scan."""
    unindexed = select(tables.case_views).where(tables.case_views.c.version == 7)
    assert _full_scans(store, _plan(store, unindexed, {})) == [tables.case_views.name]


@pytest.mark.parametrize(
    "name", ["GET /cases/{id}: the view, its visibility, negotiations, erasures"]
)
def test_a_plan_is_read_from_the_database(store: Store, name: str):
    statement, params = _hot_statements(store)[name]
    plan = _plan(store, statement, params)
    assert any(tables.case_views.name in line for line in plan)
