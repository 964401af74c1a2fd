"""The periods behind as-of lists and counts are kept per write from the earliest day
the write touched; whatever a case's history, they must be the timeline derived afresh
from all its facts."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from domain.case import Case, NewFact, Stamp
from domain.facts import ALL_FACT_TYPES, OPENED, FactError
from domain.identity import Identity
from domain.rules import InvalidTransition
from domain.state import active_facts, derive
from domain.timeline import DATED_EFFECT, UNDATED_EFFECT, Period, earliest_new_day, timeline

T0 = datetime(2021, 1, 1, tzinfo=UTC)
PARTIES = ["AM", "AZ", "RU", "GE"]


def test_every_fact_type_says_whether_its_effect_starts_on_its_day():
    """A new fact type must be placed in one set: one in neither would make every write
    to its cases derive the whole timeline, one in both could leave periods stale."""
    assert DATED_EFFECT.isdisjoint(UNDATED_EFFECT)
    assert {*ALL_FACT_TYPES, OPENED} == DATED_EFFECT | UNDATED_EFFECT


def _some_fact(r: random.Random, case: Case) -> NewFact:
    kind = r.choice(sorted(DATED_EFFECT - {"charged", "sentenced"}) + ["identity_updated"] * 2)
    kind = r.choice([kind, kind, "retracted"]) if case.version > 2 else kind
    p, q = r.choice(PARTIES), r.choice(PARTIES)
    data = {
        "transferred": {"by_party": p, "to_party": q},
        "released": {"by_party": p, "to_party": q},
        "repatriated": {"to_party": q},
        "remains_returned": {"to_party": q},
        "visited": {"by": "icrc", "held_by": p},
        "classified": {"by_party": p, "classification": r.choice(["prisoner_of_war", "other"])},
        "willingness_verified": {"by": "icrc", "result": r.choice(["willing", "unwilling"])},
        "handed_over": {"by_party": p, "to_party": q, "exchange_id": str(uuid4())},
        "handover_refused": {"by_party": p, "to_party": q, "exchange_id": str(uuid4())},
        "handover_absent": {"by_party": p, "to_party": q, "exchange_id": str(uuid4())},
        "shared": {"org": "org-b", "purpose": "tracing"},
        "share_ended": {"org": "org-b"},
        "note": {"text": "n"},
        "transmitted": {"to": "family"},
        "family_informed": {"by": "icrc"},
    }.get(kind, {"by_party": p})
    if kind == "retracted":
        data = {"version": r.randrange(2, case.version + 1), "reason": "wrong"}
    person = Identity(nationality=r.choice(PARTIES)) if kind == "identity_updated" else None
    day = date(2021, 1, 1) + timedelta(days=r.randrange(0, 60))
    return NewFact(kind, day, {"kind": "icrc"}, data, person)


def _random_case(r: random.Random) -> Case:
    return Case._create(
        Case.Opened,
        id=uuid4(),
        category="prisoner_of_war",
        person=Identity(family_name="Testyan", nationality=r.choice(PARTIES)),
        source={"kind": "family"},
        recorded_at=T0,
        recorded_by={"key": "worker-1", "org": "org-a"},
    )


def _timeline_by_derive(case: Case) -> list[Period]:
    """The definition: a period from the dawn of time and one at each day of the facts
    that stand, each ``derive`` as of its first day, runs of equal columns merged."""
    days = sorted({f.occurred_on for f in active_facts(case.facts)})
    periods: list[Period] = []
    for day in [date.min, *days]:
        s = derive(case.facts, as_of=day)
        period = Period(
            day, None, s.status, s.held_by, s.person.nationality, s.category, s.disputed
        )
        if periods and (
            periods[-1].status,
            periods[-1].held_by,
            periods[-1].nationality,
            periods[-1].category,
            periods[-1].disputed,
        ) == (period.status, period.held_by, period.nationality, period.category, period.disputed):
            continue
        if periods:
            periods[-1] = Period(**{**vars(periods[-1]), "valid_to": day})
        periods.append(period)
    return periods


@pytest.mark.parametrize("seed", range(60))
def test_the_timeline_walked_once_is_derive_as_of_each_day(seed: int):
    """``timeline`` walks the facts once instead of deriving each day afresh: on random
    invented histories (deaths, handovers to the person's own party, closures,
    denials, retractions, identity changes) every period is what ``derive`` says."""
    r = random.Random(1000 + seed)
    case = _random_case(r)
    for step in range(1, 30):
        stamp = Stamp(T0 + timedelta(hours=step), "worker-1", "org-a")
        with contextlib.suppress(InvalidTransition, FactError):
            case.record(_some_fact(r, case), stamp)
        assert timeline(case.facts) == _timeline_by_derive(case), f"after step {step}"


@pytest.mark.parametrize("seed", range(40))
def test_periods_kept_from_the_earliest_day_of_each_write_are_the_whole_timeline(seed: int):
    """Random invented histories, written one to three facts at a time (as an exchange
    or a confirmed match writes several), late news included."""
    r = random.Random(seed)
    case = _random_case(r)
    kept, written = timeline(case.facts), 0
    for step in range(1, 40):
        stamp = Stamp(T0 + timedelta(hours=step), "worker-1", "org-a")
        for _ in range(r.choice([1, 1, 2, 3])):
            with contextlib.suppress(InvalidTransition, FactError):  # refused: nothing
                case.record(_some_fact(r, case), stamp)
        if case.facts[-1].recorded_at != stamp.recorded_at:
            continue  # nothing was written in this step
        written += 1
        kept = timeline(case.facts, earliest_new_day(case.facts), kept)
        assert kept == timeline(case.facts), f"after write {written}"
    assert written >= 10  # the rules let enough through for the comparison to mean much
