"""The ``Negotiation`` aggregate: parties, mediators, lists and agreements; and its
reconciliation, which says who is where in the negotiation and who is still outstanding.

Each party submits lists, and new versions of them; a new version replaces the party's
current list and the old ones stay in the history. An entry names a person by case id,
or by name (with date of birth and nationality when given). A name entry is matched
against the register when the list is submitted (``infrastructure.matching``) and the
result is recorded with the entry: what the register matched at the time is part of the
history, and a rebuild does not rematch against a register that has grown since. A case
worker may then confirm a candidate (or any case) for an entry.

An agreement names transfers of people in each direction and the consideration that is
not a person (minefield maps, information on graves, a ship). Exchanges carry agreements
out (``domain.exchange``); they are aggregates of their own, linked by id.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

PRINCIPLES = ("all_for_all", "reciprocal", "humanitarian", "other")
MATCHED, CONFIRMED, CANDIDATES, UNMATCHED = "matched", "confirmed", "candidates", "unmatched"


class NegotiationError(ValueError):
    """A negotiation command that cannot be right as given: names each bad field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def listed_case(entry: Mapping[str, Any]) -> str | None:
    """The case an entry names: given by id, matched, or confirmed by a case worker."""
    match = entry.get("match") or {}
    if match.get("result") in (MATCHED, CONFIRMED):
        return str(match["case_id"])
    return None


