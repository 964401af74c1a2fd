"""The write in progress: what ``Store.write()`` hands the use cases (their
``domain.ports.Transaction``) and the register's saves join (``current_unit``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Recording
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.case import Stamp
from domain.ports import Caller, Written
from infrastructure import access, chain, idempotency, leftovers, tables, views
from infrastructure.chain import ChainHead
from infrastructure.crypto import Keyring
from infrastructure.idempotency import Idempotency
from infrastructure.ledger import ErasureLedger


@dataclass
class WriteUnit:
    """One write transaction: its session, its time stamp, the log position the views
    will have reached when it commits, and the head of the hash chain.

    It is the use cases' ``domain.ports.Transaction``: who is acting (``key``), the
    first answer to a retried request (``first``), the access checks, erasure's keys,
    and the idempotency record kept with the answer (``done``), all on this
    transaction's session."""

    session: Session
    recorded_at: datetime
    position: int
    chain: ChainHead
    keyring: Keyring
    key: Caller | None = None
    retry_key: Idempotency | None = None
    first: Written | None = None
    # The views of the cases saved in this write, as projected (a write's answer).
    views: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    erased: bool = False  # keys were destroyed: scrub the files once committed
    ledger: ErasureLedger | None = None
    ledger_entry: int | None = None  # marked done once the write has committed
    committing: bool = False  # every statement ran: a failure now may follow the commit
    # Every key this write made (``Keyring.made``): a new case's key is made once, and
    # all are forgotten if the write rolls back.
    keys_made: set[UUID] = field(default_factory=set)

    @property
    def stamp(self) -> Stamp:
        if self.key is None:
            raise RuntimeError("a write records facts only for a caller")
        return Stamp(self.recorded_at, self.key.name, self.key.org)

    def can_see(self, case_id: UUID) -> bool:
        return access.can_see(self.session, self.key, case_id)

    def hidden_among(self, case_ids: Iterable[UUID]) -> set[UUID]:
        return access.hidden_among(self.session, self.key, case_ids)

    def owns(self, org: str) -> bool:
        return access.owns(self.key, org)

    def org_exists(self, org: str) -> bool:
        k = tables.api_keys
        return self.session.execute(select(k.c.id).where(k.c.org == org)).first() is not None

    def negotiations_naming(self, case_id: UUID) -> list[UUID]:
        m = tables.negotiation_mentions
        query = select(m.c.negotiation_id).where(m.c.case_id == case_id)
        return sorted(self.session.execute(query).scalars())

    def destroy_keys(self, key_ids: Iterable[UUID], ledgered: bool = True) -> None:
        """Destroy these keys in this write, its intent in the erasure ledger first
        (durable before the write commits; ``ledgered=False``: an entry covers them)."""
        conn = self.session.connection()
        erased = list(key_ids)
        if ledgered and self.ledger is not None and erased:
            self.ledger_entry = self.ledger.intend(erased, self.recorded_at)
        for key_id in erased:
            self.keyring.destroy(conn, key_id, self.recorded_at)
        leftovers.forget_names(conn, erased)  # and from any copy a views rebuild left
        self.erased = True

    def done(self, status_code: int, aggregate: Any, *others: Any) -> Written:
        """The answer, with the view of the case written as the caller may see it: as
        projected, with the negotiations of the caller's organisation that name the
        case (read here, in the transaction, not on a connection of its own after)."""
        view = self.views.get(aggregate.id)
        if view is not None and aggregate.version > 1:  # a case just opened is in none
            org = access.org_filter(self.key)
            view["negotiations"] = views.negotiations_naming(self.session, aggregate.id, org)
        written = Written(
            status_code, aggregate.id, aggregate.version, False, aggregate, view, others
        )
        if self.key is not None:
            idempotency.remember(
                self.session, self.keyring, self.key.id, self.retry_key, written, self.recorded_at
            )
        return written

    def logged(self, recordings: Sequence[Recording[Any]]) -> None:
        """Chain the events just stored and note that the views now include them."""
        notifications = [r.notification for r in recordings]
        self.chain = chain.append(self.session, self.chain, notifications)
        self.position = max(self.position, *(n.id for n in notifications))


# The write transaction in progress in this context, which the register's saves join.
current_unit: ContextVar[WriteUnit | None] = ContextVar("current_unit", default=None)
