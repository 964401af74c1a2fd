"""The auditors' reads: the hash chain verified, the signed checkpoints, and who read
a case's personal data."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from infrastructure import chain, checkpoints, readlog, retention
from infrastructure.checkpoints import Checkpoint
from infrastructure.querying import decode_cursor, next_cursor
from infrastructure.store import Store


class AuditReads:
    def __init__(self, store: Store):
        self.store = store

    def verify(self, kept: Sequence[Checkpoint] = ()) -> chain.Verification:
        """Check the whole hash chain against the log and the recorded head, then against
        every stored checkpoint and those an auditor kept (``kept``)."""
        with self.store.snapshot() as conn:
            result = chain.verify(conn, self.store.events_table)
            if not result.ok:
                return result
            # Trust only a key that does not come from the database: the installation's
            # own, or the one on the checkpoints an auditor kept. Without either, stored
            # checkpoints prove nothing (anyone who can write them can sign them).
            key = self.store.trusted_key() or (kept[0].public_key if kept else None)
            if key is None:
                note = "no trusted key here: stored checkpoints were not checked"
                return replace(result, note=note)
            stored = [cp for _, cp in reversed(checkpoints.listed(conn))]
            for checkpoint in [*kept, *stored]:
                problem = checkpoints.problem_with(conn, checkpoint, key)
                if problem is not None:
                    return replace(result, ok=False, broken_at=checkpoint.position, problem=problem)
            return replace(result, checkpoints=len(kept) + len(stored))

    def checkpoints_page(
        self, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        before = decode_cursor(cursor, "c") or None
        with self.store.read() as conn:
            rows = checkpoints.listed(conn, limit + 1, before)
        return [cp.as_dict() for _, cp in rows[:limit]], next_cursor("c", rows, limit)

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
