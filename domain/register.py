"""The register's use cases: each command loads a case, calls one method, saves.

``Register`` is an eventsourcing ``Application``. Where its events are stored is
configuration (``PERSISTENCE_MODULE`` and friends, see ``infrastructure.persistence``):
the same class runs in memory for unit tests, on a SQLite file and on PostgreSQL.
The store wraps each command in its write transaction, together with the view rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding

from domain.case import Case, NewFact, Stamp
from domain.exchange import CaseProblem, Exchange, ExchangeRefused, NewExchange, record_on_case
from domain.facts import FactError, Source
from domain.identity import Identity
from domain.negotiation import Negotiation, NegotiationError


class NotFound(Exception):
    """No aggregate of this kind with this id (answered 404, naming only the kind)."""

    what = "record"

    def __init__(self, aggregate_id: UUID):
        super().__init__(f"no such {self.what}")
        self.aggregate_id = aggregate_id


class CaseNotFound(NotFound):
    what = "case"

    @property
    def case_id(self) -> UUID:
        return self.aggregate_id


class NotOwner(Exception):
    """Only the organisation that owns a case decides who else sees it, or erases it,
    or takes its case file (403)."""

    def __init__(self, case_id: UUID, act: str = "share it"):
        super().__init__(f"only the organisation that owns the case may {act}")
        self.case_id = case_id


class NegotiationNotFound(NotFound):
    what = "negotiation"


class ExchangeNotFound(NotFound):
    what = "exchange"


class VersionConflict(Exception):
    """The client's expected version is not the case's current version."""

    def __init__(self, current: int, expected: int | None):
        super().__init__(f"the case is at version {current}, not {expected}")
        self.current = current
        self.expected = expected


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class IdentityAsDict(Transcoding):
    """How identity is stored: the one place where per-person encryption hooks in."""

    type = Identity
    name = "identity"

    def encode(self, obj: Identity) -> dict[str, Any]:
        return obj.to_dict()

    def decode(self, data: dict[str, Any]) -> Identity:
        return Identity.from_dict(data)


def _at_version(case: Case, expected_version: int | None) -> Case:
    """The case, if the client's expected version (when given) is its version."""
    if expected_version is not None and expected_version != case.version:
        raise VersionConflict(case.version, expected_version)
    return case


def project_case(case: Case | None, events: Iterable[Any]) -> Case | None:
    """Apply events in order. Unlike the library's default projector this does not
    check each event against a runtime Protocol, which costs more on Python 3.11 than
    decoding the event."""
    for domain_event in events:
        case = domain_event.mutate(case)
    return case


