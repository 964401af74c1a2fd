"""Erasure on the store, SQLite and PostgreSQL: it takes effect in every process on its
next request (each forgets its cached keys and its cached copy of the case), a write
that destroyed a key and then failed leaves the person as they were, and a rebuild of
the views after an erasure keeps the erased case erased."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from domain.rules import InvalidTransition
from infrastructure import idempotency, tables
from infrastructure.crypto import SEALED_TEXT
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.rebuild import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook

# An invented person whose names appear nowhere else, and one who is not erased.
FAMILY = "Qwzorthiennyk"
GIVEN = "Ulvbrecht"
SOURCE_NAME = "Mrs Zhopplevanka"
NOTE = "was seen limping near the Grombelvask ward"
CANARIES = (FAMILY, GIVEN, SOURCE_NAME, "Grombelvask")
OTHER = "Aarontyan"
REASON = "request under Art. 17, ref. DP-2024-0042"


class Boom(Exception):
    """A write failing half-way."""


@dataclass(frozen=True)
class Keys:
    worker: ApiKey
    admin: ApiKey
    auditor: ApiKey


@pytest.fixture
def stores(settings: Settings) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database: two processes of the service."""
    first, second = Store(settings), Store(settings)
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def keys(stores: tuple[Store, Store]) -> Keys:
    made = KeyStore(stores[0].engine)
    return Keys(
        worker=made.create("worker-1", "case_worker", "org-a")[0],
        admin=made.create("admin-1", "admin", "org-a")[0],
        auditor=made.create("auditor-1", "auditor", "org-a")[0],
    )


def open_person(casebook: Casebook, key: ApiKey) -> uuid.UUID:
    """The invented person's case: a named source, a capture, a note naming them."""
    opening = {
        "category": "prisoner_of_war",
        "person": {"family_name": FAMILY, "given_names": GIVEN, "nationality": "AM"},
        "source": {"kind": "family", "name": SOURCE_NAME},
    }
    case_id = casebook.open_case(opening, key).case_id
    captured = {
        "type": "captured",
        "occurred_on": "2020-11-09",
        "by_party": "AZ",
        "place": "Hadrut",
        "source": {"kind": "family", "name": SOURCE_NAME},
    }
    casebook.record_fact(case_id, captured, key)
    note = {"type": "note", "text": f"{GIVEN} {NOTE}", "source": {"kind": "other"}}
    casebook.record_fact(case_id, note, key)
    return case_id


def open_other(casebook: Casebook, key: ApiKey) -> uuid.UUID:
    opening = {
        "category": "civilian_internee",
        "person": {"family_name": OTHER, "given_names": "Hrant", "nationality": "AM"},
        "source": {"kind": "family", "name": "his brother"},
    }
    return casebook.open_case(opening, key).case_id


def names_in(value: Any) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text += repr(value)
    return [n for n in CANARIES if n.lower() in text.lower()]


def found(casebook: Casebook, key: ApiKey, q: str) -> list[uuid.UUID]:
    items, _ = casebook.list_cases({}, q, 20, None, key=key)
    return [uuid.UUID(item["id"]) for item in items]


def view_of(casebook: Casebook, case_id: uuid.UUID, key: ApiKey) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(casebook.view_json(case_id, key)[1])
    return view


def stored_key(store: Store, case_id: uuid.UUID) -> tuple[bytes | None, int]:
    """The person's wrapped key as stored, and the count of erasures recorded."""
    with store.read() as conn:
        wrapped = conn.execute(
            select(tables.person_keys.c.wrapped).where(tables.person_keys.c.key_id == case_id)
        ).scalar_one()
        erasures = conn.execute(select(func.count()).select_from(tables.erasures)).scalar_one()
    return wrapped, erasures


def assert_reads_with_name(store: Store, case_id: uuid.UUID, keys: Keys) -> None:
    casebook = Casebook(store)
    view = view_of(casebook, case_id, keys.worker)
    assert view["person"]["family_name"] == FAMILY and view["erased"] is None
    assert set(names_in(casebook.history(case_id, keys.auditor))) == set(CANARIES)
    assert set(names_in(casebook.history(case_id, keys.worker))) == set(CANARIES)
    assert store.register.get_case(case_id).facts[0].person.family_name == FAMILY
    assert casebook.view_at(case_id, None, None, keys.worker)["person"]["given_names"] == GIVEN
    assert found(casebook, keys.worker, FAMILY) == [case_id]


# ---- another process ------------------------------------------------------------------


