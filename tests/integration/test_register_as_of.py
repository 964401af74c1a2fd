"""The whole register as of a day and as known at an instant, on both stores: the
bitemporal periods answer exactly what replaying every case would."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from uuid import UUID

import pytest

from domain.state import derive
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.querying import When
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.integration.test_store import generate_register


@pytest.fixture
def worker(store: Store) -> ApiKey:
    return KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]


def brute_force(casebook: Casebook, case_ids, when: When, column: str) -> Counter:
    counts: Counter = Counter()
    for case_id in case_ids:
        facts = casebook.register.get_case(case_id).facts
        if when.known_at is not None and facts[0].recorded_at > when.known_at:
            continue  # nobody knew of this case then
        state = derive(facts, as_of=when.as_of, known_at=when.known_at)
        value = {
            "status": state.status,
            "held_by": state.held_by,
            "nationality": state.person.nationality,
            "category": state.category,
        }[column]
        counts[value] += 1
    return counts


@pytest.mark.slow
def test_counts_as_of_any_day_known_at_any_instant_match_a_replay_of_every_case(
    store: Store, worker: ApiKey
):
    generate_register(store, worker, cases=40, events=600, seed=11)
    casebook = Casebook(store)
    case_ids = [UUID(v["id"]) for v in casebook.list_cases({}, None, 500, None)[0]]
    stamps = sorted(e["recorded_at"] for cid in case_ids for e in casebook.history(cid)["events"])
    from datetime import datetime

    rng = random.Random(5)
    points = [When(None, None)]
    for _ in range(12):
        as_of = rng.choice([None, date(2020, 10, 1) + timedelta(days=rng.randrange(640))])
        known_at = rng.choice([None, datetime.fromisoformat(rng.choice(stamps))])
        points.append(When(as_of, known_at))
    for when in points:
        for column in ("status", "held_by"):
            summary = casebook.summary(column, None if when == When() else when)
            counted = Counter({g["value"]: g["count"] for g in summary["groups"]})
            assert counted == brute_force(casebook, case_ids, when, column), (when, column)


def test_a_late_recorded_capture_counts_as_of_its_day_but_not_as_known_before(
    store: Store, worker: ApiKey
):
    casebook = Casebook(store)
    case = casebook.open_case(
        {
            "category": "prisoner_of_war",
            "person": {"family_name": "Testyan", "nationality": "AM"},
            "source": {"kind": "family"},
        },
        worker,
    )
    casebook.record_fact(
        case.case_id,
        {
            "type": "transferred",
            "occurred_on": "2021-03-01",
            "by_party": "AZ",
            "to_party": "RU",
            "source": {"kind": "icrc"},
        },
        worker,
    )
    before_the_capture_was_reported = casebook.register.get_case(case.case_id).facts[-1].recorded_at
    casebook.record_fact(
        case.case_id,
        {
            "type": "captured",
            "occurred_on": "2020-11-10",
            "by_party": "AZ",
            "source": {"kind": "media"},
        },
        worker,
    )
    on_new_year = When(date(2021, 1, 1))
    held = casebook.summary("held_by", on_new_year)["groups"]
    assert held == [{"value": "AZ", "count": 1}]
    knew_then = casebook.summary("held_by", When(date(2021, 1, 1), before_the_capture_was_reported))
    assert knew_then["groups"] == [{"value": None, "count": 1}]
    items, _ = casebook.list_cases({"held_by": "AZ"}, None, 50, None, on_new_year)
    assert [i["id"] for i in items] == [str(case.case_id)]
    assert items[0]["held_by"] == "AZ" and items[0]["as_of"] == "2021-01-01"
    assert casebook.list_cases({"held_by": "AZ"}, None, 50, None)[0] == []  # now: RU
