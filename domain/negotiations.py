"""Negotiations: the commands (open one, submit a party's list, confirm a match, record
an agreement) and the use case that carries out each, in the shape of ``domain.cases``:
one write, load, one method of ``Negotiation``, save.

A negotiation is seen only by its own organisation and auditors; to anyone else it is
unknown (404), as are the cases a caller may not see when a command names them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from domain.application import RegisterBase
from domain.case import Case, NewFact
from domain.errors import CaseNotFound, NegotiationNotFound
from domain.facts import FactError, Source
from domain.identity import Identity
from domain.negotiation import Negotiation
from domain.ports import Caller, Transaction, Written


@dataclass(frozen=True)
class OpenNegotiation:
    title: str
    parties: list[str]
    mediators: list[str]
    principle: str
    opened_on: date


@dataclass(frozen=True)
class SubmitList:
    """A party's list. Each entry names its case (``case_id``) or a person (``name``,
    and ``date_of_birth`` and ``nationality`` when given); ``match`` is filled in by
    matching against the register (``infrastructure.matching``) before it is recorded."""

    negotiation_id: UUID
    party: str
    submitted_on: date
    entries: list[dict[str, Any]]
    expected_version: int | None = None


@dataclass(frozen=True)
class ConfirmMatch:
    """Entry ``entry`` of version ``list_version`` of ``party``'s list is this case."""

    negotiation_id: UUID
    party: str
    list_version: int
    entry: int
    case_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True)
class Agree:
    negotiation_id: UUID
    agreed_on: date
    transfers: list[dict[str, Any]]
    consideration: list[dict[str, Any]]
    source: dict[str, Any] | None = None
    expected_version: int | None = None


class NegotiationUseCases(RegisterBase):
    def open_negotiation(
        self, command: OpenNegotiation, caller: Caller, retry_key: Any = None
    ) -> Written:
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            negotiation = Negotiation._create(
                Negotiation.Opened,
                id=uuid.uuid4(),
                title=command.title,
                parties=command.parties,
                mediators=command.mediators,
                principle=command.principle,
                opened_on=command.opened_on,
                recorded_at=tx.stamp.recorded_at,
                recorded_by=tx.stamp.recorded_by,
            )
            self._save(negotiation)
            return tx.done(201, negotiation)

    def submit_list(self, command: SubmitList, caller: Caller, retry_key: Any = None) -> Written:
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            negotiation = self._negotiation_for(tx, command.negotiation_id)
            _check_matches_visible(tx, command.entries)
            self._at_version(negotiation, command.expected_version)
            stamp = tx.stamp
            negotiation.submit_list(
                command.party,
                command.submitted_on,
                command.entries,
                stamp.recorded_at,
                stamp.recorded_by,
            )
            self._save(negotiation, command.expected_version)
            return tx.done(201, negotiation)

    def confirm_match(
        self, command: ConfirmMatch, caller: Caller, retry_key: Any = None
    ) -> Written:
        """Tie a list entry to a case, and record the entry's spelling as an alias of the
        person (``identity_updated``, the party's list as its source) unless the case
        already carries that spelling: both in one save."""
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            negotiation = self._negotiation_for(tx, command.negotiation_id)
            if not tx.can_see(command.case_id):
                raise CaseNotFound(command.case_id)
            self._at_version(negotiation, command.expected_version)
            case = self.get_case(command.case_id)
            stamp = tx.stamp
            confirmed = negotiation.confirm_match(
                command.party,
                command.list_version,
                command.entry,
                command.case_id,
                stamp.recorded_at,
                stamp.recorded_by,
            )
            name = confirmed["name"]
            if name in case.state().person.names():
                self._save(negotiation, command.expected_version)
                return tx.done(201, negotiation)
            reference = f"list of negotiation {negotiation.id}"
            source = Source("party", command.party, reference).to_dict()
            alias = Identity.parse({"aliases": [name]})
            case.record(NewFact("identity_updated", None, source, {}, alias), stamp)
            self._save(negotiation, command.expected_version, case)
            return tx.done(201, negotiation, case)

    def agree(self, command: Agree, caller: Caller, retry_key: Any = None) -> Written:
        """Record an agreement; every case it transfers must exist and be one the
        caller may see (``FactError`` naming each one that is not)."""
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            negotiation = self._negotiation_for(tx, command.negotiation_id)
            named = [UUID(t["case_id"]) for t in command.transfers]
            hidden = tx.hidden_among(named)
            unseen = {
                f"transfers[{i}].case_id": "no such case"
                for i, case_id in enumerate(named)
                if case_id in hidden
            }
            if unseen:
                raise FactError(unseen)
            self._at_version(negotiation, command.expected_version)
            found = self._get_many(named)
            missing = {
                f"transfers[{i}].case_id": "no such case"
                for i, case_id in enumerate(named)
                if not isinstance(found[case_id], Case)
            }
            if missing:
                raise FactError(missing)
            stamp = tx.stamp
            negotiation.agree(
                command.agreed_on,
                command.transfers,
                command.consideration,
                command.source,
                stamp.recorded_at,
                stamp.recorded_by,
            )
            self._save(negotiation, command.expected_version)
            return tx.done(201, negotiation)

    def _negotiation_for(self, tx: Transaction, negotiation_id: UUID) -> Negotiation:
        """The negotiation, if the caller's organisation may see it (404 otherwise)."""
        negotiation = self.get_negotiation(negotiation_id)
        if not tx.owns(negotiation.org):
            raise NegotiationNotFound(negotiation_id)
        return negotiation


def _check_matches_visible(tx: Transaction, entries: list[dict[str, Any]]) -> None:
    """Every case the entries' matches name is one the caller may see now. Matching ran
    before the write (it takes seconds for a long list); a share that ended meanwhile
    must not let the list name a case its caller can no longer see."""
    named = {i: _cases_named(entry.get("match") or {}) for i, entry in enumerate(entries)}
    hidden = {str(c) for c in tx.hidden_among(UUID(c) for ids in named.values() for c in ids)}
    errors = {}
    for i, ids in named.items():
        if ids & hidden:
            by_id = "case_id" in entries[i]
            errors[f"entries[{i}].{'case_id' if by_id else 'name'}"] = (
                "no such case" if by_id else "matched a case you can no longer see: submit again"
            )
    if errors:
        raise FactError(errors)


def _cases_named(match: dict[str, Any]) -> set[str]:
    named = {str(c["case_id"]) for c in match.get("candidates") or ()}
    if match.get("case_id"):
        named.add(str(match["case_id"]))
    return named
