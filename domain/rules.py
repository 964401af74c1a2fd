"""Which fact may follow which: the transition table, in one place, and its guard.

Order rules follow the world's order (``occurred_on``), not the order of recording,
because facts arrive late and out of order. The guard therefore does not ask "what is
the status now?" but "would the facts, with this one added, contradict each other in a
way they did not before?". That one question covers a custody fact dated after a death,
a death dated before a recorded custody fact, and a retraction that would bring a
retracted death back in front of later custody facts.

| fact type                          | closed case | alive on its date | other rule            |
|------------------------------------|-------------|-------------------|-----------------------|
| captured, held, transferred,       | refused     | required          |                       |
| hospitalised, escaped, recaptured, |             |                   |                       |
| released, repatriated,             |             |                   |                       |
| willingness_verified, handed_over, |             |                   |                       |
| handover_refused                   |             |                   |                       |
| visited, seen                      | refused     | no: after a death |                       |
|                                    |             | it disputes it    |                       |
| died                               | refused     | no                | one unretracted death |
| remains_returned                   | refused     | no                | once                  |
| classified, holding_acknowledged,  | refused     | no                |                       |
| holding_denied, charged,           |             |                   |                       |
| sentenced, family_informed,        |             |                   |                       |
| transmitted, identity_updated      |             |                   |                       |
| handover_absent                    | refused     | no                |                       |
| shared, share_ended                | allowed     | no                | see ``domain.state``  |
| note                               | allowed     | no                |                       |
| retracted                          | allowed     | no                | target exists, is not |
|                                    |             |                   | the opening or a      |
|                                    |             |                   | share, and is not     |
|                                    |             |                   | already retracted     |
| closed                             | refused     | no                | case is open          |
| reopened                           | allowed     | no                | case is closed        |
| erased                             | allowed     | no                | not erased already    |

Once a person is erased, the case takes no fact at all: its key is gone, so nothing
new about the person could be sealed, and the register keeps no personal data of
someone it was asked to forget.

"Alive on its date": refused when dated after an unretracted death or return of
remains. A fact that would put an existing one in that position (a death dated
before recorded custody, a retraction restoring such a death) is refused the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain.facts import ALL_FACT_TYPES, ERASED, OPENED, Fact
from domain.state import DEATH, active_facts, is_closed, retracted_versions, world_order

NEEDS_ALIVE = frozenset(
    {
        "captured",
        "held",
        "transferred",
        "hospitalised",
        "escaped",
        "recaptured",
        "released",
        "repatriated",
        "willingness_verified",
        "handed_over",
        "handover_refused",
    }
)
ALLOWED_ON_CLOSED = frozenset({"note", "retracted", "reopened", "shared", "share_ended", "erased"})
ONCE = frozenset({"died", "remains_returned"})

assert set(ALL_FACT_TYPES) >= NEEDS_ALIVE | ALLOWED_ON_CLOSED | ONCE
assert ONCE <= DEATH  # check_transition skips the violations of a case with no death


class InvalidTransition(Exception):
    """The case's facts forbid this one. Nothing is recorded."""

    def __init__(self, detail: str, conflicts_with: Sequence[int] = ()):
        super().__init__(detail)
        self.detail = detail
        self.conflicts_with = list(conflicts_with)


@dataclass(frozen=True, order=True)
class Violation:
    kind: str
    version: int
    other: int

    def describe(self) -> str:
        if self.kind == "after_death":
            return (
                f"the fact of version {self.version} is dated after the death recorded "
                f"in version {self.other}; retract one of them first"
            )
        return (
            f"version {self.version} records a second {self.kind}; version {self.other} "
            "already does: retract it first"
        )


def violations(active: Sequence[Fact]) -> set[Violation]:
    """Contradictions among unretracted facts that the register refuses to hold."""
    found: set[Violation] = set()
    ordered = world_order(active)
    death = next((f for f in ordered if f.type in DEATH), None)
    if death is not None:
        for fact in ordered:
            if fact.type in NEEDS_ALIVE and fact.occurred_on > death.occurred_on:
                found.add(Violation("after_death", fact.version, death.version))
    remains = next((f for f in ordered if f.type == "remains_returned"), None)
    if remains is not None:
        for fact in ordered:
            if fact.type == "died" and fact.occurred_on > remains.occurred_on:
                found.add(Violation("after_death", fact.version, remains.version))
    for kind in ONCE:
        same = sorted((f for f in active if f.type == kind), key=lambda f: f.version)
        found.update(Violation(kind, f.version, same[0].version) for f in same[1:])
    return found


def check_transition(facts: Sequence[Fact], new: Fact) -> None:
    """Raise ``InvalidTransition`` unless ``new`` may follow ``facts``."""
    active = active_facts(facts)
    if any(f.type == ERASED for f in active):
        raise InvalidTransition("the person was erased: the case takes no new facts")
    closed = is_closed(active)
    if closed and new.type not in ALLOWED_ON_CLOSED:
        raise InvalidTransition("the case is closed: reopen it before recording new facts")
    if new.type == "closed" and closed:
        raise InvalidTransition("the case is already closed")
    if new.type == "reopened" and not closed:
        raise InvalidTransition("only a closed case can be reopened")
    if new.type == "retracted":
        _check_retraction(facts, new.get("version"))
    elif new.type not in DEATH and not any(f.type in DEATH for f in facts):
        return  # every violation involves a death or a return of remains: none to add
    added = violations(active_facts([*facts, new])) - violations(active)
    if added:
        first = min(added)
        raise InvalidTransition(
            first.describe(), sorted({first.other, first.version} - {new.version})
        )


def _check_retraction(facts: Sequence[Fact], target: int) -> None:
    by_version = {f.version: f for f in facts}
    if target not in by_version:
        raise InvalidTransition(f"there is no version {target} to retract")
    if by_version[target].type == OPENED:
        raise InvalidTransition("the opening of a case cannot be retracted: close the case")
    if by_version[target].type in ("shared", "share_ended"):
        # Access is the owner's decision, made with the share routes, not undone here.
        raise InvalidTransition("a share is ended with DELETE /cases/{id}/shares/{org}")
    if target in retracted_versions(facts):
        raise InvalidTransition(f"version {target} is already retracted")
