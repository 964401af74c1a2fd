"""The ``Exchange`` aggregate: one handover on one day, and what it records on each case.

An exchange names, for each person in it, who hands them over, to whom, and what came
of it: ``handed_over``, ``refused`` (the person would not go, or a side would not take
them) or ``absent`` (not brought). It is recorded together with the matching fact on
every case in it (``handed_over``, ``handover_refused``, ``handover_absent``), in one
transaction: the register holds the whole exchange or none of it.

``check_handover`` is the one rule for whether a case can take part. A case cannot when:

- the case is closed, or the client's expected version of it is stale;
- on the exchange's day the register does not have the person in the handing party's
  custody (not held, held by someone else, recorded dead, already handed over);
- the person is already handed over in a standing handover dated on or after that day;
- the outcome is ``handed_over`` and a custody fact dated after that day has the person
  still held, with no new capture in between (the handover would contradict it);
- the outcome is ``handed_over`` to the party of the person's nationality (or their
  nationality is not known) and the latest willingness check on record (ICRC private
  interview, GC III Art. 109(3)) says ``unwilling``: nobody is repatriated against their
  will, but a handover to a third country is how such a person usually leaves. No check
  on record is allowed; the handover notes it and the reconciliation flags it.

A party's announced figure for the exchange is kept beside what was recorded
(``announced``), never in place of it: 12 announced by one side, 14 by the other and
13 recorded stay three numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.case import Case, NewFact
from domain.facts import HANDED_OVER, HANDOVER_ABSENT, HANDOVER_REFUSED, Fact
from domain.rules import InvalidTransition
from domain.state import HANDOVERS, IN_CUSTODY, active_facts, custodian, derive, world_order

OUTCOMES = {
    "handed_over": HANDED_OVER,
    "refused": HANDOVER_REFUSED,
    "absent": HANDOVER_ABSENT,
}


@dataclass(frozen=True)
class Handover:
    """One person in an exchange, as the client asked for it."""

    case_id: UUID
    from_party: str
    to_party: str
    outcome: str
    refused_by: str | None = None
    expected_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "case_id": str(self.case_id),
            "from_party": self.from_party,
            "to_party": self.to_party,
            "outcome": self.outcome,
        }
        if self.refused_by is not None:
            out["refused_by"] = self.refused_by
        return out


@dataclass(frozen=True)
class NewExchange:
    """A validated exchange, ready to be checked against the cases and recorded."""

    occurred_on: date
    handovers: tuple[Handover, ...]
    source: dict[str, Any]
    negotiation_id: UUID | None = None
    agreement: int | None = None
    place: str | None = None
    mediators: tuple[str, ...] = ()
    consideration: tuple[dict[str, Any], ...] = ()
    announced: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CaseProblem:
    """Why one case cannot take part in an exchange."""

    case_id: UUID
    kind: str  # "invalid-transition", "version-conflict" or "not-found"
    detail: str
    current_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"case_id": str(self.case_id), "problem": self.kind}
        out["detail"] = self.detail
        if self.current_version is not None:
            out["current_version"] = self.current_version
        return out


class ExchangeRefused(Exception):
    """At least one case cannot take part: nothing of the exchange was recorded."""

    def __init__(self, problems: list[CaseProblem]):
        super().__init__(f"{len(problems)} case(s) cannot take part in the exchange")
        self.problems = problems


def latest_willingness(facts: list[Fact], as_of: date) -> str | None:
    """The result of the latest willingness check standing on ``as_of``, if any."""
    checks = [
        f
        for f in world_order(active_facts(facts))
        if f.type == "willingness_verified" and f.occurred_on <= as_of
    ]
    return str(checks[-1].get("result")) if checks else None


def check_handover(case: Case, handover: Handover, occurred_on: date) -> CaseProblem | None:
    """Whether ``case`` can take part in an exchange on ``occurred_on`` as ``handover``
    says (see the module's docstring); None when it can."""

    def refuse(detail: str) -> CaseProblem:
        return CaseProblem(case.id, "invalid-transition", detail, case.version)

    if handover.expected_version is not None and handover.expected_version != case.version:
        return CaseProblem(
            case.id,
            "version-conflict",
            f"the case is at version {case.version}, not {handover.expected_version}",
            case.version,
        )
    state = derive(case.facts, as_of=occurred_on)
    if derive(case.facts).closed:
        return refuse("the case is closed")
    if state.status in ("deceased", "remains_returned"):
        return refuse(f"the person is recorded dead on or before {occurred_on}")
    later = [
        f for f in active_facts(case.facts) if f.type in HANDOVERS and f.occurred_on >= occurred_on
    ]
    if later:
        first = min(later, key=lambda f: (f.occurred_on, f.version))
        return refuse(
            f"the person is already {first.type.replace('_', ' ')} on "
            f"{first.occurred_on} (version {first.version})"
        )
    if state.status in ("released", "repatriated"):
        return refuse(
            f"the person is already {state.status} by {occurred_on}: handed over before, "
            "with no custody recorded since"
        )
    if state.status not in IN_CUSTODY or state.held_by != handover.from_party:
        where = (
            f"held by {state.held_by}"
            if state.status in IN_CUSTODY
            else f"recorded as {state.status}"
        )
        return refuse(
            f"on {occurred_on} the register has the person {where}, not in the custody of "
            f"{handover.from_party}: record the custody first"
        )
    if handover.outcome != "handed_over":
        return None
    custody_after = _custody_after(case, occurred_on)
    if custody_after is not None:
        return refuse(
            f"version {custody_after.version} has the person in custody on "
            f"{custody_after.occurred_on}, after this exchange, with no new capture in "
            "between: retract it, or record a capture after the exchange"
        )
    home = state.person.nationality
    to_home = home in (None, "unknown", "withheld") or handover.to_party == home
    if to_home and latest_willingness(case.facts, occurred_on) == "unwilling":
        return refuse(
            "the latest willingness check on record says the person is unwilling to "
            "be repatriated (GC III Art. 109(3)): record the outcome as refused"
        )
    return None


def _custody_after(case: Case, day: date) -> Fact | None:
    """The first fact after ``day`` that has the person in custody without a new capture
    before it: a handover on ``day`` would contradict it."""
    for fact in world_order(active_facts(case.facts)):
        if fact.occurred_on <= day:
            continue
        if fact.type in ("captured", "recaptured"):
            return None
        if custodian(fact) is not None:
            return fact
    return None


def handover_fact(
    handover: Handover, exchange_id: UUID, new: NewExchange, willingness: str | None
) -> NewFact:
    """The fact an exchange records on the case of ``handover``."""
    data: dict[str, Any] = {
        "by_party": handover.from_party,
        "to_party": handover.to_party,
        "exchange_id": str(exchange_id),
    }
    if new.negotiation_id is not None:
        data["negotiation_id"] = str(new.negotiation_id)
    if new.place is not None:
        data["place"] = new.place
    if handover.outcome == "handed_over":
        data["willingness"] = willingness or "not_checked"
    if handover.outcome == "refused" and handover.refused_by is not None:
        data["refused_by"] = handover.refused_by
    return NewFact(OUTCOMES[handover.outcome], new.occurred_on, new.source, data)


def record_on_case(
    case: Case, handover: Handover, exchange_id: UUID, new: NewExchange, stamp: Any
) -> CaseProblem | None:
    """Check, then record the handover's fact on ``case``; a problem instead if it
    cannot take part (the case is then left as it was)."""
    problem = check_handover(case, handover, new.occurred_on)
    if problem is not None:
        return problem
    willingness = latest_willingness(case.facts, new.occurred_on)
    try:
        case.record(handover_fact(handover, exchange_id, new, willingness), stamp)
    except InvalidTransition as e:
        return CaseProblem(case.id, "invalid-transition", e.detail, case.version)
    return None


class Exchange(Aggregate):
    """One handover on one day, inside a negotiation or not."""

    class Recorded(Aggregate.Created):
        negotiation_id: str | None
        agreement: int | None
        occurred_on: date
        place: str | None
        mediators: list[str]
        handovers: list[dict[str, Any]]
        consideration: list[dict[str, Any]]
        announced: list[dict[str, Any]]
        source: dict[str, Any]
        recorded_at: datetime
        recorded_by: dict[str, str]

    @event(Recorded)
    def __init__(
        self,
        negotiation_id: str | None,
        agreement: int | None,
        occurred_on: date,
        place: str | None,
        mediators: list[str],
        handovers: list[dict[str, Any]],
        consideration: list[dict[str, Any]],
        announced: list[dict[str, Any]],
        source: dict[str, Any],
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> None:
        self.negotiation_id = negotiation_id
        self.agreement = agreement
        self.occurred_on = occurred_on
        self.place = place
        self.mediators = mediators
        self.handovers = handovers
        self.consideration = consideration
        self.announced = announced
        self.source = source
        self.recorded_at = recorded_at
        self.recorded_by = recorded_by

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for h in self.handovers:
            out[h["outcome"]] += 1
        return out
