"""The ``Case`` aggregate: one per person, its history stored as immutable events.

Each fact type has an explicit event class, so that a stored event's topic names what
happened (``domain.case:Case.Captured``). Topics are part of the stored data: renaming
or moving a class here breaks replay of the log unless the old topic is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, event

from domain.facts import (
    ALL_FACT_TYPES,
    CATEGORIES,
    ERASED,
    OPENED,
    PERSONAL_DATA,
    Fact,
    FactError,
)
from domain.identity import Identity
from domain.rules import InvalidTransition, check_transition
from domain.state import CaseState, derive


@dataclass(frozen=True)
class Stamp:
    """Who records, and when: assigned by the store under its write lock."""

    recorded_at: datetime
    key_name: str
    org: str

    @property
    def recorded_by(self) -> dict[str, str]:
        return {"key": self.key_name, "org": self.org}


@dataclass(frozen=True)
class NewFact:
    """A validated fact, ready to be recorded (see ``domain.input.parse_fact``)."""

    type: str
    occurred_on: date | None
    source: dict[str, Any]
    data: dict[str, Any]
    person: Identity | None = None


# The register's own acts on a case: they happen when they are recorded.
ACTS_WHEN_RECORDED = frozenset({"closed", "reopened", "shared", "share_ended", ERASED})


class Case(Aggregate):
    """A person deprived of liberty, or missing, and every fact recorded about them."""

    class Opened(Aggregate.Created):
        """The case was opened for one person, reported by a source."""

        personal_data: ClassVar[frozenset[str]] = frozenset()  # it has no ``data``
        category: str
        person: Identity
        source: dict[str, Any]
        recorded_at: datetime
        recorded_by: dict[str, str]

    @event(Opened)
    def __init__(
        self,
        category: str,
        person: Identity,
        source: dict[str, Any],
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> None:
        if category not in CATEGORIES:
            raise FactError({"category": f"must be one of {', '.join(CATEGORIES)}"})
        if not person.has_a_name() and not person.erased:
            raise FactError({"person.family_name": "give a family name or an alias"})
        self.facts: list[Fact] = [
            Fact(
                version=1,
                type=OPENED,
                occurred_on=recorded_at.date(),
                recorded_at=recorded_at,
                source=source,
                recorded_by=recorded_by,
                data={"category": category},
                person=person,
            )
        ]

    class FactRecorded(Aggregate.Event):
        """Base of every fact after the opening. ``data`` holds the type's fields."""

        fact_type: ClassVar[str] = ""
        # The fields of ``data`` sealed with the person's key (``infrastructure.crypto``);
        # the identity and the source's name and reference are sealed on every event.
        personal_data: ClassVar[frozenset[str]] = PERSONAL_DATA
        occurred_on: date
        source: dict[str, Any]
        recorded_at: datetime
        recorded_by: dict[str, str]
        data: dict[str, Any]
        person: Identity | None

        def apply(self, aggregate: Any) -> None:
            aggregate.facts.append(self.as_fact())

        def as_fact(self) -> Fact:
            return Fact(
                version=self.originator_version,
                type=self.fact_type,
                occurred_on=self.occurred_on,
                recorded_at=self.recorded_at,
                source=self.source,
                recorded_by=self.recorded_by,
                data=self.data,
                person=self.person,
            )

    class Captured(FactRecorded):
        fact_type = "captured"

    class Held(FactRecorded):
        fact_type = "held"

    class Transferred(FactRecorded):
        fact_type = "transferred"

    class Hospitalised(FactRecorded):
        fact_type = "hospitalised"

    class Visited(FactRecorded):
        fact_type = "visited"

    class HoldingAcknowledged(FactRecorded):
        fact_type = "holding_acknowledged"

    class HoldingDenied(FactRecorded):
        fact_type = "holding_denied"

    class Classified(FactRecorded):
        fact_type = "classified"

    class Charged(FactRecorded):
        fact_type = "charged"

    class Sentenced(FactRecorded):
        fact_type = "sentenced"

    class WillingnessVerified(FactRecorded):
        fact_type = "willingness_verified"

    class Released(FactRecorded):
        fact_type = "released"

    class Repatriated(FactRecorded):
        fact_type = "repatriated"

    class Escaped(FactRecorded):
        fact_type = "escaped"

    class Recaptured(FactRecorded):
        fact_type = "recaptured"

    class Died(FactRecorded):
        fact_type = "died"

    class RemainsReturned(FactRecorded):
        fact_type = "remains_returned"

    class Seen(FactRecorded):
        fact_type = "seen"

    class FamilyInformed(FactRecorded):
        fact_type = "family_informed"

    class IdentityUpdated(FactRecorded):
        fact_type = "identity_updated"

    class Transmitted(FactRecorded):
        fact_type = "transmitted"

    class Noted(FactRecorded):
        fact_type = "note"

    class Retracted(FactRecorded):
        fact_type = "retracted"

    class Closed(FactRecorded):
        fact_type = "closed"

    class Reopened(FactRecorded):
        fact_type = "reopened"

    # Recorded by an exchange (``domain.exchange``), never through /events.
    class HandedOver(FactRecorded):
        fact_type = "handed_over"

    class HandoverRefused(FactRecorded):
        fact_type = "handover_refused"

    class HandoverAbsent(FactRecorded):
        fact_type = "handover_absent"

    # Recorded by the share routes, never through /events.
    class Shared(FactRecorded):
        fact_type = "shared"

    class ShareEnded(FactRecorded):
        fact_type = "share_ended"

    # Recorded by ``POST /cases/{id}/erase``, never through /events. Its reason is the
    # register's own account of a lawful request, kept in clear: it outlives the key.
    class Erased(FactRecorded):
        fact_type = ERASED
        personal_data = frozenset()

        def apply(self, aggregate: Any) -> None:
            aggregate.facts = [f.redacted() for f in aggregate.facts]
            aggregate.facts.append(self.as_fact())

    def record(self, fact: NewFact, stamp: Stamp) -> None:
        """Record one fact after checking the transition table (``domain.rules``)."""
        occurred_on = fact.occurred_on
        if occurred_on is None or fact.type in ACTS_WHEN_RECORDED:
            occurred_on = stamp.recorded_at.date()  # these act when recorded
        candidate = Fact(
            version=self.version + 1,
            type=fact.type,
            occurred_on=occurred_on,
            recorded_at=stamp.recorded_at,
            source=fact.source,
            recorded_by=stamp.recorded_by,
            data=fact.data,
            person=fact.person,
        )
        check_transition(self.facts, candidate)
        self.trigger_event(
            EVENT_CLASSES[fact.type],
            occurred_on=occurred_on,
            source=fact.source,
            recorded_at=stamp.recorded_at,
            recorded_by=stamp.recorded_by,
            data=fact.data,
            person=fact.person,
        )

    def share(self, org: str, purpose: str, source: dict[str, Any], stamp: Stamp) -> None:
        """Give another organisation access to the case (its owner's decision)."""
        state = self.state()
        if org == state.org:
            raise InvalidTransition("the case belongs to this organisation already")
        if org in state.shares:
            raise InvalidTransition("the case is already shared with this organisation")
        self.record(NewFact("shared", None, source, {"org": org, "purpose": purpose}), stamp)

    def end_share(self, org: str, reason: str | None, source: dict[str, Any], stamp: Stamp) -> None:
        if org not in self.state().shares:
            raise InvalidTransition("the case is not shared with this organisation")
        data = {"org": org} if reason is None else {"org": org, "reason": reason}
        self.record(NewFact("share_ended", None, source, data), stamp)

    def erase(self, reason: str, source: dict[str, Any], stamp: Stamp) -> None:
        """Forget the person's identifying data: from now on every fact reads redacted
        (``Fact.redacted``); the store destroys their key in the same transaction."""
        if self.state().erased is not None:
            raise InvalidTransition("the person was erased already")
        self.record(NewFact(ERASED, None, source, {"reason": reason}), stamp)

    def __deepcopy__(self, memo: dict[int, Any]) -> Case:
        """A copy for one command. Facts are immutable values, so the copy shares them
        and only the lists are new: O(facts) pointer copies instead of a deep walk."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.facts = list(self.facts)
        clone._pending_events = list(self._pending_events)
        return clone

    def state(self, *, as_of: date | None = None, known_at: datetime | None = None) -> CaseState:
        return derive(self.facts, as_of=as_of, known_at=known_at)


EVENT_CLASSES: dict[str, type[Case.FactRecorded]] = {
    cls.fact_type: cls
    for cls in vars(Case).values()
    if isinstance(cls, type) and issubclass(cls, Case.FactRecorded) and cls.fact_type
}
assert set(EVENT_CLASSES) == set(ALL_FACT_TYPES), set(ALL_FACT_TYPES) ^ set(EVENT_CLASSES)
