"""Stored events are forever: a register written on 2026-12-06 must open in ten years.

``tests/golden/stored_events.json`` holds the stored events of a small register as the
code stored them then (one or more of every event type of every aggregate, the personal
parts sealed with the data keys kept beside them, wrapped by a test master key), made
by ``tests/golden/make_golden.py``. These tests load them into an empty store as they
were, replay them, and check what a case worker and an auditor would see. A class
moved or renamed without its old topic registered, or a field changed without an
upcaster, fails here. A new event type must be added to the file (the last test).
"""

from __future__ import annotations

import base64
import inspect
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic
from pydantic import SecretStr
from sqlalchemy import insert

from domain.case import Case
from domain.exchange import Exchange
from domain.negotiation import Negotiation
from infrastructure import tables
from infrastructure.rebuild import rebuild
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "stored_events.json").read_text())
CASES = {name: uuid.UUID(value) for name, value in GOLDEN["cases"].items()}


@pytest.fixture
def golden(settings: Settings) -> Iterator[Store]:
    """An empty store (SQLite or PostgreSQL) holding the golden rows, as they were."""
    store = Store(settings.model_copy(update={"master_key": SecretStr(GOLDEN["master_key"])}))
    events = [
        {**e, "originator_id": uuid.UUID(e["originator_id"]), "state": e["state"].encode()}
        for e in GOLDEN["events"]
    ]
    keys = [
        {
            "key_id": uuid.UUID(k["case_id"]),  # the file keeps the names of its day
            "wrapped": base64.b64decode(k["wrapped"]) if k["wrapped"] else None,
            "created_at": datetime.fromisoformat(k["created_at"]),
            "erased_at": datetime.fromisoformat(k["erased_at"]) if k["erased_at"] else None,
            # which master key wraps it, as migration 0006 records it for a key of its day
            "wrapped_by": store.keyring.fingerprint if k["wrapped"] else None,
        }
        for k in GOLDEN["person_keys"]
    ]
    erasures = [
        {"key_id": uuid.UUID(e["case_id"]), "erased_at": datetime.fromisoformat(e["erased_at"])}
        for e in GOLDEN["erasures"]
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(store.events_table), events)
        conn.execute(insert(tables.person_keys), keys)
        conn.execute(insert(tables.erasures), erasures)
    store.keyring.refresh_now()
    yield store
    store.close()


def test_the_cases_replay_to_what_was_recorded(golden: Store) -> None:
    register = golden.register
    aram = register.get_case(CASES["aram"]).state()
    assert aram.person.to_dict()["family_name"] == "Goldenyan"
    assert aram.person.to_dict()["date_of_birth"] == "1999-03-02"
    assert set(aram.person.names()) >= {"Goldenyan Aram", "Голденян Арам", "Goldenian Aram"}
    assert (aram.status, aram.held_by, aram.org) == ("repatriated", None, "golden-bureau")
    assert {p: c["classification"] for p, c in aram.classifications.items()} == {
        "AM": "prisoner_of_war",
        "AZ": "criminal_detainee",
    }
    assert aram.classifications["AZ"]["basis"] == "border crossing"
    assert aram.disputed  # the parties' classifications disagree
    facts = register.get_case(CASES["aram"]).facts
    note = next(f for f in facts if f.type == "note")
    assert note.get("text") == "the family asks for news\nsecond line"
    assert facts[0].source["name"] == "his sister"

    lusine = register.get_case(CASES["lusine"]).state()
    assert (lusine.status, lusine.held_by) == ("repatriated", None)
    gor = register.get_case(CASES["gor"]).state()
    assert gor.status == "remains_returned" and not gor.closed and gor.shares == {}
    davit = register.get_case(CASES["davit"]).state()
    assert (davit.status, davit.held_by) == ("held", "AZ")  # he refused to go
    narek = register.get_case(CASES["narek"]).state()
    assert narek.person.to_dict() == {"nationality": "AM"}  # erased: his key is gone
    assert narek.erased is not None and "art. 9" in narek.erased["reason"]
    assert (narek.status, narek.held_by) == ("held", "AZ")  # absent on the day


def test_the_negotiation_and_exchange_replay(golden: Store) -> None:
    negotiation = golden.register.get_negotiation(uuid.UUID(GOLDEN["negotiation"]))
    assert negotiation.title == "Talks on detainees"
    assert negotiation.parties == ["AM", "AZ"] and negotiation.principle == "all_for_all"
    az = negotiation.current_list("AZ")
    assert az is not None
    results = [(e.get("name"), e["match"]["result"]) for e in az["entries"]]
    assert results[0] == ("Голденян Арам", "matched")
    assert results[1] == ("Nobodyan Vahe", "confirmed")
    assert az["entries"][1]["match"]["case_id"] == str(CASES["davit"])
    assert az["entries"][2].get("name") != "Голденян Нарек"  # erased with Narek
    agreement = negotiation.agreements[0]
    assert agreement["consideration"][0]["description"] == "minefield maps"
    assert len(agreement["transfers"]) == 3
    exchanges = [e for e in GOLDEN["events"] if e["topic"].endswith("Exchange.Recorded")]
    exchange = golden.register.get_exchange(uuid.UUID(exchanges[0]["originator_id"]))
    assert [h["outcome"] for h in exchange.handovers] == ["handed_over", "refused", "absent"]
    assert exchange.counts()["handed_over"] == 1
    assert [a["count"] for a in exchange.announced] == [15, 14]


def test_the_views_rebuilt_from_them_answer_as_recorded(golden: Store) -> None:
    rebuild(golden)
    casebook = Casebook(golden)
    _, text = casebook.view_json(CASES["aram"])
    view = json.loads(text)
    assert view["status"] == "repatriated" and view["person"]["given_names"] == "Aram"
    assert view["negotiations"] == [GOLDEN["negotiation"]]
    found, _ = casebook.list_cases({}, "Голденян", 10, None)
    assert {c["id"] for c in found} >= {str(CASES["aram"]), str(CASES["lusine"])}
    assert str(CASES["narek"]) not in {c["id"] for c in found}
    assert casebook.summary("status")["total"] == 5


def event_classes() -> Iterator[type[Any]]:
    for aggregate in (Case, Negotiation, Exchange):
        for _, member in inspect.getmembers(aggregate, inspect.isclass):
            if issubclass(member, CanMutateAggregate) and member.__qualname__.startswith(
                aggregate.__name__ + "."
            ):
                yield member


def test_every_event_type_of_every_aggregate_is_in_the_golden_file() -> None:
    stored = {e["topic"] for e in GOLDEN["events"]}
    # Bases, never stored themselves: the library's own per aggregate, and ours.
    abstract = {get_topic(Case.FactRecorded)} | {
        get_topic(getattr(a, base))
        for a in (Case, Negotiation, Exchange)
        for base in ("Event", "Created")
    }
    missing = {get_topic(c) for c in event_classes()} - stored - abstract
    assert not missing, f"add events of these types to tests/golden: {sorted(missing)}"
