"""Exchanges and negotiations on a SQLite file and on PostgreSQL: all or nothing under
concurrency, across processes, and projections that a rebuild from the log reproduces."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select

from domain.exchange import ExchangeRefused
from domain.facts import FactError
from domain.negotiations import SubmitList
from infrastructure import tables
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.matching import match_entries
from infrastructure.rebuild import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.book import Talks as Negotiations
from tests.integration.test_processes import spawn, url_of
from tests.integration.test_store import snapshot_views

PARTY = {"kind": "party", "name": "AZ"}


@pytest.fixture
def worker(store: Store) -> ApiKey:
    return KeyStore(store.engine).create("worker", "case_worker", "org-a")[0]


def held_cases(store: Store, key: ApiKey, count: int, by: str = "AZ") -> list[str]:
    """Invented people, each captured by ``by``; their case ids."""
    casebook = Casebook(store)
    ids = []
    for i in range(count):
        case = casebook.open_case(
            {
                "category": "prisoner_of_war",
                "person": {"family_name": f"Testyan{i}", "nationality": "AM"},
                "source": {"kind": "icrc"},
            },
            key,
        )
        fact = {"type": "captured", "occurred_on": "2021-01-05", "by_party": by, "source": PARTY}
        casebook.record_fact(case.case_id, fact, key)
        ids.append(str(case.case_id))
    return ids


def exchange_of(case_ids: list[str], day: str = "2021-07-03", **extra: object) -> dict:
    return {
        "occurred_on": day,
        "handovers": [
            {"case_id": c, "from_party": "AZ", "to_party": "AM", "outcome": "handed_over"}
            for c in case_ids
        ],
        "source": PARTY,
        **extra,
    }


def test_two_exchanges_of_one_person_in_two_processes_one_wins_whole(settings: Settings):
    store = Store(settings)
    key = KeyStore(store.engine).create("opener", "case_worker", "org-a")[0]
    shared, *others = held_cases(store, key, 3)
    store.close()
    start_at = time.time() + 3
    racers = [
        spawn("exchange", url_of(settings), f"{shared},{other}", str(start_at), f"racer-{i}")
        for i, other in enumerate(others)
    ]
    results = [p.communicate(timeout=60)[0].strip() for p in racers]
    assert sorted(r.split()[0] for r in results) == ["ok", "refused"], results
    loser = others[[r.startswith("refused") for r in results].index(True)]
    winner = others[[r.startswith("ok") for r in results].index(True)]
    assert results[[r.startswith("refused") for r in results].index(True)] == f"refused {shared}"
    store = Store(settings)
    try:
        register = store.register
        assert register.get_case(uuid.UUID(shared)).state().status == "repatriated"
        assert register.get_case(uuid.UUID(winner)).state().status == "repatriated"
        # the refused exchange left no trace on its other case, nor anywhere else
        assert register.get_case(uuid.UUID(loser)).state().status == "held"
        assert register.get_case(uuid.UUID(loser)).version == 2
        with store.read() as conn:
            assert len(conn.execute(select(tables.exchanges)).all()) == 1
    finally:
        store.close()


def test_a_refused_exchange_writes_nothing_at_all(store: Store, worker: ApiKey):
    ids = held_cases(store, worker, 3)
    Casebook(store).record_fact(
        uuid.UUID(ids[2]), {"type": "died", "occurred_on": "2021-02-01", "source": PARTY}, worker
    )
    before = store.max_notification_id(), snapshot_views(store)
    with pytest.raises(ExchangeRefused) as refused:
        Negotiations(store).record_exchange(exchange_of(ids), worker, None)
    assert [str(p.case_id) for p in refused.value.problems] == [ids[2]]
    assert (store.max_notification_id(), snapshot_views(store)) == before
    with store.read() as conn:
        assert conn.execute(select(tables.handovers)).all() == []


def snapshot_negotiations(store: Store) -> list:
    """Every row of the negotiation and exchange projections, without surrogate ids."""
    out = []
    with store.read() as conn:
        for t in (
            tables.negotiations,
            tables.negotiation_cases,
            tables.exchanges,
            tables.handovers,
            tables.case_access,
        ):
            columns = [c for c in t.c if c.name != "id"]
            out.append(conn.execute(select(*columns).order_by(*columns)).all())
    return out


def test_a_rebuild_reproduces_negotiations_exchanges_and_handovers(store: Store, worker: ApiKey):
    ids = held_cases(store, worker, 6)
    negotiations, casebook = Negotiations(store), Casebook(store)
    opened = negotiations.open(
        {
            "title": "Talks",
            "parties": ["AM", "AZ"],
            "mediators": ["RU"],
            "principle": "all_for_all",
            "opened_on": "2021-06-01",
        },
        worker,
        None,
    )
    nid = opened.case_id
    entries = [{"case_id": c} for c in ids[:4]] + [{"name": "Testyan5"}, {"name": "Nobodyan Z"}]
    negotiations.submit_list(
        nid,
        {"submitted_by": "AM", "submitted_on": "2021-06-02", "entries": entries},
        worker,
        None,
        None,
    )
    negotiations.agree(
        nid,
        {
            "agreed_on": "2021-06-20",
            "transfers": [{"case_id": c, "from_party": "AZ", "to_party": "AM"} for c in ids[:3]],
            "consideration": [{"from_party": "AM", "to_party": "AZ", "description": "maps"}],
        },
        worker,
        None,
        None,
    )
    first = negotiations.record_exchange(
        exchange_of(ids[:2], negotiation_id=str(nid), agreement=1), worker, None
    )
    negotiations.record_exchange(exchange_of(ids[2:3], "2021-07-10"), worker, None)
    version = first.view["handovers"][0]["version"]
    casebook.record_fact(
        uuid.UUID(ids[0]),
        {"type": "retracted", "version": version, "reason": "wrong person", "source": PARTY},
        worker,
    )
    live = snapshot_views(store), snapshot_negotiations(store)
    reconciliation = negotiations.view(nid)["reconciliation"]
    assert [e["case_id"] for e in reconciliation["handed_over"]] == [ids[1]]
    assert len(live[1][3]) == 3  # three handover rows, one of them closed by the retraction
    with store.write() as unit:  # spoil the projections to see the rebuild mend them
        for table in (tables.handovers, tables.negotiation_cases, tables.exchanges):
            unit.session.execute(table.delete())
    rebuild(store)
    assert (snapshot_views(store), snapshot_negotiations(store)) == live
    assert negotiations.view(nid)["reconciliation"] == reconciliation


def test_cases_recorded_before_organisations_get_their_owner_at_start(
    settings: Settings, store: Store, worker: ApiKey
):
    [case_id] = held_cases(store, worker, 1)
    with store.write() as unit:  # as a register from before organisations has it
        unit.session.execute(tables.case_access.delete())
    Store(settings).close()  # a start backfills
    with store.read() as conn:
        rows = conn.execute(select(tables.case_access)).all()
    assert [(str(r.case_id), r.org, r.via) for r in rows] == [(case_id, "org-a", "owner")]


def test_a_list_matched_before_a_share_ended_cannot_name_the_case_after(store: Store):
    """Matching runs before the write lock; when the share that let the caller see a
    case ends meanwhile, the list is refused naming the entry, and nothing is written."""
    keys = KeyStore(store.engine)
    owner = keys.create("owner", "case_worker", "org-a")[0]
    other = keys.create("other", "case_worker", "org-b")[0]
    casebook, talks = Casebook(store), Negotiations(store)
    case_id = held_cases(store, owner, 1)[0]
    casebook.share(uuid.UUID(case_id), "org-b", owner, "tracing")
    negotiation = talks.open(
        {
            "title": "Talks",
            "parties": ["AM", "AZ"],
            "principle": "all_for_all",
            "opened_on": "2021-06-01",
        },
        other,
    )
    listed = SubmitList(negotiation.id, "AM", date(2021, 6, 2), [{"case_id": case_id}])
    with store.snapshot() as conn:  # matched while org-b could see the case
        entries = match_entries(conn, store.keyring, listed.entries, other)
    casebook.share(uuid.UUID(case_id), "org-b", owner)  # the share ends
    with pytest.raises(FactError) as refused:
        store.register.submit_list(replace(listed, entries=entries), other)
    assert refused.value.errors == {"entries[0].case_id": "no such case"}
    assert store.register.get_negotiation(negotiation.id).version == 1