class Negotiation(Aggregate):
    """A negotiation between two or more parties, with any number of mediators."""

    class Opened(Aggregate.Created):
        title: str
        parties: list[str]
        mediators: list[str]
        principle: str
        opened_on: date
        recorded_at: datetime
        recorded_by: dict[str, str]

    @event(Opened)
    def __init__(
        self,
        title: str,
        parties: list[str],
        mediators: list[str],
        principle: str,
        opened_on: date,
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> None:
        self.title = title
        self.parties = parties
        self.mediators = mediators
        self.principle = principle
        self.opened_on = opened_on
        self.opened_at = recorded_at
        self.org = recorded_by.get("org", "")
        self.updated_at = recorded_at
        self.recorded = [recorded_at]  # when each event was recorded, by version
        # party -> its list versions, oldest first; each version is never changed in
        # place (a confirmation makes a new dict), so copies can share them.
        self.lists: dict[str, list[dict[str, Any]]] = {}
        self.agreements: list[dict[str, Any]] = []

    def _touched(self, recorded_at: datetime) -> None:
        self.updated_at = recorded_at
        self.recorded = [*self.recorded, recorded_at]

    def version_known_at(self, known_at: datetime) -> int:
        """How many of the negotiation's events had been recorded by ``known_at``."""
        return sum(1 for t in self.recorded if t <= known_at)

    def as_of(self, day: date) -> Negotiation:
        """The negotiation as of a world day: the list versions submitted and the
        agreements reached by then (a confirmation stays with its list version)."""
        clone = copy.deepcopy(self)
        lists = {
            party: [v for v in versions if date.fromisoformat(v["submitted_on"]) <= day]
            for party, versions in self.lists.items()
        }
        clone.lists = {party: versions for party, versions in lists.items() if versions}
        clone.agreements = [a for a in self.agreements if date.fromisoformat(a["agreed_on"]) <= day]
        return clone

    def current_list(self, party: str) -> dict[str, Any] | None:
        """The party's list submitted last in the world (``submitted_on``; of two on one
        day, the one recorded last): a list that reaches the register late does not
        replace a newer one recorded before it."""
        versions = self.lists.get(party)
        if not versions:
            return None
        return max(versions, key=lambda v: (v["submitted_on"], v["list_version"]))

    def candidate_ids(self) -> set[str]:
        """Every case proposed as a candidate for a name on a current list."""
        out: set[str] = set()
        for party in self.parties:
            current = self.current_list(party)
            for entry in current["entries"] if current else ():
                match = entry.get("match") or {}
                if match.get("result") == CANDIDATES:
                    out.update(c["case_id"] for c in match["candidates"])
        return out

    # ---- lists --------------------------------------------------------------------

    class ListSubmitted(Aggregate.Event):
        party: str
        submitted_on: date
        entries: list[dict[str, Any]]
        recorded_at: datetime
        recorded_by: dict[str, str]

    def submit_list(
        self,
        party: str,
        submitted_on: date,
        entries: list[dict[str, Any]],
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> int:
        """Record a party's (new version of its) list; return the list's version."""
        if party not in self.parties:
            raise NegotiationError(
                {"submitted_by": f"not a party to this negotiation ({', '.join(self.parties)})"}
            )
        self._list_submitted(party, submitted_on, entries, recorded_at, recorded_by)
        return len(self.lists[party])

    @event(ListSubmitted)
    def _list_submitted(
        self,
        party: str,
        submitted_on: date,
        entries: list[dict[str, Any]],
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> None:
        versions = self.lists.setdefault(party, [])
        versions.append(
            {
                "party": party,
                "list_version": len(versions) + 1,
                "submitted_on": submitted_on.isoformat(),
                "recorded_at": recorded_at.isoformat(),
                "recorded_by": recorded_by,
                "entries": entries,
            }
        )
        self._touched(recorded_at)

    class MatchConfirmed(Aggregate.Event):
        party: str
        list_version: int
        entry: int
        case_id: str
        recorded_at: datetime
        recorded_by: dict[str, str]

    def confirm_match(
        self,
        party: str,
        list_version: int,
        entry: int,
        case_id: UUID,
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> dict[str, Any]:
        """A case worker says entry ``entry`` of version ``list_version`` of ``party``'s
        list (the version the case worker saw: entries move between versions) is this
        case. Returns the entry as it was (its name becomes an alias of the person)."""
        versions = self.lists.get(party)
        if not versions:
            raise NegotiationError({"party": "this party has submitted no list"})
        if not 1 <= list_version <= len(versions):
            raise NegotiationError(
                {"list_version": f"the party's lists are versions 1 to {len(versions)}"}
            )
        entries = versions[list_version - 1]["entries"]
        if not 0 <= entry < len(entries):
            raise NegotiationError({"entry": f"the list has entries 0 to {len(entries) - 1}"})
        if "name" not in entries[entry]:
            raise NegotiationError({"entry": "this entry names its case by id already"})
        if entries[entry].get("erased"):
            raise NegotiationError({"entry": "this entry's name was erased"})
        if listed_case(entries[entry]) == str(case_id):
            raise NegotiationError({"case_id": "this entry is already matched to this case"})
        self._match_confirmed(party, list_version, entry, str(case_id), recorded_at, recorded_by)
        return dict(entries[entry])

    @event(MatchConfirmed)
    def _match_confirmed(
        self,
        party: str,
        list_version: int,
        entry: int,
        case_id: str,
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> None:
        versions = self.lists[party]
        old = versions[list_version - 1]
        entries = list(old["entries"])
        confirmed = dict(entries[entry])
        confirmed["match"] = {
            "result": CONFIRMED,
            "case_id": case_id,
            "confirmed_by": recorded_by,
            "confirmed_at": recorded_at.isoformat(),
            "was": entries[entry].get("match"),
        }
        entries[entry] = confirmed
        versions[list_version - 1] = {**old, "entries": entries}
        self._touched(recorded_at)

    # ---- agreements ---------------------------------------------------------------

    class AgreementReached(Aggregate.Event):
        agreed_on: date
        transfers: list[dict[str, Any]]
        consideration: list[dict[str, Any]]
        source: dict[str, Any] | None
        recorded_at: datetime
        recorded_by: dict[str, str]

    def agree(
        self,
        agreed_on: date,
        transfers: list[dict[str, Any]],
        consideration: list[dict[str, Any]],
        source: dict[str, Any] | None,
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> int:
        """Record an agreement; return its number in this negotiation (1, 2, ...)."""
        errors = {}
        for i, transfer in enumerate(transfers):
            if transfer["from_party"] not in self.parties:
                errors[f"transfers[{i}].from_party"] = "not a party to this negotiation"
        if errors:
            raise NegotiationError(errors)
        self._agreement_reached(
            agreed_on, transfers, consideration, source, recorded_at, recorded_by
        )
        return len(self.agreements)

    @event(AgreementReached)
    def _agreement_reached(
        self,
        agreed_on: date,
        transfers: list[dict[str, Any]],
        consideration: list[dict[str, Any]],
        source: dict[str, Any] | None,
        recorded_at: datetime,
        recorded_by: dict[str, str],
    ) -> None:
        agreement = {
            "number": len(self.agreements) + 1,
            "agreed_on": agreed_on.isoformat(),
            "transfers": transfers,
            "consideration": consideration,
            "recorded_at": recorded_at.isoformat(),
            "recorded_by": recorded_by,
        }
        if source is not None:
            agreement["source"] = source
        self.agreements = [*self.agreements, agreement]
        self._touched(recorded_at)

    # ---- erasure ------------------------------------------------------------------

    class NamesErased(Aggregate.Event):
        case_id: str
        recorded_at: datetime
        recorded_by: dict[str, str]

    def entries_of(self, case_id: str) -> list[dict[str, Any]]:
        """Every name entry, in every version of every list, tied to the case."""
        return [
            entry
            for versions in self.lists.values()
            for version in versions
            for entry in version["entries"]
            if "name" in entry and listed_case(entry) == case_id
        ]

    def mentions(self) -> set[str]:
        """Every case tied to, or proposed for, an entry of any version of any list."""
        out: set[str] = set()
        for versions in self.lists.values():
            for version in versions:
                for entry in version["entries"]:
                    tied = listed_case(entry)
                    out |= _candidates_in(entry.get("match")) | ({tied} if tied else set())
        return out

    def erase_names(self, case_id: str, recorded_at: datetime, recorded_by: dict[str, str]) -> None:
        """The person of the case was erased: the entries tied to it lose their names
        and dates of birth in every list version (the store destroys the entries' keys),
        and the case is no longer proposed as a candidate for any entry."""
        tied = [e for e in self.entries_of(case_id) if not e.get("erased")]
        proposed = any(
            case_id in _candidates_in(entry.get("match"))
            for versions in self.lists.values()
            for version in versions
            for entry in version["entries"]
        )
        if tied or proposed:
            self._names_erased(case_id, recorded_at, recorded_by)

    @event(NamesErased)
    def _names_erased(
        self, case_id: str, recorded_at: datetime, recorded_by: dict[str, str]
    ) -> None:
        self._redact({case_id})
        self._touched(recorded_at)

    def _redact(self, case_ids: set[str]) -> None:
        for party, versions in self.lists.items():
            self.lists[party] = [
                {**version, "entries": [_redacted(e, case_ids) for e in version["entries"]]}
                for version in versions
            ]

    def forgetting(self, case_ids: set[str]) -> Negotiation:
        """A copy that reads as if these cases' people were erased: what a view of the
        negotiation as known before an erasure must show (that version's events do not
        include ``NamesErased``; the names are unreadable, the pairings are not)."""
        clone = copy.deepcopy(self)
        clone._redact(case_ids & self.mentions())
        return clone

    # ---- reading ------------------------------------------------------------------

    def listed_by(self) -> dict[str, set[str]]:
        """Case id -> the parties whose current list names the case."""
        out: dict[str, set[str]] = {}
        for party in self.parties:
            current = self.current_list(party)
            for entry in current["entries"] if current else ():
                case_id = listed_case(entry)
                if case_id is not None:
                    out.setdefault(case_id, set()).add(party)
        return out

    def agreed(self) -> dict[str, dict[str, Any]]:
        """Case id -> its latest transfer in an agreement (with the agreement's number)."""
        out: dict[str, dict[str, Any]] = {}
        for agreement in self.agreements:
            for transfer in agreement["transfers"]:
                out[transfer["case_id"]] = {**transfer, "agreement": agreement["number"]}
        return out

    def case_ids(self) -> set[str]:
        """Every case this negotiation names, on a list or in an agreement."""
        return set(self.listed_by()) | set(self.agreed())

    def __deepcopy__(self, memo: dict[int, Any]) -> Negotiation:
        """A copy for one command. List versions and agreements are never changed in
        place, so the copy shares them and only the containers are new."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.lists = {party: list(versions) for party, versions in self.lists.items()}
        clone.agreements = list(self.agreements)
        clone._pending_events = list(self._pending_events)
        return clone


def _redacted(entry: dict[str, Any], case_ids: set[str]) -> dict[str, Any]:
    """The entry once these cases' people are erased: redacted if it is tied to one;
    without them among its candidates (the pairing of a name with an erased person is
    itself theirs)."""
    if "name" in entry and listed_case(entry) in case_ids:
        return erased_entry(entry)
    for case_id in case_ids & _candidates_in(entry.get("match")):
        entry = {**entry, "match": _without_candidate(entry["match"], case_id)}
    return entry


def _candidates_in(match: dict[str, Any] | None) -> set[str]:
    """Every case proposed for an entry, now or before it was confirmed (``was``)."""
    if not match:
        return set()
    found = {c["case_id"] for c in match.get("candidates", ())}
    return found | _candidates_in(match.get("was"))


def _without_candidate(match: dict[str, Any] | None, case_id: str) -> dict[str, Any] | None:
    if match is None:
        return None
    out = dict(match)
    if match.get("result") == CANDIDATES:
        kept = [c for c in match["candidates"] if c["case_id"] != case_id]
        out = {**match, "candidates": kept} if kept else {"result": UNMATCHED}
    if "was" in match:
        out["was"] = _without_candidate(match["was"], case_id)
    return out


def erased_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A name entry once its person is erased: no name, no date of birth."""
    kept = {k: v for k, v in entry.items() if k not in PERSONAL_ENTRY_FIELDS}
    return {**kept, "name": None, "erased": True}


# The fields of a name entry sealed with a key of the entry's own (its person may be
# erased, or the entry tied to someone later); nationality stays in clear like a case's.
PERSONAL_ENTRY_FIELDS = ("name", "date_of_birth")


# ---- reconciliation -----------------------------------------------------------------


@dataclass(frozen=True)
class CaseRow:
    """What the reconciliation needs of a case: from the status projection."""

    case_id: str
    status: str
    held_by: str | None
    nationality: str | None
    disputed: bool


@dataclass(frozen=True)
class HandoverRow:
    """A standing handover fact of a case in one of the negotiation's exchanges."""

    case_id: str
    outcome: str  # handed_over, refused, absent
    exchange_id: str
    occurred_on: date
    from_party: str
    to_party: str
    willingness: str | None
    recorded_at: datetime


IN_CUSTODY = ("held", "hospitalised")


def reconcile(
    negotiation: Negotiation,
    handovers: Iterable[HandoverRow],
    cases: Mapping[str, CaseRow],
) -> dict[str, Any]:
    """Who is where in the negotiation.

    - ``on_every_list``: on the current list of every party; ``only_on``: on one party's
      list and no other's; ``unmatched``: name entries the register has not tied to a
      case (with ``candidates`` when it has some to propose; those entries alone are
      also listed under ``candidates``).
    - ``agreed``: named in an agreement's transfers.
    - ``handed_over``, ``refused``, ``absent``: each person's outcome in the
      negotiation's exchanges: handed over if any standing handover says so, otherwise
      the latest refusal or absence. ``handed_over_without_willingness_check`` flags
      handovers made with no willingness check on record.
    - ``outstanding``: everyone the register has in the custody of one party to the
      negotiation who is a national of another (listed or not), and everyone listed or
      agreed who is still in a party's custody; refused and absent included.

    ``cases`` holds the status of every case named by the negotiation, plus every case
    held by one party who is a national of another; a listed case missing from it (one
    the caller may not see) is left out of every answer.
    """
    parties = negotiation.parties
    listed = negotiation.listed_by()
    visible = {cid for cid in listed if cid in cases}

    def entry(case_id: str, **extra: Any) -> dict[str, Any]:
        row = cases[case_id]
        return {
            "case_id": case_id,
            "status": row.status,
            "held_by": row.held_by,
            "nationality": row.nationality,
            "disputed": row.disputed,
            "listed_by": sorted(listed.get(case_id, ())),
            **extra,
        }

    on_every = sorted(cid for cid in visible if listed[cid] >= set(parties))
    only_on = {
        party: [entry(cid) for cid in sorted(visible) if listed[cid] == {party}]
        for party in parties
    }
    unmatched, candidates = [], []
    for party in parties:
        current = negotiation.current_list(party)
        for i, e in enumerate(current["entries"] if current else ()):
            result = (e.get("match") or {}).get("result")
            if result not in (UNMATCHED, CANDIDATES):
                continue
            item = {
                "party": party,
                "list_version": current["list_version"] if current else None,
                "entry": i,
                "name": e["name"],
            }
            if result == UNMATCHED:
                unmatched.append(item)
            else:  # not tied to a case either: unmatched, with the candidates to look at
                shown = [c for c in e["match"]["candidates"] if c["case_id"] in cases]
                unmatched.append({**item, "candidates": shown})
                candidates.append({**item, "candidates": shown})
    agreed = negotiation.agreed()
    outcomes = _outcomes(handovers)
    by_outcome: dict[str, list[dict[str, Any]]] = {"handed_over": [], "refused": [], "absent": []}
    unchecked = []
    for cid in sorted(outcomes):
        if cid not in cases:
            continue
        h = outcomes[cid]
        by_outcome[h.outcome].append(
            entry(
                cid,
                exchange_id=h.exchange_id,
                occurred_on=h.occurred_on.isoformat(),
                from_party=h.from_party,
                to_party=h.to_party,
            )
        )
        if h.outcome == "handed_over" and h.willingness in (None, "not_checked"):
            unchecked.append(cid)
    outstanding = []
    for cid in sorted(cases):
        row = cases[cid]
        if row.status not in IN_CUSTODY or row.held_by not in parties:
            continue
        other_national = row.nationality in parties and row.nationality != row.held_by
        named = cid in listed or cid in agreed
        if other_national or named:
            why = "national_of_another_party" if other_national else "listed"
            last = outcomes.get(cid)
            extra = {"why": why, "last_outcome": last.outcome if last else None}
            outstanding.append(entry(cid, **extra))
    return {
        "on_every_list": [entry(cid) for cid in on_every],
        "only_on": only_on,
        "unmatched": unmatched,
        "candidates": candidates,
        "agreed": [
            entry(cid, agreement=t["agreement"], from_party=t["from_party"], to_party=t["to_party"])
            for cid, t in sorted(agreed.items())
            if cid in cases
        ],
        **by_outcome,
        "handed_over_without_willingness_check": unchecked,
        "outstanding": outstanding,
        "counts": {
            "listed": len(visible),
            "unmatched": len(unmatched),
            "candidates": len(candidates),
            "agreed": sum(1 for cid in agreed if cid in cases),
            **{k: len(v) for k, v in by_outcome.items()},
            "outstanding": len(outstanding),
        },
    }


def _outcomes(handovers: Iterable[HandoverRow]) -> dict[str, HandoverRow]:
    """Each case's outcome in the negotiation: a standing handover, else the latest."""
    out: dict[str, HandoverRow] = {}
    for h in sorted(handovers, key=lambda h: (h.occurred_on, h.recorded_at)):
        if out.get(h.case_id) is not None and out[h.case_id].outcome == "handed_over":
            continue
        out[h.case_id] = h
    return out
