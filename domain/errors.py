"""What a use case refuses, beside each aggregate's own rule errors (``FactError``,
``InvalidTransition``, ``NegotiationError``, ``ExchangeRefused``). ``api.problems`` maps
each to its HTTP answer."""

from __future__ import annotations

from uuid import UUID


class NotFound(Exception):
    """No aggregate of this kind with this id, or one the caller may not see (answered
    404, naming only the kind: a 403 would confirm that it exists)."""

    what = "record"

    def __init__(self, aggregate_id: UUID):
        super().__init__(f"no such {self.what}")
        self.aggregate_id = aggregate_id


class CaseNotFound(NotFound):
    what = "case"

    @property
    def case_id(self) -> UUID:
        return self.aggregate_id


class NegotiationNotFound(NotFound):
    what = "negotiation"


class ExchangeNotFound(NotFound):
    what = "exchange"


class NotOwner(Exception):
    """Only the organisation that owns a case decides who else sees it, or erases it,
    or takes its case file (403)."""

    def __init__(self, case_id: UUID, act: str = "share it"):
        super().__init__(f"only the organisation that owns the case may {act}")
        self.case_id = case_id


class VersionConflict(Exception):
    """The client's expected version is not the record's current version (409)."""

    def __init__(self, current: int, expected: int | None):
        super().__init__(f"the case is at version {current}, not {expected}")
        self.current = current
        self.expected = expected


class BulkRefused(Exception):
    """Some people of a bulk opening cannot be recorded as given, so nothing of the
    batch was. ``problems``: each such person's position in the batch, and why."""

    def __init__(self, problems: dict[int, str]):
        super().__init__(f"{len(problems)} of the people cannot be recorded as given")
        self.problems = problems
