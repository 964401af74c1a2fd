"""What every use case of the register shares: loading aggregates and saving them.

``RegisterBase`` is an eventsourcing ``Application``. Where its events are stored is
configuration (``PERSISTENCE_MODULE`` and friends, see ``infrastructure.persistence``):
the same class runs in memory for unit tests, on a SQLite file and on PostgreSQL. Its
use cases are in ``domain.cases``, ``domain.negotiations`` and ``domain.exchanges``;
``domain.register.Register`` is all of them.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding

from domain.case import Case
from domain.errors import CaseNotFound, ExchangeNotFound, NegotiationNotFound, VersionConflict
from domain.exchange import Exchange
from domain.identity import Identity
from domain.negotiation import Negotiation
from domain.ports import Unwired, Writes


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


def project_case(case: Any, events: Any) -> Any:
    """Apply events in order. Unlike the library's default projector this does not
    check each event against a runtime Protocol, which costs more on Python 3.11 than
    decoding the event."""
    for domain_event in events:
        case = domain_event.mutate(case)
    return case


class RegisterBase(Application[UUID]):
    """Loading and saving the register's aggregates; the writes its use cases open.

    ``writes`` is where a use case's write happens (``domain.ports.Writes``): the
    store's write transaction once ``infrastructure.store`` sets it, ``MemoryWrites``
    in unit tests; none by default (``Unwired`` refuses)."""

    writes: Writes = Unwired()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(IdentityAsDict())

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

    @staticmethod
    def _at_version(aggregate: Any, expected_version: int | None) -> Any:
        """The aggregate, if the client's expected version (when given) is its version."""
        if expected_version is not None and expected_version != aggregate.version:
            raise VersionConflict(aggregate.version, expected_version)
        return aggregate

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
