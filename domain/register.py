"""The register's use cases: each command loads a case, calls one method, saves.

``Register`` is an eventsourcing ``Application``. Where its events are stored is
configuration (``PERSISTENCE_MODULE`` and friends, see ``infrastructure.persistence``):
the same class runs in memory for unit tests, on a SQLite file and on PostgreSQL.
The store wraps each command in its write transaction, together with the view rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding

from domain.case import Case, NewFact, Stamp
from domain.identity import Identity


class CaseNotFound(Exception):
    def __init__(self, case_id: UUID):
        super().__init__("no such case")
        self.case_id = case_id


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
        case = self.get_case(case_id)
        if expected_version is not None and expected_version != case.version:
            raise VersionConflict(case.version, expected_version)
        case.record(fact, stamp)
        return case, self._save(case, expected_version)

    def get_case(self, case_id: UUID, version: int | None = None) -> Case:
        try:
            case: Case = self.repository.get(case_id, version=version, projector_func=project_case)
        except AggregateNotFoundError:
            raise CaseNotFound(case_id) from None
        return case

    def _save(self, case: Case, expected: int | None = None) -> list[Recording[UUID]]:
        try:
            return self.save(case)
        except IntegrityError:
            # Another writer recorded this version first: the primary key on
            # (case, version) refused ours, and nothing of it was written.
            current = self.get_case(case.id).version
            raise VersionConflict(current, expected) from None
