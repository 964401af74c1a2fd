"""Bulk opening (``Register.open_cases``): many people, each with their facts, in one
write, under the same rules, sealing, chain and projections as single writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from domain.case import NewFact
from domain.cases import NewPerson, OpenCase
from domain.errors import BulkRefused
from domain.identity import Identity
from domain.input import parse_fact
from infrastructure import tables
from infrastructure.crypto import NoKeyRow
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
    live, access = snapshot_views(store), access_rows(store)
    rebuild(store)
    assert snapshot_views(store) == live
    assert access_rows(store) == access and len(access) == 30


def access_rows(store: Store) -> list:
    a = tables.case_access
    with store.read() as conn:
        return conn.execute(select(a.c.case_id, a.c.org, a.c.via).order_by(a.c.case_id)).all()


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


def test_a_bulk_write_that_fails_after_its_keys_were_made_leaves_none_behind(
    store: Store, worker: ApiKey, monkeypatch: pytest.MonkeyPatch
):
    """The people's keys are made first, in one statement; when the write then fails
    (here its projections), none of them stays remembered: they have no row."""
    made: list = []
    keyring_create = store.keyring.create

    def create(key_ids, at):  # type: ignore[no-untyped-def]
        made.extend(key_ids)
        keyring_create(key_ids, at)

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(store.keyring, "create", create)
    monkeypatch.setattr("infrastructure.store.project", fail)
    with pytest.raises(RuntimeError, match="disk"):
        store.register.open_cases([person(i, CAPTURED) for i in range(5)], worker)
    assert len(made) == 5
    monkeypatch.undo()
    for key_id in made:  # not remembered, so looked up: and there is no row
        with pytest.raises(NoKeyRow):
            store.keyring.key(key_id)


def test_a_bulk_opening_records_only_what_events_may_and_names_each_refusal(
    store: Store, worker: ApiKey
):
    """A share, an erasure or a handover each has a write of its own (who may, which
    keys go, which exchange): a batch that carries one is refused, naming the person,
    as is an opening the rules refuse, and nothing of the batch is written."""
    before = store.max_notification_id()
    erased = NewFact("erased", None, {"kind": "other"}, {"reason": "a request"})
    shared = NewFact("shared", None, {"kind": "other"}, {"org": "org-z", "purpose": "x"})
    bad_category = NewPerson(OpenCase("tourist", Identity(family_name="Testyan"), SOURCE))
    people = [person(0, CAPTURED), NewPerson(person(1).opening, (erased,)), bad_category]
    people.append(NewPerson(person(3).opening, (shared,)))
    with pytest.raises(BulkRefused) as refused:
        store.register.open_cases(people, worker)
    assert sorted(refused.value.problems) == [1, 2, 3]
    assert "erased" in refused.value.problems[1] and "category" in refused.value.problems[2]
    assert store.max_notification_id() == before
