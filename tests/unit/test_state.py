"""Deriving status from facts: world order, both time axes, disputes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from domain.facts import Fact
from domain.identity import Identity
from domain.state import derive

T0 = datetime(2021, 1, 1, tzinfo=UTC)


def f(version: int, type_: str, occurred_on: str, minutes: int, source: str = "icrc", **data):
    return Fact(
        version,
        type_,
        date.fromisoformat(occurred_on),
        T0 + timedelta(minutes=minutes),
        {"kind": source},
        {"key": "k", "org": "o"},
        data,
    )


def opened(nationality: str = "AM") -> Fact:
    return Fact(
        1,
        "opened",
        date(2021, 1, 1),
        T0,
        {"kind": "family"},
        {"key": "k", "org": "o"},
        {"category": "prisoner_of_war"},
        Identity(family_name="Testyan", nationality=nationality),
    )


def test_status_follows_the_world_order_not_the_order_of_recording():
    facts = [
        opened(),
        f(2, "transferred", "2021-03-01", 10, by_party="AZ", to_place="Baku"),
        f(3, "captured", "2021-01-15", 20, by_party="AZ", place="Hadrut"),
    ]
    assert derive(facts).place == "Baku"
    assert derive(facts, as_of=date(2021, 2, 1)).place == "Hadrut"
    assert derive(facts, as_of=date(2021, 1, 1)).status == "unknown"


def test_known_at_sees_only_what_was_recorded_by_then():
    facts = [
        opened(),
        f(2, "transferred", "2021-03-01", 10, by_party="AZ", to_place="Baku"),
        f(3, "captured", "2021-01-15", 20, by_party="AZ", place="Hadrut"),
    ]
    before_capture_was_reported = T0 + timedelta(minutes=15)
    state = derive(facts, as_of=date(2021, 2, 1), known_at=before_capture_was_reported)
    assert state.status == "unknown" and state.version == 2
    assert derive(facts, known_at=before_capture_was_reported).place == "Baku"


def test_handover_to_the_party_of_nationality_is_repatriation_else_release():
    base = [opened("AM"), f(2, "captured", "2021-01-15", 1, by_party="AZ")]
    home = derive([*base, f(3, "released", "2021-07-03", 2, by_party="AZ", to_party="AM")])
    away = derive([*base, f(3, "released", "2021-07-03", 2, by_party="AZ", to_party="GE")])
    assert (home.status, away.status) == ("repatriated", "released")
    assert home.held_by is None


def test_hospitalised_people_stay_in_custody():
    state = derive(
        [
            opened(),
            f(2, "captured", "2021-01-15", 1, by_party="AZ"),
            f(3, "hospitalised", "2021-02-01", 2, place="a hospital"),
        ]
    )
    assert (state.status, state.held_by) == ("hospitalised", "AZ")


def test_denial_contradicted_by_a_visit_is_disputed_until_acknowledged():
    facts = [
        opened(),
        f(2, "visited", "2021-02-01", 1, by="ICRC", held_by="AZ"),
        f(3, "holding_denied", "2021-03-01", 2, source="party", by_party="AZ"),
    ]
    state = derive(facts)
    assert state.held_by == "AZ"  # a denial never changes who holds the person
    assert [d["about"] for d in state.disputes] == ["custody"]
    facts.append(f(4, "holding_acknowledged", "2021-05-01", 3, source="party", by_party="AZ"))
    assert not derive(facts).disputed
    assert derive(facts, as_of=date(2021, 4, 1)).disputed


def test_a_denial_after_a_release_is_not_a_dispute():
    facts = [
        opened(),
        f(2, "captured", "2021-01-15", 1, by_party="AZ"),
        f(3, "released", "2021-03-01", 2, by_party="AZ", to_party="AM"),
        f(4, "holding_denied", "2021-04-01", 3, source="party", by_party="AZ"),
    ]
    assert not derive(facts).disputed


def test_each_party_keeps_its_own_classification_claim():
    facts = [
        opened(),
        f(
            2,
            "classified",
            "2021-01-20",
            1,
            source="party",
            by_party="AM",
            classification="prisoner_of_war",
        ),
        f(
            3,
            "classified",
            "2021-01-25",
            2,
            source="party",
            by_party="AZ",
            classification="criminal_detainee",
            basis="border crossing",
        ),
    ]
    state = derive(facts)
    assert state.classifications["AM"]["classification"] == "prisoner_of_war"
    assert state.classifications["AZ"]["basis"] == "border crossing"
    assert state.disputes[0]["about"] == "classification"
    agreed = [
        *facts,
        f(
            4,
            "classified",
            "2021-06-01",
            3,
            source="party",
            by_party="AZ",
            classification="prisoner_of_war",
        ),
    ]
    assert not derive(agreed).disputed


def test_last_seen_alive_is_the_latest_evidence_of_life_in_world_order():
    state = derive(
        [opened(), f(2, "seen", "2021-05-01", 1), f(3, "captured", "2021-02-01", 2, by_party="AZ")]
    )
    assert state.last_seen_alive_on == date(2021, 5, 1)


def test_a_transfer_without_to_party_stays_with_the_transferring_party():
    state = derive([opened(), f(2, "transferred", "2021-03-01", 1, by_party="AZ", to_place="Baku")])
    assert (state.status, state.held_by, state.place) == ("held", "AZ", "Baku")


def test_facts_of_one_day_follow_the_order_they_must_have_happened_in():
    died_then_held = derive(
        [opened(), f(2, "died", "2021-05-01", 1), f(3, "held", "2021-05-01", 2, by_party="AZ")]
    )
    assert died_then_held.status == "deceased"
    moved_then_captured = derive(
        [
            opened(),
            f(2, "transferred", "2021-03-01", 1, by_party="AZ", to_party="RU"),
            f(3, "captured", "2021-03-01", 2, by_party="AZ", place="Hadrut"),
        ]
    )
    assert moved_then_captured.held_by == "RU"
    home_then_held = derive(
        [
            opened(),
            f(2, "repatriated", "2021-03-01", 1, to_party="AM"),
            f(3, "held", "2021-03-01", 2, by_party="AZ"),
        ]
    )
    assert home_then_held.status == "repatriated"


def test_held_at_a_prison_after_hospital_is_held_and_hospital_after_release_is_not_custody():
    back = derive(
        [
            opened(),
            f(2, "captured", "2021-01-01", 1, by_party="AZ"),
            f(3, "hospitalised", "2021-02-01", 2, place="ward 3"),
            f(4, "held", "2021-03-01", 3, by_party="AZ", place="prison 1"),
        ]
    )
    assert (back.status, back.place) == ("held", "prison 1")
    home = derive(
        [
            opened(),
            f(2, "repatriated", "2021-02-01", 1, to_party="AM"),
            f(3, "hospitalised", "2021-03-01", 2, place="a clinic"),
        ]
    )
    assert (home.status, home.held_by) == ("repatriated", None)


def test_a_visit_in_custody_after_a_death_disputes_it_without_undoing_it():
    state = derive(
        [
            opened(),
            f(2, "died", "2021-02-01", 1),
            f(3, "visited", "2021-03-01", 2, by="ICRC", held_by="AZ"),
        ]
    )
    assert (state.status, state.held_by) == ("deceased", None)
    assert [d["about"] for d in state.disputes] == ["life"]


def test_a_closed_case_counts_for_nobodys_custody():
    state = derive(
        [
            opened(),
            f(2, "captured", "2021-01-01", 1, by_party="AZ"),
            f(3, "closed", "2021-06-01", 2, reason="duplicate"),
        ]
    )
    assert (state.status, state.held_by) == ("closed", None)
