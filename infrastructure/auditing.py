"""The auditors' reads: the hash chain verified, the signed checkpoints, and who read
a case's personal data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from infrastructure import chain, checkpoints, readlog, retention, rotation, signing
from infrastructure.checkpoints import Checkpoint
from infrastructure.querying import decode_cursor, next_cursor
from infrastructure.store import Store


class AuditReads:
    def __init__(self, store: Store):
        self.store = store

    def verify(
        self, kept: Sequence[Checkpoint] = (), trusted: str | None = None
    ) -> chain.Verification:
        """Check the whole hash chain against the log and the recorded head, then the
        signing keys' announcements from a trusted key, and every stored checkpoint and
        those an auditor kept (``kept``) against the keys so reached."""
        with self.store.snapshot() as conn:
            result = chain.verify(conn, self.store.events_table)
            if not result.ok:
                return result
            # Trust only a key that does not come from the database: one the auditor
            # gives, the installation's own, or the one on the checkpoints an auditor
            # kept. Without any, stored checkpoints prove nothing (anyone who can write
            # them can sign them, and announce their own keys).
            key = trusted or self.store.trusted_key() or (kept[0].public_key if kept else None)
            if key is None:
                note = "no trusted key here: stored checkpoints were not checked"
                return replace(result, note=note)
            stored = [cp for _, cp in reversed(checkpoints.listed(conn))]
            spans, broken = signing.check(
                rotation.stored(conn),
                key,
                [*kept, *stored],
                lambda position: checkpoints.hash_at(conn, position),
            )
            if broken is not None:
                failed = next((c for c in [*kept, *stored] if c.position == broken.position), None)
                problem = broken.problem
                if failed is not None:
                    problem += _restored_before(conn, failed, {s.public_key for s in spans})
                return replace(result, ok=False, broken_at=broken.position, problem=problem)
            return replace(result, checkpoints=len(kept) + len(stored), keys=len(spans))

    def keys(self) -> list[dict[str, Any]]:
        """The signing keys as the register lists them (unchecked: see ``verify``)."""
        first = self.store.trusted_key()
        with self.store.read() as conn:
            return rotation.listing(conn, first)

    def checkpoints_page(
        self, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        before = decode_cursor(cursor, "c") or None
        with self.store.read() as conn:
            rows = checkpoints.listed(conn, limit + 1, before)
        return [cp.shown() for _, cp in rows[:limit]], next_cursor("c", rows, limit)

    def reads_of(
        self, case_id: uuid.UUID, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None, datetime | None]:
        """Who read the case's personal data, when, through which route: oldest first;
        and before when reads may have been pruned (``retention.pruned_before``)."""
        after = decode_cursor(cursor, "r")
        with self.store.read() as conn:
            rows = readlog.listed(conn, case_id, limit + 1, after)
            pruned = retention.pruned_before(conn)
        return [item for _, item in rows[:limit]], next_cursor("r", rows, limit), pruned


def _restored_before(conn: Connection, checkpoint: Checkpoint, keys: set[str]) -> str:
    """Why a checkpoint may no longer match: a restore, recorded in a statement signed
    with one of the trusted ``keys`` (those the verification reached;
    ``infrastructure.restore``), made after the checkpoint from a copy that ends
    before it. Nothing for a checkpoint made after the restore."""
    from infrastructure.restore import statements

    made = _instant(checkpoint.made_at)
    for restored in reversed(statements(conn)):
        trusted = restored.public_key in keys and restored.signature_holds()
        later = made is not None and made < (_instant(restored.restored_at) or made)
        if trusted and later and restored.position < checkpoint.position:
            return (
                f"; the register was restored at {restored.restored_at} from a copy whose "
                f"chain ended at position {restored.position} (a signed restore statement): "
                "what was recorded after that position before the restore is not in it"
            )
    return ""


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
