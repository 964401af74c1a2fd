"""The register: every use case of cases, negotiations and exchanges, as one
eventsourcing ``Application``.

Where a newcomer looks:

- a command and its use case: ``domain.cases``, ``domain.negotiations``,
  ``domain.exchanges`` (load, one aggregate method, save, inside one write);
- what the use cases need from outside (the write, access, idempotency, the clock):
  ``domain.ports``, implemented by ``infrastructure.store``;
- loading and saving: ``domain.application``.
"""

from __future__ import annotations

from typing import ClassVar

from domain.cases import CaseUseCases
from domain.exchanges import ExchangeUseCases
from domain.negotiations import NegotiationUseCases


class Register(CaseUseCases, NegotiationUseCases, ExchangeUseCases):
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
