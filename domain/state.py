"""A case's state, derived from its facts by one pure function.

Facts arrive in any order: a capture may be reported weeks after a later transfer was
recorded. The aggregate keeps them in the order they were recorded (versions); the
person's status follows the order of the world (``occurred_on``, then version). Every
reader of state (the transition guards, the status views, the as-of and known-at
answers, the view rebuild) calls ``derive``; nothing else computes status.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from domain.facts import ERASED, OPENED, Fact
from domain.identity import Identity

# Facts that put the person in a party's custody, and which fields name that party, in
# order of precedence: a transfer without to_party stays with the transferring party.
CUSTODY_PARTY = {
    "captured": ("by_party",),
    "held": ("by_party",),
    "recaptured": ("by_party",),
    "visited": ("held_by",),
    "transferred": ("to_party", "by_party"),
}


def custodian(fact: Fact) -> str | None:
    """The party a fact places the person with, if it is a custody fact."""
    for name in CUSTODY_PARTY.get(fact.type, ()):
        if fact.get(name):
            return str(fact.get(name))
    return None


# Facts that show the person alive on their date.
ALIVE_EVIDENCE = frozenset(
    {
        "captured",
        "held",
        "transferred",
        "hospitalised",
        "visited",
        "seen",
        "recaptured",
        "released",
        "repatriated",
        "willingness_verified",
        "escaped",
        "handed_over",
        "handover_refused",
    }
)
DEATH = frozenset({"died", "remains_returned"})
# Facts that hand the person to a party and end custody: a unilateral release, a
# repatriation, or a handover in an exchange (``domain.exchange``).
HANDOVERS = ("released", "repatriated", "handed_over")
DEAD = ("deceased", "remains_returned")
IN_CUSTODY = ("held", "hospitalised")


@dataclass
class CaseState:
    """What the register says of one person at one point on both time axes."""

    category: str = ""
    person: Identity = field(default_factory=Identity)
    status: str = "unknown"
    held_by: str | None = None
    place: str | None = None
    last_seen_alive_on: date | None = None
    classifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False
    # Set once the person's identifying data is erased: when, by whom and why.
    erased: dict[str, Any] | None = None
    org: str = ""  # the organisation that opened the case, and owns it
    shares: dict[str, dict[str, Any]] = field(default_factory=dict)  # org -> the share
    version: int = 0
    updated_at: datetime | None = None
    opened_at: datetime | None = None

    @property
    def disputed(self) -> bool:
        return bool(self.disputes)


def retracted_versions(facts: Sequence[Fact]) -> set[int]:
    """Versions undone by a retraction that stands. A retraction may itself be
    retracted, which restores its target: walking from the newest version down settles
    each retraction before its (older) target is reached."""
    if not any(f.type == "retracted" for f in facts):
        return set()  # most cases: nothing to walk
    by_version = {f.version: f for f in facts}
    retracted: set[int] = set()
    for f in sorted(facts, key=lambda f: f.version, reverse=True):
        if f.type == "retracted" and f.version not in retracted:
            target = f.get("version")
            if target in by_version:
                retracted.add(target)
    return retracted


def active_facts(facts: Sequence[Fact]) -> list[Fact]:
    """The facts that stand: not retracted, and not retractions themselves."""
    retracted = retracted_versions(facts)
    return [f for f in facts if f.version not in retracted and f.type != "retracted"]


def is_closed(active: Sequence[Fact]) -> bool:
    """Whether the facts that stand (``active_facts``) leave the case closed: the last
    closing or reopening in world order decides, as in ``derive``."""
    closed = False
    for fact in world_order(f for f in active if f.type in ("closed", "reopened")):
        closed = fact.type == "closed"
    return closed


# Within one day, facts are taken in the order they must have happened, whatever the
# order they were recorded in: taken into custody, then held, moved, handed back or
# escaped, then died, then remains returned; the register's own acts (closing,
# reopening) come last. Facts of equal rank keep their recorded order.
SAME_DAY_RANK = {
    "captured": 0,
    "recaptured": 0,
    "transferred": 2,
    "released": 3,
    "repatriated": 3,
    "handed_over": 3,
    "escaped": 3,
    "died": 4,
    "remains_returned": 5,
    "closed": 6,
    "reopened": 6,
}


def world_order(facts: Iterable[Fact]) -> list[Fact]:
    return sorted(facts, key=lambda f: (f.occurred_on, SAME_DAY_RANK.get(f.type, 1), f.version))


def derive(
    facts: Sequence[Fact],
    *,
    as_of: date | None = None,
    known_at: datetime | None = None,
) -> CaseState:
    """The case as of the world date ``as_of`` (facts that had happened by the end of
    that day) with what had been recorded by ``known_at`` (both default to now)."""
    known = [f for f in facts if known_at is None or f.recorded_at <= known_at]
    state = CaseState()
    if not known:
        return state
    state.version = max(f.version for f in known)
    state.updated_at = max(f.recorded_at for f in known)
    active = active_facts(known)
    _apply_identity(state, active)
    world = [f for f in world_order(active) if as_of is None or f.occurred_on <= as_of]
    for fact in world:
        _apply(state, fact)
    last_handover = next((f for f in reversed(world) if f.type in HANDOVERS), None)
    state.status, state.held_by = _settled(state, last_handover)
    state.disputes = _disputes(state, world)
    return state


# A day, and the status, holder, nationality, category and disputed flag as of it.
Columns = tuple[date, str, "str | None", "str | None", str, bool]


def columns_by_day(world: Sequence[Fact], starts: Iterable[date]) -> Iterator[Columns]:
    """What ``derive`` says as of each day of ``starts`` (ascending), as the columns the
    periods keep: the facts that stand, in world order (``world_order(active_facts())``)
    walked once, the state taken at the end of each day exactly as ``derive`` takes it
    (``domain.timeline`` builds the periods from it)."""
    state = CaseState()
    if world:
        _apply_identity(state, world)
    taken = 0  # how many facts of ``world`` the state has applied
    last_handover: Fact | None = None
    for day in starts:
        while taken < len(world) and world[taken].occurred_on <= day:
            fact = world[taken]
            _apply(state, fact)
            if fact.type in HANDOVERS:
                last_handover = fact
            taken += 1
        status, held_by = _settled(state, last_handover)
        disputed = _is_disputed(state, world[:taken])
        yield day, status, held_by, state.person.nationality, state.category, disputed


def _apply_identity(state: CaseState, active: Sequence[Fact]) -> None:
    # Identity and access are not facts of the world's timeline: they apply in recorded
    # order (a share as of a past day is the share as recorded, not as of that day).
    for fact in sorted(active, key=lambda f: f.version):
        if fact.type == OPENED:
            state.category = fact.get("category")
            state.opened_at = fact.recorded_at
            state.person = fact.person or Identity()
            state.org = str(fact.recorded_by.get("org", ""))
        elif fact.type == "shared":
            state.shares[fact.get("org")] = {
                "org": fact.get("org"),
                "purpose": fact.get("purpose"),
                "since": fact.recorded_at.isoformat(),
                "version": fact.version,
                "by": fact.recorded_by,
            }
        elif fact.type == "share_ended":
            state.shares.pop(fact.get("org"), None)
        elif fact.type == ERASED:
            state.erased = {
                "at": fact.recorded_at.isoformat(),
                "reason": fact.get("reason"),
                "version": fact.version,
            }
        elif fact.type == "identity_updated" and fact.person is not None:
            state.person = state.person.merged(fact.person)


def _apply(state: CaseState, fact: Fact) -> None:
    kind = fact.type
    if kind in ALIVE_EVIDENCE:
        last = state.last_seen_alive_on
        state.last_seen_alive_on = fact.occurred_on if last is None else max(last, fact.occurred_on)
    if state.status in DEAD and kind in ("seen", "visited"):
        return  # seen alive after a death: the death is disputed (_life_dispute), not undone
    holder = custodian(fact)
    if holder:
        state.held_by = holder
        if not (kind == "visited" and state.status == "hospitalised"):
            state.status = "held"
    if kind in ("captured", "held", "recaptured", "visited"):
        state.place = fact.get("place") or state.place
    if kind == "transferred":
        state.place = fact.get("to_place") or state.place
    elif kind == "hospitalised" and state.status in IN_CUSTODY:
        # Hospitalised people stay in custody; a hospital stay after a release or
        # repatriation is not custody, and changes nothing here.
        state.status = "hospitalised"
        state.place = fact.get("place") or state.place
    elif kind == "escaped":
        state.status, state.held_by, state.place = "escaped", None, None
    elif kind in HANDOVERS:
        state.status = "released"  # settled against nationality in _settled
        state.held_by = None
        state.place = fact.get("place")
    elif kind == "died":
        state.status, state.held_by = "deceased", None
        state.place = fact.get("place") or state.place
    elif kind == "remains_returned":
        state.status, state.held_by = "remains_returned", None
    elif kind == "classified":
        state.classifications[fact.get("by_party")] = {
            "by_party": fact.get("by_party"),
            "classification": fact.get("classification"),
            "basis": fact.get("basis"),
            "source": fact.source,
            "occurred_on": fact.occurred_on.isoformat(),
            "version": fact.version,
        }
    elif kind in ("closed", "reopened"):
        state.closed = kind == "closed"


def _settled(state: CaseState, last_handover: Fact | None) -> tuple[str, str | None]:
    """The status and holder the facts applied so far come to, ``last_handover`` the
    latest of them in world order that is in ``HANDOVERS``: handed to the party of
    one's nationality is repatriation, to any other, release; a closed case counts for
    nobody's custody."""
    status, held_by = state.status, state.held_by
    if status in ("released", "repatriated") and last_handover is not None:
        to_party = last_handover.get("to_party")
        nationality = state.person.nationality
        status = "repatriated" if to_party and to_party == nationality else "released"
    if state.closed:
        status, held_by = "closed", None
    return status, held_by


