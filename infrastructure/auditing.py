"""The auditors' reads: the hash chain verified, the signed checkpoints, and who read
a case's personal data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from infrastructure import chain, checkpoints, readlog, rotation, signing
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
                return replace(result, ok=False, broken_at=broken.position, problem=broken.problem)
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
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Who read the case's personal data, when, through which route: oldest first."""
        after = decode_cursor(cursor, "r")
        with self.store.read() as conn:
            rows = readlog.listed(conn, case_id, limit + 1, after)
        return [item for _, item in rows[:limit]], next_cursor("r", rows, limit)
