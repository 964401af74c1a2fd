"""The hash chain over the event log, and its verification.

Every stored event gets a link: a SHA-256 over a version tag, the previous link's hash,
the link's position, the event's case id and version, its topic and its stored bytes
(exactly what is in the log: encrypted bytes where encryption is on, so that erasing a
person's key later leaves the chain verifiable). Each field is length-prefixed, so no
two different inputs hash alike.

Links are made in the write transaction, after the register's write lock is taken at
its start (see ``infrastructure.store``), so concurrent writers and several processes
cannot fork or gap the chain. Positions are dense and our own: the log's ids have gaps
on PostgreSQL and can be reused by SQLite after the tail is deleted.

Verification walks the chain in order and recomputes every link. It finds an event
whose bytes were changed, deleted, swapped or inserted, and a cut tail (the chain ends
before the head the register recorded). A rewrite of the whole chain, head included,
by someone with write access to the database is found only against a checkpoint kept
elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from infrastructure import tables
from infrastructure.inserts import insert_rows

GENESIS = "0" * 64
TAG = b"casebook-chain-v1"


def link_hash(
    previous: str, position: int, case_id: UUID, version: int, topic: str, state: bytes
) -> str:
    h = hashlib.sha256(TAG)
    h.update(bytes.fromhex(previous))
    h.update(position.to_bytes(8, "big"))
    h.update(case_id.bytes)
    h.update(version.to_bytes(8, "big"))
    encoded_topic = topic.encode()
    h.update(len(encoded_topic).to_bytes(4, "big"))
    h.update(encoded_topic)
    h.update(len(state).to_bytes(8, "big"))
    h.update(state)
    return h.hexdigest()


@dataclass(frozen=True)
class ChainHead:
    position: int = 0
    hash: str = GENESIS


def append(session: Session, head: ChainHead, notifications: Iterable[Notification]) -> ChainHead:
    """Link newly stored events to the chain; return the new head."""
    rows = []
    position, previous = head.position, head.hash
    for n in notifications:
        position += 1
        case_id = UUID(str(n.originator_id))
        previous = link_hash(previous, position, case_id, n.originator_version, n.topic, n.state)
        rows.append(
            {
                "position": position,
                "notification_id": n.id,
                "case_id": case_id,
                "version": n.originator_version,
                "hash": previous,
            }
        )
    insert_rows(session, tables.chain, rows)
    return ChainHead(position, previous)


@dataclass(frozen=True)
class Verification:
    """The answer of a verification: ``broken_at`` is the first position that fails."""

    ok: bool
    events: int
    head: str
    broken_at: int | None = None
    problem: str | None = None
    checkpoints: int = 0  # signed checkpoints the chain was found to agree with
    keys: int = 0  # signing keys reached from the trusted one (0: none was checked)
    note: str | None = None  # what a successful check could not establish

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "checkpoints": self.checkpoints,
        }
        if self.keys:
            out["keys"] = self.keys
        if not self.ok:
            out["first_broken_position"] = self.broken_at
            out["problem"] = self.problem
        if self.note:
            out["note"] = self.note
        return out


def verify(conn: Connection, events_table: tables.Table) -> Verification:
    """Check the whole chain against the log and the recorded head."""
    c, e = tables.chain, events_table
    recorded = conn.execute(
        select(tables.register_head.c.chain_position, tables.register_head.c.chain_hash)
    ).one()
    # Rows are unpacked as plain tuples: verification is bound by per-row Python work.
    walk = (
        select(
            c.c.position,
            c.c.hash,
            c.c.case_id,
            c.c.version,
            e.c.originator_id,
            e.c.originator_version,
            e.c.topic,
            e.c.state,
        )
        .select_from(c.outerjoin(e, e.c.id == c.c.notification_id))
        .order_by(c.c.position)
        .execution_options(yield_per=5000)
    )
    previous, position = GENESIS, 0
    for (
        at,
        stored_hash,
        linked_case,
        linked_version,
        case_id,
        version,
        topic,
        state,
    ) in conn.execute(walk).tuples():
        position += 1
        if at != position:
            problem = f"the chain skips from position {position - 1} to {at}"
        elif case_id is None:
            problem = "the event linked here is missing from the log"
        elif version != linked_version or case_id != linked_case:
            problem = "the event linked here is not the one the chain recorded"
        elif link_hash(previous, at, case_id, version, topic, bytes(state)) != stored_hash:
            problem = "the stored event or its link was altered"
        else:
            previous = stored_hash
            continue
        return Verification(False, position - 1, previous, position, problem)
    logged = conn.execute(select(func.count()).select_from(e)).scalar_one()
    if logged > position:
        return Verification(
            False, position, previous, position + 1, "the log holds events that are not chained"
        )
    if (position, previous) != (recorded.chain_position, recorded.chain_hash):
        return Verification(
            False,
            position,
            previous,
            min(position, recorded.chain_position) + 1,
            f"the chain ends at position {position}, the register's head is at "
            f"{recorded.chain_position}: events were removed or the head was altered",
        )
    return Verification(True, position, previous)


def hashes_of_case(conn: Connection, case_id: UUID) -> dict[int, str]:
    """Each version's link hash, for a case's history."""
    c = tables.chain
    rows = conn.execute(select(c.c.version, c.c.hash).where(c.c.case_id == case_id))
    return {r.version: r.hash for r in rows}
