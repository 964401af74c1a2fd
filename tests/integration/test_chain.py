"""The hash chain on both stores: every kind of tampering is found, at its position."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, insert, select, update

from infrastructure import tables
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.conftest import populate, relink, seen


@pytest.fixture
def casebook(store: Store) -> Casebook:
    key: ApiKey = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]
    casebook = Casebook(store)
    populate(casebook, key, 4, [seen(1), seen(2)])
    return casebook


def events(store: Store) -> list:
    e, c = store.events_table, tables.chain
    with store.read() as conn:
        return conn.execute(
            select(e, c.c.position).join(c, c.c.notification_id == e.c.id).order_by(c.c.position)
        ).all()


def tamper(store: Store, statement) -> None:
    with store.engine.begin() as conn:
        conn.execute(statement)


def test_an_untouched_register_verifies_and_links_every_event(casebook: Casebook):
    result = casebook.verify()
    assert (result.ok, result.events) == (True, 12)
    assert result.head == relink(events(casebook.store))[-1]


def test_one_changed_byte_is_found_at_its_position(casebook: Casebook):
    store = casebook.store
    victim = events(store)[6]
    state = bytearray(victim.state)
    state[10] ^= 1
    tamper(
        store,
        update(store.events_table)
        .where(store.events_table.c.id == victim.id)
        .values(state=bytes(state)),
    )
    result = casebook.verify()
    assert (result.ok, result.broken_at) == (False, 7)


def test_a_deleted_event_is_found(casebook: Casebook):
    store = casebook.store
    victim = events(store)[4]
    tamper(store, delete(store.events_table).where(store.events_table.c.id == victim.id))
    assert casebook.verify().broken_at == 5


def test_a_deleted_event_and_its_link_are_found(casebook: Casebook):
    store = casebook.store
    victim = events(store)[4]
    tamper(store, delete(store.events_table).where(store.events_table.c.id == victim.id))
    tamper(store, delete(tables.chain).where(tables.chain.c.position == victim.position))
    assert casebook.verify().broken_at == 5


def test_two_swapped_events_are_found(casebook: Casebook):
    store = casebook.store
    e = store.events_table
    first, second = events(store)[2], events(store)[5]
    tamper(store, update(e).where(e.c.id == first.id).values(state=second.state))
    tamper(store, update(e).where(e.c.id == second.id).values(state=first.state))
    assert casebook.verify().broken_at == 3


def test_a_cut_tail_is_found(casebook: Casebook):
    store = casebook.store
    tail = events(store)[-2:]
    for row in tail:
        tamper(store, delete(store.events_table).where(store.events_table.c.id == row.id))
        tamper(store, delete(tables.chain).where(tables.chain.c.position == row.position))
    result = casebook.verify()
    assert not result.ok and result.broken_at == 11
    assert "removed" in (result.problem or "")


def test_an_inserted_event_is_found(casebook: Casebook):
    store = casebook.store
    last = events(store)[-1]
    tamper(
        store,
        insert(store.events_table).values(
            originator_id=last.originator_id,
            originator_version=last.originator_version + 1,
            topic=last.topic,
            state=last.state,
        ),
    )
    result = casebook.verify()
    assert (result.ok, result.broken_at) == (False, 13)


def test_writes_after_verification_extend_the_chain(casebook: Casebook):
    before = casebook.verify()
    with casebook.store.read() as conn:
        case_id = conn.execute(select(tables.case_views.c.case_id).limit(1)).scalar_one()
    key = KeyStore(casebook.store.engine).list()[0]
    casebook.record_fact(case_id, {"type": "note", "text": "x", "source": {"kind": "other"}}, key)
    after = casebook.verify()
    assert after.ok and after.events == before.events + 1 and after.head != before.head
    history = casebook.history(case_id)["events"]
    with casebook.store.read() as conn:
        assert conn.execute(select(func.max(tables.chain.c.position))).scalar_one() == 13
    assert history[-1]["hash"] == after.head


def test_events_cannot_be_saved_past_the_chain(casebook: Casebook):
    from uuid import uuid4

    from domain.case import Case, Stamp
    from domain.identity import Identity

    stamp = Stamp(datetime.now(UTC), "worker-1", "org-a")
    case = Case._create(
        Case.Opened,
        id=uuid4(),
        category="missing_person",
        person=Identity(family_name="Testyan"),
        source={"kind": "family"},
        recorded_at=stamp.recorded_at,
        recorded_by=stamp.recorded_by,
    )
    with pytest.raises(RuntimeError, match=r"inside Store\.write"):
        casebook.register.save(case)  # not through a use case: no write is open
    assert casebook.verify().ok
