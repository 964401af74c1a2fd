"""What the register's use cases need from outside, as small interfaces.

A use case (``domain.cases``, ``domain.negotiations``, ``domain.exchanges``) opens one
write with ``Writes.write(caller, retry_key)``, loads an aggregate, calls one of its
methods and saves it, all inside that write. The write is where the rest of the world
reaches it, through ``Transaction``:

- the clock and who is acting (``stamp``: the time is taken under the write lock, so
  that the log's times only ever grow);
- idempotency (``first``: the answer a request with the same key was given before, in
  which case the use case does nothing and returns it; ``done`` keeps the answer);
- access (which cases the caller may see, which organisations exist);
- the key store (``destroy_keys``: erasure).

``infrastructure.store`` implements them on the database, in the same transaction as
the events, their chain links and every projection. ``MemoryWrites`` below is the
whole of it for a register kept in memory (unit tests): everyone sees everything and
nothing is remembered, so it is never the default: a register wired to neither
refuses every write (``Unwired``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from domain.case import Stamp


class Caller(Protocol):
    """Who is acting: an API key (``infrastructure.keys.ApiKey``), its name and
    organisation (stamped on every event) and its role (auditors see every case)."""

    @property
    def id(self) -> UUID: ...

    @property
    def name(self) -> str: ...

    @property
    def org(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True)
class Written:
    """What a write did: its status, the id and version of the record it wrote (a case,
    a negotiation or an exchange).

    ``replayed``: the request was a retry (same idempotency key, same request) and
    nothing was written now; ``version`` is the one the first request wrote, and the
    answer is rendered again from it. Otherwise ``aggregate`` is what was written, as
    saved, and ``view`` its view as the projections rendered it (a case's; None for
    other records)."""

    status_code: int
    id: UUID
    version: int
    replayed: bool = False
    aggregate: Any = None
    view: dict[str, Any] | None = None
    # The other aggregates saved in the same write (an exchange's cases).
    others: tuple[Any, ...] = ()


class Transaction(Protocol):
    """One write, as a use case sees it: everything in it commits together or not at
    all, when the ``with`` block that opened it ends without an error."""

    first: Written | None

    @property
    def stamp(self) -> Stamp:
        """Who acts, and when: the time is taken under the register's write lock."""
        ...

    def can_see(self, case_id: UUID) -> bool:
        """Whether the caller may see the case (one it may not is answered as unknown)."""
        ...

    def hidden_among(self, case_ids: Iterable[UUID]) -> set[UUID]:
        """The ones of these cases the caller may not see, unknown ones included."""
        ...

    def owns(self, org: str) -> bool:
        """Whether the caller may see a negotiation or exchange of ``org``."""
        ...

    def org_exists(self, org: str) -> bool:
        """Whether an organisation of that name has keys here (a case is shared only
        with one that can read it)."""
        ...

    def negotiations_naming(self, case_id: UUID) -> list[UUID]:
        """Every negotiation whose lists ever mentioned the case."""
        ...

    def destroy_keys(self, key_ids: Iterable[UUID]) -> None:
        """Destroy these people's (or list entries') keys: what they sealed is gone."""
        ...

    def done(self, status_code: int, aggregate: Any, *others: Any) -> Written:
        """The write's answer, kept for a retry of the same request."""
        ...


class Writes(Protocol):
    def write(
        self, caller: Caller | None = None, retry_key: Any = None
    ) -> AbstractContextManager[Transaction]:
        """Open one write for ``caller``; ``retry_key``: the request's idempotency key
        and digest (``infrastructure.idempotency.Idempotency``), or None."""
        ...


@dataclass
class MemoryTransaction:
    """A write to a register kept in memory: no access rules, no retries, no keys."""

    stamp: Stamp
    first: Written | None = None

    def can_see(self, case_id: UUID) -> bool:
        return True

    def hidden_among(self, case_ids: Iterable[UUID]) -> set[UUID]:
        return set()

    def owns(self, org: str) -> bool:
        return True

    def org_exists(self, org: str) -> bool:
        return True

    def negotiations_naming(self, case_id: UUID) -> list[UUID]:
        return []

    def destroy_keys(self, key_ids: Iterable[UUID]) -> None:
        pass

    def done(self, status_code: int, aggregate: Any, *others: Any) -> Written:
        return Written(status_code, aggregate.id, aggregate.version, False, aggregate, None, others)


class MemoryWrites:
    """``Writes`` for a register kept in memory (unit tests)."""

    @contextmanager
    def write(self, caller: Caller | None = None, retry_key: Any = None) -> Iterator[Transaction]:
        if caller is None:
            raise RuntimeError("a write records facts only for a caller")
        yield MemoryTransaction(Stamp(datetime.now(UTC), caller.name, caller.org))


class Unwired:
    """The default ``Writes``: refuses, so that a register not wired to a store (or,
    in unit tests, to ``MemoryWrites``) never writes without access checks."""

    def write(self, caller: Caller | None = None, retry_key: Any = None) -> Any:
        raise RuntimeError("this register writes only through a store (infrastructure.store)")
