"""Cases: the commands a case worker gives, and the use case that carries out each.

Every use case is the same shape: open one write for the caller (``Writes.write``),
answer a retried request with its first answer, load the case (404 for one the caller
may not see), call one method of ``Case``, save. The store projects the saved events
into the views inside the same transaction (``infrastructure.projections``); nothing
here touches a view.

The commands are built once, at the API edge, from validated requests (``api.commands``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.application import RegisterBase
from domain.case import Case, NewFact, Stamp
from domain.errors import BulkRefused, CaseNotFound, NotOwner
from domain.facts import FACT_TYPES, FactError, Source
from domain.identity import Identity
from domain.negotiation import Negotiation
from domain.ports import Caller, Transaction, Written
from domain.rules import InvalidTransition


@dataclass(frozen=True)
class OpenCase:
    category: str
    person: Identity
    source: dict[str, Any]


@dataclass(frozen=True)
class RecordFact:
    case_id: UUID
    fact: NewFact
    expected_version: int | None = None


@dataclass(frozen=True)
class ShareCase:
    """Share the case with ``org`` for ``purpose``."""

    case_id: UUID
    org: str
    purpose: str
    expected_version: int | None = None


@dataclass(frozen=True)
class EndShare:
    case_id: UUID
    org: str
    reason: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class EraseCase:
    """Erase the person's identifying data, on a lawful request (``reason``)."""

    case_id: UUID
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class NewPerson:
    """One person of a bulk opening (``open_cases``): the case to open, and the facts
    to record on it, in order."""

    opening: OpenCase
    facts: tuple[NewFact, ...] = ()


class CaseUseCases(RegisterBase):
    def open_case(self, command: OpenCase, caller: Caller, retry_key: Any = None) -> Written:
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            case = _new_case(command, tx.stamp)
            self._save(case)
            return tx.done(201, case)

    def open_cases(self, people: Sequence[NewPerson], caller: Caller) -> list[UUID]:
        """Open a case for each person, with its facts, in one write: every fact through
        the same rules as a single write (``Case.record``), and the whole batch saved at
        once, so that the store seals, chains and projects it in a few statements per
        table. All of it or nothing: ``BulkRefused`` names every person (by position)
        whose facts the rules refuse. The ids of the cases, in order.

        The facts are those ``POST /cases/{id}/events`` records (``FACT_TYPES``), built
        by ``domain.input`` (which applies the text rule and every field's rules); a
        share, an exchange's handover or an erasure has a write of its own. For
        registers written in bulk (the bench) and imports next. A batch takes no
        idempotency key: an import will carry its own record of what it loaded."""
        with self.writes.write(caller) as tx:
            made: list[Case] = []
            problems: dict[int, str] = {}
            for i, person in enumerate(people):
                recorded_elsewhere = [f.type for f in person.facts if f.type not in FACT_TYPES]
                if recorded_elsewhere:  # shares, exchanges and erasure have their own writes
                    problems[i] = f"not a fact recorded this way: {recorded_elsewhere[0]}"
                    continue
                try:
                    case = _new_case(person.opening, tx.stamp)
                    for fact in person.facts:
                        case.record(fact, tx.stamp)
                except InvalidTransition as e:
                    problems[i] = e.detail
                    continue
                except FactError as e:  # the opening itself (a category, say)
                    problems[i] = "; ".join(f"{k}: {v}" for k, v in e.errors.items())
                    continue
                made.append(case)
            if problems:
                raise BulkRefused(problems)
            if made:
                self.save(*made)
            return [case.id for case in made]

    def record_fact(self, command: RecordFact, caller: Caller, retry_key: Any = None) -> Written:
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            case = self._case_for(tx, command.case_id, command.expected_version)
            case.record(command.fact, tx.stamp)
            self._save(case, command.expected_version)
            return tx.done(201, case)

    def share_case(self, command: ShareCase, caller: Caller, retry_key: Any = None) -> Written:
        """Only the organisation that owns the case may share it (``NotOwner``), and only
        with an organisation that has keys here (one that could read it)."""
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            case = self._owned_case(tx, command.case_id, command.expected_version, command.org)
            source = Source("other", tx.stamp.org, "share").to_dict()
            case.share(command.org, command.purpose, source, tx.stamp)
            self._save(case, command.expected_version)
            return tx.done(201, case)

    def end_share(self, command: EndShare, caller: Caller, retry_key: Any = None) -> Written:
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            case = self._owned_case(tx, command.case_id, command.expected_version, command.org)
            source = Source("other", tx.stamp.org, "share").to_dict()
            case.end_share(command.org, command.reason, source, tx.stamp)
            self._save(case, command.expected_version)
            return tx.done(200, case)

    def erase_case(self, command: EraseCase, caller: Caller, retry_key: Any = None) -> Written:
        """Record the erasure, redact the person's entries on every negotiation's lists,
        and destroy their key and those entries' keys, in one write: what those keys
        sealed (names, dates, notes) is unreadable from then on, everywhere. Only the
        organisation that owns the case may ask for it (``NotOwner``)."""
        with self.writes.write(caller, retry_key) as tx:
            if tx.first is not None:
                return tx.first
            case = self._owned_case(tx, command.case_id, command.expected_version)
            case.erase(command.reason, Source("other").to_dict(), tx.stamp)
            self._save(case, command.expected_version)
            entry_keys = self._erase_listed_names(
                case.id, tx.negotiations_naming(case.id), tx.stamp
            )
            tx.destroy_keys([case.id, *entry_keys])
            return tx.done(200, case)

    def _erase_listed_names(
        self, case_id: UUID, negotiation_ids: Iterable[UUID], stamp: Stamp
    ) -> list[UUID]:
        """Redact the person's entries on these negotiations' lists; the ids of the keys
        those entries were sealed with."""
        changed: list[Negotiation] = []
        key_ids: list[UUID] = []
        for negotiation_id in negotiation_ids:
            negotiation = self.get_negotiation(negotiation_id)
            entries = negotiation.entries_of(str(case_id))
            key_ids += [UUID(e["key"]) for e in entries if "key" in e and not e.get("erased")]
            negotiation.erase_names(str(case_id), stamp.recorded_at, stamp.recorded_by)
            if negotiation.pending_events:
                changed.append(negotiation)
        if changed:
            self._save(changed[0], None, *changed[1:])
        return key_ids

    def _case_for(self, tx: Transaction, case_id: UUID, expected_version: int | None) -> Case:
        """The case at the client's expected version; unknown to a caller who may not
        see it."""
        if not tx.can_see(case_id):
            raise CaseNotFound(case_id)
        case: Case = self._at_version(self.get_case(case_id), expected_version)
        return case

    def _owned_case(
        self, tx: Transaction, case_id: UUID, expected: int | None, share_with: str | None = None
    ) -> Case:
        if not tx.can_see(case_id):
            raise CaseNotFound(case_id)
        if share_with is not None and not tx.org_exists(share_with):
            raise FactError({"org": "no organisation of that name has keys here"})
        case = self.get_case(case_id)
        if case.state().org != tx.stamp.org:
            raise NotOwner(case_id)
        result: Case = self._at_version(case, expected)
        return result


def _new_case(command: OpenCase, stamp: Stamp) -> Case:
    return Case._create(
        Case.Opened,
        id=uuid.uuid4(),
        category=command.category,
        person=command.person,
        source=command.source,
        recorded_at=stamp.recorded_at,
        recorded_by=stamp.recorded_by,
    )
