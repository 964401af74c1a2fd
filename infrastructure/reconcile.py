"""What a store does with the erasure ledger when it opens a register for the service
(``infrastructure.ledger`` says why): refuse while a restore is unfinished or the
ledger is not the register's, take in the register's own erasures, and make again
every erasure the register does not hold."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from infrastructure import tables
from infrastructure.ledger import REAPPLIED_BY, REAPPLIER_ID, Entry, ErasureLedger, LedgerRefused

if TYPE_CHECKING:
    from infrastructure.store import Store

log = logging.getLogger("casebook.erasures")


def open_for_service(store: Store, ledger: ErasureLedger) -> list[uuid.UUID]:
    """Everything a store does with the ledger before it serves; the cases erased
    again."""
    if ledger.restore_unfinished():
        raise LedgerRefused(
            "a restore of this register was not finished: run `casebook restore FILE "
            "--force` again (with the service stopped)"
        )
    with store.engine.begin() as conn:
        paired = pairing_of(conn)
        if paired is None:  # the first open since the ledger exists
            conn.execute(insert(tables.ledger_pairing).values(id=1, ledger_id=ledger.id))
        elif paired != ledger.id:
            raise LedgerRefused(
                "the erasure ledger is not this register's (lost and made anew, or "
                "CASEBOOK_ERASURE_LEDGER_URL changed): point the setting at its ledger; if "
                "it is lost for good and this register is the live one, not a restored "
                "copy, run `casebook erasure-ledger adopt`"
            )
    take_in(store, ledger)
    return reapply_all(store, ledger)


def pairing_of(conn: Connection) -> str | None:
    """The id of the ledger the register is paired with (None: not yet)."""
    return conn.execute(select(tables.ledger_pairing.c.ledger_id)).scalar()


def adopt(store: Store, ledger: ErasureLedger, restoring: bool = False) -> int:
    """Pair the register with this ledger (its own was lost) and take in its erasures:
    how many. For a live register only (or a restore told ``--new-ledger``): a restored
    copy lacks later erasures."""
    if ledger.restore_unfinished() and not restoring:
        raise LedgerRefused("a restore is not finished: finish it before adopting a ledger")
    with store.engine.begin() as conn:
        conn.execute(delete(tables.ledger_pairing))
        conn.execute(insert(tables.ledger_pairing).values(id=1, ledger_id=ledger.id))
    return take_in(store, ledger)


def take_in(store: Store, ledger: ErasureLedger) -> int:
    """Every key the register destroyed, into the ledger if it is not there."""
    with store.engine.connect() as conn:
        erased = list(conn.execute(select(tables.erasures.c.key_id)).scalars())
    return ledger.take_in(erased, datetime.now(UTC)) if erased else 0


def reapply_all(store: Store, ledger: ErasureLedger) -> list[uuid.UUID]:
    """Make again every erasure in the ledger (intents included: see the ledger) whose
    keys the register still holds."""
    every = ledger.entries()
    held = _still_held(store, [k for e in every for k in e.key_ids]) if every else set()
    again = [e.case_id for e in every if held & set(e.key_ids) and reapply(store, e, held)]
    if again:
        log.warning("erasure ledger: %d erasures made again (a restored register)", len(again))
    return again


def reapply(store: Store, entry: Entry, held: set[uuid.UUID]) -> bool:
    """Erase the entry's case again if the register holds it unerased; destroy any of
    the entry's other keys it still holds. Whether the case was erased again."""
    from domain.cases import EraseCase
    from domain.rules import InvalidTransition

    erased_again = False
    org = _owner(store, entry.case_id) if entry.case_id in held else None
    if org is not None:
        reason = (
            f"erasure of {entry.intended_at.date().isoformat()} made again from the "
            "erasure ledger: the register was restored from a copy made before it"
        )
        try:
            store.register.erase_case(EraseCase(entry.case_id, reason), _Reapplier(org), None)
            erased_again = True
        except InvalidTransition:
            pass  # erased meanwhile by another process
    rest = _still_held(store, list(entry.key_ids))
    if rest:  # the entry covers them already: no new one
        with store.write() as unit:
            unit.destroy_keys(sorted(rest), ledgered=False)
    return erased_again


def _still_held(store: Store, key_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    k = tables.person_keys
    held: set[uuid.UUID] = set()
    with store.engine.connect() as conn:
        for start in range(0, len(key_ids), 500):
            chunk = list(key_ids[start : start + 500])
            query = select(k.c.key_id).where(k.c.key_id.in_(chunk), k.c.wrapped.is_not(None))
            held.update(conn.execute(query).scalars())
    return held


def _owner(store: Store, case_id: uuid.UUID) -> str | None:
    v = tables.case_views
    with store.engine.connect() as conn:
        return conn.execute(select(v.c.org).where(v.c.case_id == case_id)).scalar()


@dataclass(frozen=True)
class _Reapplier:
    """The caller of an erasure made again: the register itself, in the name of the
    case's owner organisation (``Caller``)."""

    org: str
    id: uuid.UUID = REAPPLIER_ID
    name: str = REAPPLIED_BY
    role: str = "admin"
