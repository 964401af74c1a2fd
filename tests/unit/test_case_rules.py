"""The Case aggregate and its transition table, in memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.case import Case, NewFact, Stamp
from domain.cases import OpenCase, RecordFact
from domain.errors import VersionConflict
from domain.facts import FactError
from domain.identity import Identity, IdentityError
from domain.input import parse_fact, parse_opening
from domain.ports import MemoryWrites
from domain.register import Register
from domain.rules import InvalidTransition
from domain.timeline import timeline

TODAY = date(2026, 11, 27)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(minutes: int = 0) -> Stamp:
    return Stamp(T0 + timedelta(minutes=minutes), "worker-1", "org-a")


def open_case() -> Case:
    return Case._create(
        Case.Opened,
        id=uuid4(),
        category="prisoner_of_war",
        person=Identity(family_name="Testyan", given_names="Aram", nationality="AM"),
        source={"kind": "family"},
        recorded_at=T0,
        recorded_by={"key": "worker-1", "org": "org-a"},
    )


def fact(type_: str, occurred_on: str | None = None, **fields: object) -> NewFact:
    payload = {"type": type_, "source": {"kind": "icrc"}, **fields}
    if occurred_on:
        payload["occurred_on"] = occurred_on
    return parse_fact(payload, TODAY)


def test_custody_dated_after_a_death_is_refused_until_the_death_is_retracted():
    case = open_case()
    case.record(fact("died", "2021-02-01"), stamp(1))
    with pytest.raises(InvalidTransition) as refused:
        case.record(fact("held", "2021-03-01", by_party="AZ"), stamp(2))
    assert refused.value.conflicts_with == [2]
    assert case.version == 2
    case.record(fact("retracted", version=2, reason="wrong person"), stamp(3))
    case.record(fact("held", "2021-03-01", by_party="AZ"), stamp(4))
    assert case.state().status == "held"


def test_a_death_dated_before_recorded_custody_is_refused():
    case = open_case()
    case.record(fact("held", "2021-03-01", by_party="AZ"), stamp(1))
    with pytest.raises(InvalidTransition):
        case.record(fact("died", "2021-02-01"), stamp(2))


def test_custody_dated_before_a_death_is_accepted_whenever_it_arrives():
    case = open_case()
    case.record(fact("died", "2021-02-01"), stamp(1))
    case.record(fact("captured", "2021-01-01", by_party="AZ"), stamp(2))
    assert case.state().status == "deceased"


def test_seen_after_a_death_is_accepted_and_disputes_it():
    case = open_case()
    case.record(fact("died", "2021-02-01"), stamp(1))
    case.record(fact("seen", "2021-04-01", place="a village"), stamp(2))
    state = case.state()
    assert state.disputed and state.disputes[0]["about"] == "life"


def test_a_second_death_is_refused():
    case = open_case()
    case.record(fact("died", "2021-02-01"), stamp(1))
    with pytest.raises(InvalidTransition):
        case.record(fact("died", "2021-02-03"), stamp(2))


def test_retracting_a_retraction_that_would_restore_a_contradiction_is_refused():
    case = open_case()
    case.record(fact("died", "2021-02-01"), stamp(1))
    case.record(fact("retracted", version=2, reason="wrong"), stamp(2))
    case.record(fact("held", "2021-03-01", by_party="AZ"), stamp(3))
    with pytest.raises(InvalidTransition):
        case.record(fact("retracted", version=3, reason="the death was right"), stamp(4))


def test_retraction_must_point_at_an_existing_unretracted_version_not_the_opening():
    case = open_case()
    case.record(fact("note", text="first contact"), stamp(1))
    for version in (99, 1):
        with pytest.raises(InvalidTransition):
            case.record(fact("retracted", version=version, reason="x"), stamp(2))
    case.record(fact("retracted", version=2, reason="x"), stamp(2))
    with pytest.raises(InvalidTransition):
        case.record(fact("retracted", version=2, reason="again"), stamp(3))


def test_a_retracted_retraction_restores_its_target():
    case = open_case()
    case.record(fact("captured", "2021-01-01", by_party="AZ"), stamp(1))
    case.record(fact("retracted", version=2, reason="x"), stamp(2))
    assert case.state().status == "unknown"
    case.record(fact("retracted", version=3, reason="the capture was right"), stamp(3))
    assert case.state().status == "held"


def test_only_a_closed_case_is_reopened_and_a_closed_case_takes_only_notes():
    case = open_case()
    with pytest.raises(InvalidTransition):
        case.record(fact("reopened", reason="x"), stamp(1))
    case.record(fact("closed", reason="returned home"), stamp(1))
    assert case.state().status == "closed"
    with pytest.raises(InvalidTransition):
        case.record(fact("held", "2021-01-01", by_party="AZ"), stamp(2))
    with pytest.raises(InvalidTransition):
        case.record(fact("closed", reason="again"), stamp(2))
    case.record(fact("note", text="family called"), stamp(2))
    case.record(fact("reopened", reason="new report"), stamp(3))
    case.record(fact("held", "2021-01-01", by_party="AZ"), stamp(4))
    assert case.state().status == "held"


def test_every_bad_field_is_named():
    with pytest.raises(FactError) as bad:
        parse_fact(
            {
                "type": "classified",
                "occurred_on": "2021-13-01",
                "by_party": "Azerbaijan",
                "classification": "spy",
                "source": {"kind": "rumour"},
                "colour": "red",
            },
            TODAY,
        )
    assert set(bad.value.errors) == {
        "occurred_on",
        "by_party",
        "classification",
        "source.kind",
        "colour",
    }


def test_a_fact_dated_in_the_future_is_refused():
    with pytest.raises(FactError) as bad:
        parse_fact(
            {"type": "seen", "occurred_on": "2026-12-25", "source": {"kind": "family"}}, TODAY
        )
    assert "occurred_on" in bad.value.errors


def test_every_identity_field_may_be_unknown_or_withheld_but_a_name_is_needed():
    _, person, _ = parse_opening(
        {
            "category": "civilian_internee",
            "person": {
                "family_name": "Testova",
                "date_of_birth": "withheld",
                "nationality": "unknown",
            },
            "source": {"kind": "ngo"},
        }
    )
    assert person.date_of_birth == "withheld"
    with pytest.raises(IdentityError):
        Identity.parse({"date_of_birth": "03/02/1999"})
    with pytest.raises(FactError):
        Case._create(
            Case.Opened,
            id=uuid4(),
            category="missing_person",
            person=Identity(),
            source={"kind": "family"},
            recorded_at=T0,
            recorded_by={},
        )


@dataclass(frozen=True)
class Worker:
    """A caller, as the use cases see one (``domain.ports.Caller``)."""

    id: UUID = field(default_factory=uuid4)
    name: str = "worker-1"
    org: str = "org-a"
    role: str = "case_worker"


def test_stale_expected_version_is_a_conflict_and_records_nothing():
    register = Register(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})  # in memory
    register.writes = MemoryWrites()
    opening = OpenCase("prisoner_of_war", Identity(family_name="Testyan"), {"kind": "family"})
    case_id = register.open_case(opening, Worker()).id
    register.record_fact(RecordFact(case_id, fact("seen", "2021-01-01"), 1), Worker())
    with pytest.raises(VersionConflict) as conflict:
        register.record_fact(RecordFact(case_id, fact("seen", "2021-01-02"), 1), Worker())
    assert conflict.value.current == 2
    assert register.get_case(case_id).version == 2


def test_identity_updates_add_aliases_and_survive_replay():
    register = Register(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})  # in memory
    register.writes = MemoryWrites()
    opening = OpenCase("prisoner_of_war", Identity(family_name="Setrakyan"), {"kind": "family"})
    case_id = register.open_case(opening, Worker()).id
    update = fact("identity_updated", "2021-02-01", aliases=["Sedrakyan"], rank="private")
    register.record_fact(RecordFact(case_id, update), Worker())
    person = register.get_case(case_id).state().person
    assert person.aliases == ("Sedrakyan",) and person.rank == "private"
    assert person.names() == ["Setrakyan", "Sedrakyan"]


def test_a_death_dated_after_the_return_of_remains_is_refused():
    case = open_case()
    case.record(fact("remains_returned", "2021-02-01", to_party="AM"), stamp(1))
    with pytest.raises(InvalidTransition):
        case.record(fact("died", "2021-03-01"), stamp(2))
    case.record(fact("died", "2021-01-20"), stamp(3))
    assert case.state().status == "remains_returned"


@pytest.mark.parametrize(
    "person",
    [
        {"family_name": "Test\x00yan"},
        {"family_name": "Testyan", "aliases": ["\u202eNAYTSET"]},
        {"family_name": "Testyan", "date_of_birth": "2021-W01-1"},
        {"given_names": "Aram"},
    ],
)
def test_bad_identity_is_refused(person):
    with pytest.raises(FactError):
        parse_opening({"category": "detained_person", "person": person, "source": {"kind": "ngo"}})


def test_an_identity_update_must_change_something():
    with pytest.raises(FactError):
        parse_fact(
            {
                "type": "identity_updated",
                "occurred_on": "2021-01-01",
                "aliases": [],
                "source": {"kind": "family"},
            },
            TODAY,
        )


def test_closing_acts_when_recorded_and_refuses_another_date():
    with pytest.raises(FactError) as bad:
        parse_fact(
            {
                "type": "closed",
                "occurred_on": "2021-01-01",
                "reason": "x",
                "source": {"kind": "other"},
            },
            TODAY,
        )
    assert "occurred_on" in bad.value.errors
    parse_fact(
        {
            "type": "closed",
            "occurred_on": TODAY.isoformat(),
            "reason": "x",
            "source": {"kind": "other"},
        },
        TODAY,
    )


def test_control_characters_are_refused_in_text_but_notes_keep_their_lines():
    with pytest.raises(FactError):
        parse_fact({"type": "note", "text": "a\x07b", "source": {"kind": "other"}}, TODAY)
    note = parse_fact(
        {"type": "note", "text": "line one\nline two", "source": {"kind": "other"}}, TODAY
    )
    assert note.data["text"] == "line one\nline two"


def test_a_write_derives_only_the_days_from_its_earliest_fact_and_gets_the_full_timeline():
    """The periods behind as-of lists and counts are kept per write from the earliest
    day the write touched (``timeline(facts, since, before)``); at every step they
    must be the timeline derived afresh from all the facts, even when a fact arrives
    dated before others (late news), or changes what held on a later day."""
    case = open_case()
    steps = [
        fact("captured", "2021-01-05", by_party="AZ"),
        fact("held", "2021-01-10", by_party="AZ", place="Camp A"),
        fact("transferred", "2021-03-01", by_party="AZ", to_party="RU"),
        fact("seen", "2021-02-01"),  # late news, dated inside an earlier period
        fact("classified", "2021-01-20", by_party="AM", classification="prisoner_of_war"),
        fact("classified", "2021-02-15", by_party="AZ", classification="criminal_detainee"),
        fact("released", "2021-06-01", by_party="RU", to_party="AM"),
        fact("held", "2021-04-01", by_party="RU", place="Camp B"),
    ]
    for minutes, new in enumerate(steps, start=1):
        before = timeline(case.facts)
        case.record(new, stamp(minutes))
        since = case.facts[-1].occurred_on
        assert timeline(case.facts, since, before) == timeline(case.facts)
    # A period from before the first fact's day is derived once and kept, not again.
    assert timeline(case.facts, date(2021, 6, 1), timeline(case.facts))[0].valid_from == date.min


def test_a_register_wired_to_no_store_refuses_to_write():
    """Without a store (or, in a unit test, MemoryWrites) there are no access checks,
    no retries and no key store: such a register records nothing rather than that."""
    register = Register(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    opening = OpenCase("prisoner_of_war", Identity(family_name="Testyan"), {"kind": "family"})
    with pytest.raises(RuntimeError, match="only through a store"):
        register.open_case(opening, Worker())
    assert list(register.notification_log.select(1, 10)) == []