def test_an_erasure_in_one_process_takes_effect_in_another_on_its_next_request(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    first, second = stores
    one, two = Casebook(first), Casebook(second)
    case_id = open_person(one, keys.worker)
    other = open_other(one, keys.worker)
    before = one.record_fact(
        case_id,
        {"type": "seen", "occurred_on": "2021-01-05", "source": {"kind": "icrc"}},
        keys.worker,
    ).version
    # Both processes read the person: each caches their key and their case.
    assert_reads_with_name(first, case_id, keys)
    assert_reads_with_name(second, case_id, keys)
    assert second.register.get_case(case_id, version=before).facts[0].person.given_names == GIVEN

    erased = one.erase(case_id, REASON, keys.admin)
    assert erased.status_code == 200 and erased.version == before + 1
    assert not names_in(erased.view)
    assert stored_key(first, case_id) == (None, 1)

    # The other process's next requests: its cached case, replays, the view, search.
    case = second.register.get_case(case_id)  # the cached copy, fast-forwarded
    assert case.version == erased.version and not names_in(case.facts)
    assert case.state().person.erased
    history = two.history(case_id, keys.auditor)
    assert not names_in(history)
    assert [e["type"] for e in history["events"]] == [
        "opened",
        "captured",
        "note",
        "seen",
        "erased",
    ]
    assert history["events"][1]["fields"] == {"by_party": "AZ", "place": "Hadrut"}
    assert history["events"][-1]["fields"] == {"reason": REASON}
    view = view_of(two, case_id, keys.worker)
    assert not names_in(view)
    assert view["person"] == {"nationality": "AM"} and view["erased"]["reason"] == REASON
    assert view["held_by"] == "AZ"  # the non-personal history stays
    assert not names_in(two.view_at(case_id, None, None, keys.worker))
    assert found(two, keys.worker, FAMILY) == found(two, keys.worker, GIVEN) == []
    listed, _ = two.list_cases({}, None, 20, None, key=keys.worker)
    assert {i["id"] for i in listed} == {str(case_id), str(other)} and not names_in(listed)
    # Its key cache forgot the person: a replay of a version before the erasure, which
    # the erased event does not redact, opens nothing either.
    assert second.keyring.key(case_id) is None
    past = second.register.get_case(case_id, version=before)
    assert not names_in(past.facts) and past.facts[0].person.erased
    assert past.facts[0].person.nationality == "AM"

    # The other person is untouched, in both processes.
    for casebook in (one, two):
        assert view_of(casebook, other, keys.worker)["person"]["family_name"] == OTHER
        assert found(casebook, keys.worker, OTHER) == [other]


def test_an_erasure_reaches_a_process_that_replays_an_old_version_first(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    """The other process's first act after the erasure is to replay the case as it stood
    before it, with the key it cached: that opens nothing of the person either."""
    first, second = stores
    case_id = open_person(Casebook(first), keys.worker)
    assert_reads_with_name(second, case_id, keys)
    Casebook(first).erase(case_id, REASON, keys.admin)
    past = second.register.get_case(case_id, version=3)
    assert not names_in(past.facts), "a stale cached key opened an erased person's events"


def test_an_erasure_reaches_a_process_that_cached_only_the_key(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    first, second = stores
    case_id = open_person(Casebook(first), keys.worker)
    two = Casebook(second)
    assert view_of(two, case_id, keys.worker)["person"]["family_name"] == FAMILY  # key cached
    Casebook(first).erase(case_id, REASON, keys.admin)
    # An auditor's history needs no access check, so no other read precedes the replay.
    assert not names_in(two.history(case_id, keys.auditor))
    assert not names_in(view_of(two, case_id, keys.worker))
    assert not names_in(two.view_at(case_id, None, None, keys.auditor))


def test_another_process_cannot_write_to_an_erased_case_and_seals_other_cases_as_before(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    first, second = stores
    case_id = open_person(Casebook(first), keys.worker)
    two = Casebook(second)
    assert_reads_with_name(second, case_id, keys)
    Casebook(first).erase(case_id, REASON, keys.admin)
    note = {"type": "note", "text": f"{FAMILY} again", "source": {"kind": "other"}}
    with pytest.raises(InvalidTransition):
        two.record_fact(case_id, note, keys.worker)
    other = open_other(two, keys.worker)
    two.record_fact(
        other, {"type": "note", "text": "asked", "source": {"kind": "other"}}, keys.worker
    )
    with first.read() as conn:
        v = tables.case_views
        stored = conn.execute(select(v.c.view).where(v.c.case_id == other)).scalar_one()
    assert stored.startswith(SEALED_TEXT)
    assert view_of(Casebook(first), other, keys.worker)["person"]["family_name"] == OTHER
    assert not names_in(view_of(Casebook(first), case_id, keys.worker))


# ---- a write that fails after destroying a key -----------------------------------------


def test_a_destroyed_key_in_a_rolled_back_write_is_not_remembered(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    store = stores[0]
    case_id = open_person(Casebook(store), keys.worker)
    assert_reads_with_name(store, case_id, keys)  # the key and the case cached
    with pytest.raises(Boom), store.write() as unit:
        store.keyring.destroy(unit.session.connection(), case_id, unit.recorded_at)
        assert store.keyring.key(case_id) is None  # gone, inside this transaction
        raise Boom()
    wrapped, erasures = stored_key(store, case_id)
    assert wrapped is not None and erasures == 0
    assert store.keyring.key(case_id) is not None
    assert_reads_with_name(store, case_id, keys)
    assert_reads_with_name(stores[1], case_id, keys)


def test_a_case_replayed_in_a_rolled_back_write_after_its_key_was_destroyed_reads_whole(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    """Inside the failed write the case replays without its key (redacted); nothing of
    that may outlive the transaction: neither the missing key nor the redacted copy."""
    first, second = stores
    case_id = open_person(Casebook(first), keys.worker)  # the second has nothing cached
    with pytest.raises(Boom), second.write() as unit:
        second.keyring.destroy(unit.session.connection(), case_id, unit.recorded_at)
        assert second.register.get_case(case_id).facts[0].person.erased
        raise Boom()
    assert stored_key(second, case_id)[0] is not None
    assert second.keyring.key(case_id) is not None
    person = second.register.get_case(case_id).facts[0].person
    assert person.family_name == FAMILY, "the aggregate cache kept the copy made without the key"
    assert_reads_with_name(second, case_id, keys)


def test_an_erasure_that_fails_after_destroying_the_key_leaves_the_person_as_they_were(
    stores: tuple[Store, Store], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = stores
    one = Casebook(first)
    case_id = open_person(one, keys.worker)
    assert_reads_with_name(first, case_id, keys)
    version = first.register.get_case(case_id).version

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise Boom()

    with monkeypatch.context() as m:
        m.setattr(idempotency, "remember", fail)  # after the key is destroyed, in the same write
        with pytest.raises(Boom):
            one.erase(case_id, REASON, keys.admin)
    wrapped, erasures = stored_key(first, case_id)
    assert wrapped is not None and erasures == 0
    assert first.register.get_case(case_id).version == version
    assert_reads_with_name(first, case_id, keys)
    assert_reads_with_name(second, case_id, keys)
    # And the erasure can be made again, for good.
    assert one.erase(case_id, REASON, keys.admin).status_code == 200
    assert not names_in(view_of(one, case_id, keys.worker))
    assert not names_in(Casebook(second).history(case_id, keys.auditor))


# ---- rebuilding the views -------------------------------------------------------------


def test_a_rebuild_after_an_erasure_keeps_the_case_erased_and_the_others_readable(
    stores: tuple[Store, Store], keys: Keys
) -> None:
    first, second = stores
    one = Casebook(first)
    case_id = open_person(one, keys.worker)
    other = open_other(one, keys.worker)
    one.erase(case_id, REASON, keys.admin)
    erased_view = view_of(one, case_id, keys.worker)

    events = first.max_notification_id()
    assert rebuild(first) == events

    v, k = tables.case_views, tables.case_name_keys
    with first.read() as conn:
        stored = dict(conn.execute(select(v.c.case_id, v.c.view)).tuples().all())
        name_keys = set(conn.execute(select(k.c.case_id)).scalars())
    assert not stored[case_id].startswith(SEALED_TEXT)  # nothing personal left to seal
    assert not names_in(stored[case_id])
    assert json.loads(stored[case_id]) == erased_view
    assert stored[other].startswith(SEALED_TEXT)
    assert name_keys == {other}  # the erased person has no name left to index
    for store in (first, second):
        casebook = Casebook(store)
        view = view_of(casebook, case_id, keys.worker)
        assert view == erased_view and view["erased"]["reason"] == REASON
        assert not names_in(casebook.history(case_id, keys.auditor))
        assert view_of(casebook, other, keys.worker)["person"]["family_name"] == OTHER
        assert found(casebook, keys.worker, OTHER) == [other]
        assert found(casebook, keys.worker, FAMILY) == []
        listed, _ = casebook.list_cases({}, None, 20, None, key=keys.worker)
        assert len(listed) == 2 and not names_in(listed)
