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
from collections.abc import Mapping
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
