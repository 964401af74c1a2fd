"""The store on a SQLite file and on PostgreSQL: durability, views, rebuild, idempotency."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from domain.errors import CaseNotFound, VersionConflict
from domain.rules import InvalidTransition
from infrastructure import tables
from infrastructure.idempotency import Idempotency, IdempotencyMismatch
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.rebuild import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
from infrastructure.views import load_views
from tests.book import Book as Casebook


@pytest.fixture
def worker(store: Store) -> ApiKey:
    key, _ = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")
    return key


def opening(name: str = "Testyan", nationality: str = "AM") -> dict:
    return {
        "category": "prisoner_of_war",
        "person": {"family_name": name, "given_names": "Aram", "nationality": nationality},
        "source": {"kind": "family"},
    }


def test_sqlite_is_in_wal_mode_with_full_synchronous_commits(sqlite_settings: Settings):
    store = Store(sqlite_settings)
    try:
        with store.read() as session:
            assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    finally:
        store.close()


def test_a_refused_fact_writes_nothing(store: Store, worker: ApiKey):
    casebook = Casebook(store)
    case = casebook.open_case(opening(), worker)
    casebook.record_fact(
        case.case_id,
        {"type": "died", "occurred_on": "2021-02-01", "source": {"kind": "party", "name": "AZ"}},
        worker,
    )
    position = store.position()
    with pytest.raises(InvalidTransition):
        casebook.record_fact(
            case.case_id,
            {
                "type": "held",
                "occurred_on": "2021-03-01",
                "by_party": "AZ",
                "source": {"kind": "icrc"},
            },
            worker,
        )
    with pytest.raises(VersionConflict):
        casebook.record_fact(
            case.case_id, {"type": "note", "text": "x", "source": {"kind": "other"}}, worker, 1
        )
    assert store.position() == position == store.max_notification_id()
    assert casebook.view_json(case.case_id)[0] == 2


def test_recorded_at_never_goes_backwards(store: Store, worker: ApiKey):
    casebook = Casebook(store)
    case = casebook.open_case(opening(), worker)
    for day in range(1, 20):
        casebook.record_fact(
            case.case_id,
            {"type": "seen", "occurred_on": f"2021-01-{day:02d}", "source": {"kind": "family"}},
            worker,
        )
    stamps = [e["recorded_at"] for e in casebook.history(case.case_id)["events"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_idempotent_retry_returns_the_first_answer_and_records_once(store: Store, worker: ApiKey):
    casebook = Casebook(store)
    idem = Idempotency("retry-1", "hash-a")
    first = casebook.open_case(opening(), worker, idem)
    again = casebook.open_case(opening(), worker, idem)
    assert again == first
    with store.read() as session:
        assert session.execute(select(tables.case_views.c.case_id)).all() == [(first.case_id,)]
        stored = session.execute(select(tables.idempotency)).one()
    assert "Testyan" not in json.dumps(stored._asdict(), default=str)  # no personal data
    with pytest.raises(IdempotencyMismatch):
        casebook.open_case(opening("Otheryan"), worker, Idempotency("retry-1", "hash-b"))
    other_key, _ = KeyStore(store.engine).create("worker-2", "case_worker", "org-a")
    assert casebook.open_case(opening(), other_key, idem).case_id != first.case_id


def test_unknown_case_is_not_found(store: Store, worker: ApiKey):
    import uuid

    with pytest.raises(CaseNotFound):
        Casebook(store).record_fact(
            uuid.uuid4(), {"type": "note", "text": "x", "source": {"kind": "other"}}, worker
        )


FACT_MAKERS = [
    lambda d: {"type": "captured", "occurred_on": d, "by_party": "AZ", "place": "Shusha"},
    lambda d: {"type": "held", "occurred_on": d, "by_party": random.choice(["AZ", "AM"])},
    lambda d: {"type": "transferred", "occurred_on": d, "by_party": "AZ", "to_party": "RU"},
    lambda d: {"type": "visited", "occurred_on": d, "by": "ICRC", "held_by": "AZ"},
    lambda d: {"type": "holding_denied", "occurred_on": d, "by_party": "AZ"},
    lambda d: {"type": "holding_acknowledged", "occurred_on": d, "by_party": "AZ"},
    lambda d: {
        "type": "classified",
        "occurred_on": d,
        "by_party": random.choice(["AZ", "AM"]),
        "classification": random.choice(["prisoner_of_war", "criminal_detainee"]),
    },
    lambda d: {"type": "hospitalised", "occurred_on": d, "place": "ward 3"},
    lambda d: {
        "type": "released",
        "occurred_on": d,
        "by_party": "AZ",
        "to_party": random.choice(["AM", "GE"]),
    },
    lambda d: {"type": "died", "occurred_on": d},
    lambda d: {"type": "seen", "occurred_on": d},
    lambda d: {"type": "identity_updated", "occurred_on": d, "aliases": ["Setrakyan"]},
    lambda d: {"type": "note", "text": "call back"},
    lambda d: {"type": "closed", "reason": "done"},
    lambda d: {"type": "reopened", "reason": "new report"},
]


def generate_register(store: Store, key: ApiKey, cases: int, events: int, seed: int = 7) -> int:
    """A register of invented people with random facts in random order; events written."""
    random.seed(seed)
    casebook = Casebook(store)
    ids = [
        casebook.open_case(opening(f"Testyan{i}", random.choice(["AM", "AZ"])), key).case_id
        for i in range(cases)
    ]
    versions = dict.fromkeys(ids, 1)
    written = cases
    while written < events:
        case_id = random.choice(ids)
        day = (date(2020, 10, 1) + timedelta(days=random.randrange(600))).isoformat()
        if random.random() < 0.08 and versions[case_id] > 1:
            payload = {
                "type": "retracted",
                "version": random.randrange(2, versions[case_id] + 1),
                "reason": "wrong",
            }
        else:
            payload = random.choice(FACT_MAKERS)(day)
        payload["source"] = {"kind": random.choice(["icrc", "party", "media"])}
        try:
            versions[case_id] = casebook.record_fact(case_id, payload, key).version
            written += 1
        except InvalidTransition:
            continue
    return written


def snapshot_views(store: Store) -> tuple[list, list, list, int]:
    p = tables.case_periods
    with store.read() as session:
        rows = session.execute(select(tables.case_views).order_by(tables.case_views.c.seq))
        # Each write seals a view afresh (a new nonce): compare what they say.
        views = [
            (*row._tuple()[:-1], load_views(store.keyring, [(row.case_id, row.view)])[row.case_id])
            for row in rows
        ]
        keys = session.execute(
            select(tables.case_name_keys).order_by(
                tables.case_name_keys.c.case_id, tables.case_name_keys.c.key
            )
        ).all()
        periods = session.execute(
            select(*(c for c in p.c if c.name != "id")).order_by(
                p.c.case_id, p.c.recorded_from, p.c.valid_from
            )
        ).all()
    return views, keys, periods, store.position()


@pytest.mark.slow
def test_rebuilt_views_answer_exactly_as_the_live_ones(store: Store, worker: ApiKey):
    written = generate_register(store, worker, cases=200, events=3000)
    live = snapshot_views(store)
    assert len(live[0]) == 200 and live[3] == store.max_notification_id()
    assert len(live[2]) > 200  # periods: cases' timelines, and how they were revised
    statuses = {v[-1]["status"] for v in live[0]}
    assert {"held", "deceased", "closed"} <= statuses  # the register is varied
    with store.write() as unit:  # spoil the views to see the rebuild mend them
        unit.session.execute(tables.case_views.update().values(status="unknown", view="{}"))
        unit.session.execute(tables.case_periods.delete())
    seen = []
    assert rebuild(store, lambda done, total: seen.append((done, total))) == written
    assert snapshot_views(store) == live
    assert seen[-1] == (written, written)


def test_history_marks_only_standing_retractions(store: Store, worker: ApiKey):
    casebook = Casebook(store)
    case = casebook.open_case(opening(), worker)
    src = {"source": {"kind": "media"}}
    casebook.record_fact(
        case.case_id,
        {"type": "captured", "occurred_on": "2021-01-01", "by_party": "AZ", **src},
        worker,
    )
    casebook.record_fact(
        case.case_id, {"type": "retracted", "version": 2, "reason": "x", **src}, worker
    )
    casebook.record_fact(
        case.case_id, {"type": "retracted", "version": 3, "reason": "y", **src}, worker
    )
    events = casebook.history(case.case_id)["events"]
    assert [e["retracted"] for e in events] == [False, False, True, False]
    assert "retracted_by" not in events[1] and events[2]["retracted_by"] == 4


def test_a_rebuild_after_writes_of_several_facts_each_keeps_the_same_periods(
    store: Store,
) -> None:
    """A bulk write saves a case with all its facts at once: the rebuild must leave
    the bitemporal rows that write left, not one per fact."""
    from bench.common import generate

    key = KeyStore(store.engine).create("bulk", "case_worker", "org-a")[0]
    generate(store, key, cases=3, events_per_case=6)
    p = tables.case_periods
    columns = [c for c in p.c if c.name != "id"]

    def periods() -> list[tuple[object, ...]]:
        with store.read() as conn:
            return sorted(tuple(r) for r in conn.execute(select(*columns)))

    live = periods()
    rebuild(store)
    assert periods() == live and len(live) >= 3
