"""Bulk opening (``Register.open_cases``): many people, each with their facts, in one
write, under the same rules, sealing, chain and projections as single writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from domain.case import NewFact
from domain.cases import NewPerson, OpenCase
from domain.errors import BulkRefused
from domain.identity import Identity
from domain.input import parse_fact
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.rebuild import rebuild
from infrastructure.store import Store
from tests.book import Book
from tests.integration.test_store import snapshot_views

SOURCE = {"kind": "icrc"}


@pytest.fixture
def worker(store: Store) -> ApiKey:
    return KeyStore(store.engine).create("worker", "case_worker", "org-a")[0]


def fact(payload: dict) -> NewFact:
    return parse_fact({"source": SOURCE, **payload}, datetime.now(UTC).date())


def person(i: int, *facts: dict) -> NewPerson:
    """An invented person, with these facts."""
    identity = Identity(family_name=f"Bulkyan{i}", given_names="Aram", nationality="AM")
    opening = OpenCase("prisoner_of_war", identity, {"kind": "family"})
    return NewPerson(opening, tuple(fact(f) for f in facts))


CAPTURED = {"type": "captured", "occurred_on": "2021-01-05", "by_party": "AZ"}
HELD = {"type": "held", "occurred_on": "2021-02-01", "by_party": "AZ", "place": "Camp A"}


def test_a_bulk_opening_answers_as_single_writes_do_and_a_rebuild_agrees(
    store: Store, worker: ApiKey
):
    ids = store.register.open_cases([person(i, CAPTURED, HELD) for i in range(30)], worker)
    book = Book(store)
    assert len(ids) == 30
    view = json.loads(book.view_json(ids[7], worker)[1])
    assert (view["status"], view["held_by"], view["version"]) == ("held", "AZ", 3)
    found, _ = book.list_cases({}, "Bulkyan7 Aram", 5, None, key=worker)
    assert [item["id"] for item in found][:1] == [str(ids[7])]  # its name keys were kept
    as_of, _ = book.list_cases({"status": "held"}, None, 50, None, key=worker)
    assert len(as_of) == 30
    history = book.history(ids[0], worker)["events"]
    assert [e["type"] for e in history] == ["opened", "captured", "held"]
    assert all(e["hash"] for e in history)  # every event is chained
    assert book.verify().ok
    live = snapshot_views(store)
    rebuild(store)
    assert snapshot_views(store) == live


def test_a_bulk_opening_with_one_refused_fact_records_no_one(store: Store, worker: ApiKey):
    before = store.max_notification_id()
    died_then_held = (
        {"type": "died", "occurred_on": "2021-01-10"},
        {"type": "held", "occurred_on": "2021-03-01", "by_party": "AZ"},
    )
    people = [person(0, CAPTURED), person(1, CAPTURED), person(2, *died_then_held)]
    with pytest.raises(BulkRefused) as refused:
        store.register.open_cases(people, worker)
    assert list(refused.value.problems) == [2]
    assert store.max_notification_id() == before
    found, _ = Book(store).list_cases({}, None, 50, None, key=worker)
    assert found == []


def test_a_process_keeps_no_list_of_the_keys_its_committed_writes_made(
    store: Store, worker: ApiKey
):
    """The keyring remembers the keys a write makes only until the write ends (to forget
    them if it rolls back): a process that opens a million people must not hold a
    million ids for it."""
    store.register.open_cases([person(i, CAPTURED) for i in range(50)], worker)
    Book(store).open_case(
        {"category": "missing_person", "person": {"family_name": "Testyan"}, "source": SOURCE},
        worker,
    )
    made_since_start, _ = store.keyring.mark()
    assert made_since_start == 0