def _disputes(state: CaseState, world: Sequence[Fact]) -> list[dict[str, Any]]:
    return [
        d
        for d in (
            *_custody_disputes(world),
            _life_dispute(world),
            _classification_dispute(state),
        )
        if d is not None
    ]


def _is_disputed(state: CaseState, world: Sequence[Fact]) -> bool:
    """``bool(_disputes(state, world))``, the cheapest question first."""
    return (
        _classification_dispute(state) is not None
        or _life_dispute(world) is not None
        or bool(_custody_disputes(world))
    )


def _claim(fact: Fact, says: str) -> dict[str, Any]:
    return {
        "version": fact.version,
        "type": fact.type,
        "occurred_on": fact.occurred_on.isoformat(),
        "source": fact.source,
        "says": says,
    }


def _custody_disputes(world: Sequence[Fact]) -> list[dict[str, Any]]:
    """A party denies holding the person while another source places them in its custody:
    at the time of the denial, or now, with no later acknowledgement by that party."""
    if not any(f.type == "holding_denied" for f in world):
        return []  # most cases: no party denies anything
    disputes = []
    held_by: str | None = None
    evidence: dict[str, Fact] = {}
    stance: dict[str, Fact] = {}
    denied_while_held: dict[str, Fact] = {}
    for fact in world:
        party = custodian(fact)
        if party:
            held_by = party
            evidence[party] = fact
        elif fact.type in ("escaped", "died", "remains_returned", *HANDOVERS):
            held_by = None
        if fact.type in ("holding_denied", "holding_acknowledged"):
            by = fact.get("by_party")
            stance[by] = fact
            denied_while_held.pop(by, None)
            if fact.type == "holding_denied" and held_by == by and by in evidence:
                denied_while_held[by] = evidence[by]
    for party, fact in sorted(stance.items()):
        if fact.type != "holding_denied":
            continue
        proof = denied_while_held.get(party) or (evidence.get(party) if held_by == party else None)
        if proof is not None:
            disputes.append(
                {
                    "about": "custody",
                    "party": party,
                    "claims": [
                        _claim(proof, f"held by {party}"),
                        _claim(fact, f"{party} denies holding the person"),
                    ],
                }
            )
    return disputes


def _life_dispute(world: Sequence[Fact]) -> dict[str, Any] | None:
    """A death asserted, and the person seen alive after it."""
    death = next((f for f in world if f.type in DEATH), None)
    if death is None:
        return None
    later = [
        f for f in world if f.type in ("seen", "visited") and f.occurred_on > death.occurred_on
    ]
    if not later:
        return None
    return {
        "about": "life",
        "claims": [_claim(death, "dead"), *(_claim(f, "seen alive") for f in later)],
    }


def _classification_dispute(state: CaseState) -> dict[str, Any] | None:
    """Parties' latest claims of status disagree (GC III Art. 5(2): protected as a POW
    until a tribunal decides)."""
    claims = state.classifications
    if len({c["classification"] for c in claims.values()}) < 2:
        return None
    return {
        "about": "classification",
        "claims": [
            {
                "version": c["version"],
                "type": "classified",
                "occurred_on": c["occurred_on"],
                "source": c["source"],
                "says": f"{party}: {c['classification']}",
            }
            for party, c in sorted(claims.items())
        ],
    }