class Register(Application[UUID]):
    """The case register. Its name fixes the stored tables' names (``casebook_events``).

    Cases are cached per process and fast-forwarded from the store on every load
    (only events after the cached version are read), so a write to a long case does not
    replay it. Each command works on a copy; the cache only ever holds state read from
    the store, never a command's unsaved changes.
    """

    name = "casebook"
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "2000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(IdentityAsDict())

    def open_case(
        self, case_id: UUID, category: str, person: Identity, source: dict[str, Any], stamp: Stamp
    ) -> tuple[Case, list[Recording[UUID]]]:
        case = Case._create(
            Case.Opened,
            id=case_id,
            category=category,
            person=person,
            source=source,
            recorded_at=stamp.recorded_at,
            recorded_by=stamp.recorded_by,
        )
        return case, self._save(case)

    def record_fact(
        self, case_id: UUID, fact: NewFact, stamp: Stamp, expected_version: int | None = None
    ) -> tuple[Case, list[Recording[UUID]]]:
        case = _at_version(self.get_case(case_id), expected_version)
        case.record(fact, stamp)
        return case, self._save(case, expected_version)

    def share_case(
        self,
        case_id: UUID,
        org: str,
        purpose: str,
        stamp: Stamp,
        expected_version: int | None = None,
    ) -> tuple[Case, list[Recording[UUID]]]:
        """Share a case with another organisation; only its owner may (``NotOwner``)."""
        case = _at_version(self._owned(case_id, stamp), expected_version)
        source = Source("other", stamp.org, "share").to_dict()
        case.share(org, purpose, source, stamp)
        return case, self._save(case, expected_version)

    def end_share(
        self,
        case_id: UUID,
        org: str,
        reason: str | None,
        stamp: Stamp,
        expected_version: int | None = None,
    ) -> tuple[Case, list[Recording[UUID]]]:
        case = _at_version(self._owned(case_id, stamp), expected_version)
        source = Source("other", stamp.org, "share").to_dict()
        case.end_share(org, reason, source, stamp)
        return case, self._save(case, expected_version)

    def erase_case(
        self, case_id: UUID, reason: str, stamp: Stamp, expected_version: int | None = None
    ) -> tuple[Case, list[Recording[UUID]]]:
        """Record the erasure of the person's identifying data; only the organisation
        that owns the case may ask for it (``NotOwner``). Destroying the key is the
        store's part, in the same transaction."""
        case = _at_version(self._owned(case_id, stamp), expected_version)
        case.erase(reason, Source("other").to_dict(), stamp)
        return case, self._save(case, expected_version)

    def erase_listed_names(
        self, case_id: UUID, negotiation_ids: Iterable[UUID], stamp: Stamp
    ) -> tuple[list[Negotiation], list[str], list[Recording[UUID]]]:
        """Redact the erased person's entries on every negotiation's lists. Returns the
        negotiations changed and the ids of the keys their entries were sealed with."""
        changed, key_ids = [], []
        for negotiation_id in negotiation_ids:
            negotiation = self.get_negotiation(negotiation_id)
            entries = negotiation.entries_of(str(case_id))
            key_ids += [e["key"] for e in entries if "key" in e and not e.get("erased")]
            negotiation.erase_names(str(case_id), stamp.recorded_at, stamp.recorded_by)
            if negotiation.pending_events:
                changed.append(negotiation)
        return changed, key_ids, self._save(changed[0], None, *changed[1:]) if changed else []

    def _owned(self, case_id: UUID, stamp: Stamp) -> Case:
        case = self.get_case(case_id)
        if case.state().org != stamp.org:
            raise NotOwner(case_id)
        return case

    def get_case(self, case_id: UUID, version: int | None = None) -> Case:
        case = self._get(case_id, version)
        if not isinstance(case, Case):
            raise CaseNotFound(case_id)
        return case

    def get_negotiation(self, negotiation_id: UUID, version: int | None = None) -> Negotiation:
        negotiation = self._get(negotiation_id, version)
        if not isinstance(negotiation, Negotiation):
            raise NegotiationNotFound(negotiation_id)
        return negotiation

    def get_exchange(self, exchange_id: UUID) -> Exchange:
        exchange = self._get(exchange_id, None)
        if not isinstance(exchange, Exchange):
            raise ExchangeNotFound(exchange_id)
        return exchange

    def _get_many(self, aggregate_ids: list[UUID]) -> dict[UUID, Any]:
        """Several aggregates by id (each a copy for one command), or None for each id
        unknown. The store's register reads them in bulk (``ChainedRegister``)."""
        return {aggregate_id: self._get(aggregate_id, None) for aggregate_id in aggregate_ids}

    def _get(self, aggregate_id: UUID, version: int | None) -> Any:
        """Any aggregate by id (the caller checks its kind), or None."""
        try:
            return self.repository.get(aggregate_id, version=version, projector_func=project_case)
        except AggregateNotFoundError:
            return None

    # ---- negotiations and exchanges -------------------------------------------------

    def open_negotiation(
        self,
        negotiation_id: UUID,
        title: str,
        parties: list[str],
        mediators: list[str],
        principle: str,
        opened_on: date,
        stamp: Stamp,
    ) -> tuple[Negotiation, list[Recording[UUID]]]:
        negotiation = Negotiation._create(
            Negotiation.Opened,
            id=negotiation_id,
            title=title,
            parties=parties,
            mediators=mediators,
            principle=principle,
            opened_on=opened_on,
            recorded_at=stamp.recorded_at,
            recorded_by=stamp.recorded_by,
        )
        return negotiation, self.save(negotiation)

    def submit_list(
        self,
        negotiation_id: UUID,
        party: str,
        submitted_on: date,
        entries: list[dict[str, Any]],
        stamp: Stamp,
        expected_version: int | None = None,
    ) -> tuple[Negotiation, int, list[Recording[UUID]]]:
        negotiation = self._negotiation_at(negotiation_id, expected_version)
        number = negotiation.submit_list(
            party, submitted_on, entries, stamp.recorded_at, stamp.recorded_by
        )
        return negotiation, number, self._save(negotiation, expected_version)

    def confirm_match(
        self,
        negotiation_id: UUID,
        party: str,
        list_version: int,
        entry: int,
        case_id: UUID,
        stamp: Stamp,
        expected_version: int | None = None,
    ) -> tuple[Negotiation, Case | None, list[Recording[UUID]]]:
        """Tie a list entry to a case, and record the entry's spelling as an alias of the
        person (``identity_updated``, the party's list as its source) unless the case
        already carries that spelling: both in one save."""
        negotiation = self._negotiation_at(negotiation_id, expected_version)
        case = self.get_case(case_id)
        confirmed = negotiation.confirm_match(
            party, list_version, entry, case_id, stamp.recorded_at, stamp.recorded_by
        )
        name = confirmed["name"]
        if name in case.state().person.names():
            return negotiation, None, self._save(negotiation, expected_version)
        source = Source("party", party, f"list of negotiation {negotiation_id}").to_dict()
        alias = Identity.parse({"aliases": [name]})
        case.record(NewFact("identity_updated", None, source, {}, alias), stamp)
        return negotiation, case, self._save(negotiation, expected_version, case)

    def agree(
        self,
        negotiation_id: UUID,
        agreed_on: date,
        transfers: list[dict[str, Any]],
        consideration: list[dict[str, Any]],
        source: dict[str, Any] | None,
        stamp: Stamp,
        expected_version: int | None = None,
    ) -> tuple[Negotiation, int, list[Recording[UUID]]]:
        negotiation = self._negotiation_at(negotiation_id, expected_version)
        missing = {
            f"transfers[{i}].case_id": "no such case"
            for i, t in enumerate(transfers)
            if not isinstance(self._get(UUID(t["case_id"]), None), Case)
        }
        if missing:
            raise FactError(missing)
        number = negotiation.agree(
            agreed_on, transfers, consideration, source, stamp.recorded_at, stamp.recorded_by
        )
        return negotiation, number, self._save(negotiation, expected_version)

    def record_exchange(
        self,
        exchange_id: UUID,
        new: NewExchange,
        stamp: Stamp,
        hidden: AbstractSet[UUID] = frozenset(),
    ) -> tuple[Exchange, list[Case], list[Recording[UUID]]]:
        """Record the exchange and the matching fact on every case in it, in one save:
        all of it, or ``ExchangeRefused`` naming every case that cannot take part
        (``hidden``: cases the caller may not see, answered as unknown)."""
        if new.negotiation_id is not None:
            negotiation = self.get_negotiation(new.negotiation_id)
            if new.agreement is not None and not 1 <= new.agreement <= len(negotiation.agreements):
                raise NegotiationError({"agreement": "no agreement with this number"})
            outsiders = {
                f"handovers[{i}]": "neither party is a party to the negotiation"
                for i, h in enumerate(new.handovers)
                if not {h.from_party, h.to_party} & set(negotiation.parties)
            }
            if outsiders:
                raise NegotiationError(outsiders)
        elif new.agreement is not None:
            raise NegotiationError({"agreement": "an agreement belongs to a negotiation_id"})
        problems: list[CaseProblem] = []
        cases: list[Case] = []
        loaded = self._get_many([h.case_id for h in new.handovers])
        for handover in new.handovers:
            found = loaded[handover.case_id]
            if not isinstance(found, Case) or handover.case_id in hidden:
                problems.append(CaseProblem(handover.case_id, "not-found", "no such case"))
                continue
            problem = record_on_case(found, handover, exchange_id, new, stamp)
            if problem is not None:
                problems.append(problem)
            cases.append(found)
        if problems:
            raise ExchangeRefused(problems)
        exchange = Exchange._create(
            Exchange.Recorded,
            id=exchange_id,
            negotiation_id=str(new.negotiation_id) if new.negotiation_id else None,
            agreement=new.agreement,
            occurred_on=new.occurred_on,
            place=new.place,
            mediators=list(new.mediators),
            handovers=[h.to_dict() for h in new.handovers],
            consideration=list(new.consideration),
            announced=list(new.announced),
            source=new.source,
            recorded_at=stamp.recorded_at,
            recorded_by=stamp.recorded_by,
        )
        try:
            recordings = self.save(exchange, *cases)
        except IntegrityError:
            # Another writer recorded a version of one of the cases first; the store's
            # write lock makes this rare (it needs a writer that bypasses the lock).
            raise ExchangeRefused(
                [CaseProblem(c.id, "version-conflict", "the case changed meanwhile") for c in cases]
            ) from None
        return exchange, cases, recordings

    def _negotiation_at(self, negotiation_id: UUID, expected: int | None) -> Negotiation:
        negotiation = self.get_negotiation(negotiation_id)
        if expected is not None and expected != negotiation.version:
            raise VersionConflict(negotiation.version, expected)
        return negotiation

    def _save(
        self, aggregate: Any, expected: int | None = None, *others: Any
    ) -> list[Recording[UUID]]:
        try:
            return self.save(aggregate, *others)
        except IntegrityError:
            # Another writer recorded this version first: the primary key on
            # (aggregate, version) refused ours, and nothing of it was written.
            current = self._get(aggregate.id, None).version
            raise VersionConflict(current, expected) from None
