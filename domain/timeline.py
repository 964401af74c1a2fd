"""A case's periods: what the register says of a person over spans of world days, as
the columns that register-wide counts, filters and lists as of a day use
(``infrastructure.projections`` keeps them; ``infrastructure.counts`` sums them). Each
period is what ``domain.state.derive`` says as of its first day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date

from domain.facts import OPENED, Fact
from domain.state import active_facts, columns_by_day, world_order


@dataclass(frozen=True)
class Period:
    """What the register says of a person over a span of world days, ``valid_from``
    inclusive to ``valid_to`` exclusive (None: to this day), as the columns that
    register-wide counts and filters use."""

    valid_from: date
    valid_to: date | None
    status: str
    held_by: str | None
    nationality: str | None
    category: str
    disputed: bool


# ``_same_columns`` compares every column but the span: a new column goes there too.
assert [f.name for f in fields(Period)][2:] == [
    "status",
    "held_by",
    "nationality",
    "category",
    "disputed",
]

# Facts whose effect on a case's periods starts on the day they occurred: a period that
# began before that day reads the same with or without them. An allow-list: a fact type
# in neither set makes every write derive the whole timeline again (and a unit test
# fails until the new type is placed in one of them).
DATED_EFFECT = frozenset(
    {
        "captured", "held", "transferred", "hospitalised", "visited",
        "holding_acknowledged", "holding_denied", "classified", "charged", "sentenced",
        "willingness_verified", "released", "repatriated", "escaped", "recaptured",
        "died", "remains_returned", "seen", "family_informed", "transmitted", "note",
        "closed", "reopened", "handed_over", "handover_refused", "handover_absent",
        "shared", "share_ended",
    }
)  # fmt: skip
# Facts that can change every period, whatever their date: what a retraction undoes may
# be dated anywhere; identity (nationality) and erasure are not dated.
UNDATED_EFFECT = frozenset({"retracted", "identity_updated", "erased", OPENED})


def earliest_new_day(facts: Sequence[Fact]) -> date | None:
    """The earliest world day of the facts the last write added (one write's facts
    share its time stamp, and stamps only grow), when every one of them is of a type in
    ``DATED_EFFECT``; else None (derive the whole timeline)."""
    at = facts[-1].recorded_at
    added = [f for f in reversed(facts) if f.recorded_at == at]
    if any(f.type not in DATED_EFFECT for f in added):
        return None
    return min(f.occurred_on for f in added)


def timeline(
    facts: Sequence[Fact], since: date | None = None, before: Sequence[Period] = ()
) -> list[Period]:
    """The case's world timeline as the facts tell it now: a period from the dawn of
    time, then a new one at each day on which something changes. Each period is what
    ``derive`` says as of its first day, so it can never disagree with a case's as-of
    view: the facts are walked once in world order, the state taken at the end of each
    day exactly as ``derive`` would (the unit test compares the two on random
    histories), instead of one ``derive`` per day.

    ``before``: the timeline before facts dated ``since`` or later were added (all of
    them of a type in ``DATED_EFFECT``, see ``earliest_new_day``). A world day earlier
    than every new fact reads the same with or without them, so the periods that begin
    before ``since`` are kept and only the days from ``since`` on are taken. A change to
    the rules of ``derive`` therefore needs ``casebook views rebuild`` (a migration that
    changes them says so)."""
    world = world_order(active_facts(facts))
    days = sorted({f.occurred_on for f in world})
    periods: list[Period] = []
    starts = [date.min, *days]
    kept = sorted((p for p in before if since is not None and p.valid_from < since), key=_start)
    if kept:
        periods = [*kept[:-1], replace(kept[-1], valid_to=None)]
        starts = [day for day in days if since is not None and day >= since]
    for day, status, held_by, nationality, category, disputed in columns_by_day(world, starts):
        period = Period(day, None, status, held_by, nationality, category, disputed)
        if periods and _same_columns(periods[-1], period):
            continue
        if periods:
            periods[-1] = replace(periods[-1], valid_to=day)
        periods.append(period)
    return periods


def _start(period: Period) -> date:
    return period.valid_from


def _same_columns(a: Period, b: Period) -> bool:
    """Whether two periods say the same (every column but their span)."""
    return (a.status, a.held_by, a.nationality, a.category, a.disputed) == (
        b.status,
        b.held_by,
        b.nationality,
        b.category,
        b.disputed,
    )
