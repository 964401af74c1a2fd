"""Exports an auditor can take home and verify with nothing but casebook installed.

An export is JSON Lines: a header; one line per event in chain order, with its stored
bytes (base64), its link hash and the hash of the link before it; the statements that
announced each signing key after the first (``infrastructure.signing``); then the
chain's head and the latest signed checkpoint. A whole-register export is verified
from the first link to the head, and its checkpoint against the key in force at its
position, reached through the statements from the key of a checkpoint the auditor
kept (or a key they trust); a one-case export holds
only that case's links, each verified against the link before it (which the export
carries), so it proves the events are the ones chained at those positions, and its
head and checkpoint let it be compared with the register's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import select
from sqlalchemy.engine import Connection

from domain.case import Case
from domain.register import Register
from infrastructure import checkpoints, rotation, signing, tables
from infrastructure.chain import GENESIS, Verification, link_hash
from infrastructure.checkpoints import Checkpoint
from infrastructure.crypto import NoKeys
from infrastructure.sealing import SealingMapper
from infrastructure.signing import Stored

FORMAT = "casebook-export"
FORMAT_VERSION = 1


def export_lines(conn: Connection, events_table: Any, case_id: UUID | None = None) -> Iterator[str]:
    """The export, line by line, streamed from one consistent snapshot (``conn``)."""
    scope = {"scope": "case", "case_id": str(case_id)} if case_id else {"scope": "register"}
    yield _line(
        {
            "kind": "header",
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "exported_at": datetime.now(UTC).isoformat(),
            **scope,
        }
    )
    for event in _chained_events(conn, events_table, case_id):
        yield _line(event)
    for announcement in rotation.stored(conn):
        yield _line({"kind": "signing_key", **announcement._asdict()})
    head = conn.execute(
        select(tables.register_head.c.chain_position, tables.register_head.c.chain_hash)
    ).one()
    yield _line({"kind": "head", "position": head.chain_position, "hash": head.chain_hash})
    latest = checkpoints.listed(conn, 1)
    if latest:
        yield _line({"kind": "checkpoint", **latest[0][1].as_dict()})


def _chained_events(
    conn: Connection, events_table: Any, case_id: UUID | None
) -> Iterator[dict[str, Any]]:
    c, e = tables.chain, events_table
    previous = c.alias("previous")
    query = (
        select(
            c.c.position,
            c.c.hash,
            previous.c.hash.label("previous_hash"),
            e.c.originator_id,
            e.c.originator_version,
            e.c.topic,
            e.c.state,
        )
        .join(e, e.c.id == c.c.notification_id)
        .outerjoin(previous, previous.c.position == c.c.position - 1)
        .order_by(c.c.position)
        .execution_options(yield_per=2000)
    )
    if case_id is not None:
        query = query.where(c.c.case_id == case_id)
    for row in conn.execute(query):
        yield {
            "kind": "event",
            "position": row.position,
            "case_id": str(row.originator_id),
            "version": row.originator_version,
            "topic": row.topic,
            "state": base64.b64encode(bytes(row.state)).decode(),
            "previous": row.previous_hash or GENESIS,
            "hash": row.hash,
        }


def _line(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"


@dataclass
class Export:
    """An export read back: its header, events, head and checkpoint."""

    header: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    head: dict[str, Any] | None = None
    checkpoint: Checkpoint | None = None
    announcements: list[Stored] = field(default_factory=list)

    @classmethod
    def read(cls, lines: Iterable[str]) -> Export:
        parsed = [json.loads(line) for line in lines if line.strip()]
        if not parsed or parsed[0].get("format") != FORMAT:
            raise ValueError("not a casebook export")
        export = cls(parsed[0])
        for item in parsed[1:]:
            if item.get("kind") == "event":
                export.events.append(item)
            elif item.get("kind") == "head":
                export.head = item
            elif item.get("kind") == "checkpoint":
                export.checkpoint = Checkpoint.from_dict(item)
            elif item.get("kind") == "signing_key":
                export.announcements.append(
                    Stored(
                        int(item["position"]),
                        str(item["statement"]),
                        str(item["outgoing_signature"]),
                        str(item["incoming_signature"]),
                    )
                )
        return export


def verify_export(
    export: Export, kept: Sequence[Checkpoint] = (), trusted: str | None = None
) -> Verification:
    """Check an export's links, and what they can be anchored to.

    A whole-register export must run from the first link to its head without a gap.
    Its checkpoint, and any the auditor kept (``kept``), must be signed by a key the
    export's signing-key statements reach from the ``trusted`` key or else the key of
    the kept checkpoints, in force at its position, and agree with the export's links:
    only a key the auditor kept is an anchor, since whoever rewrote the file could have
    signed its own. A one-case export must hold exactly that case's versions 1..n; its
    links are checked, but nothing in it ties them to the register's head (``note``
    says so)."""
    case_id = export.header.get("case_id")
    scope = export.header.get("scope")
    if scope not in ("register", "case") or (scope == "case") != bool(case_id):
        return _broken(0, 1, "the export's header names no scope it could have")
    if scope == "case":
        problem = _one_case_problem(export, str(case_id))
        if problem is not None:
            return _broken(0, 1, problem)
    previous, expected, verified = GENESIS, 1, 0
    for item in export.events:
        position = item["position"]
        if scope == "register" and (position != expected or item["previous"] != previous):
            return _broken(verified, expected, "the export's chain has a gap or is out of order")
        state = base64.b64decode(item["state"])
        computed = link_hash(
            item["previous"], position, UUID(item["case_id"]), item["version"], item["topic"], state
        )
        if computed != item["hash"]:
            return _broken(verified, position, "an event or its link was altered")
        previous, expected = item["hash"], position + 1
        verified += 1
    if export.head is None:
        return _broken(verified, expected, "the export has no head: it was cut short")
    head = (export.head["position"], export.head["hash"])
    if scope == "register" and head != (expected - 1, previous):
        return _broken(verified, expected, "the export ends before its head: events were removed")
    if scope == "case":
        note = "links hold, but a one-case export is not anchored to the register's head"
        return Verification(True, verified, export.head["hash"], note=note)
    return _anchored(export, list(kept), verified, trusted)


def _one_case_problem(export: Export, case_id: str) -> str | None:
    if any(e["case_id"] != case_id for e in export.events):
        return "a one-case export holds events of another case"
    if [e["version"] for e in export.events] != list(range(1, len(export.events) + 1)):
        return "the case's versions are not all there, in order"
    return None


def _anchored(
    export: Export, kept: list[Checkpoint], verified: int, trusted: str | None
) -> Verification:
    head = export.head
    assert head is not None
    result = Verification(True, verified, head["hash"])
    checkpoints = ([export.checkpoint] if export.checkpoint else []) + kept
    links = {e["position"]: e["hash"] for e in export.events}
    # Without a kept key the file's own can still show it is inconsistent, but not that
    # it is genuine: whoever rewrote the file could have signed it.
    anchored = trusted or (kept[0].public_key if kept else None)
    key = anchored or (checkpoints[0].public_key if checkpoints else None)

    def hash_at(position: int) -> str | None:
        return GENESIS if position == 0 else links.get(position)

    if key is None:  # nothing signed to check: the statements must still hold together
        spans, broken = signing.walk(export.announcements, hash_at)
    else:
        spans, broken = signing.check(export.announcements, key, checkpoints, hash_at)
    if broken is not None:
        return Verification(False, verified, head["hash"], broken.position, broken.problem)
    if anchored is None:
        note = "unanchored: give a checkpoint you kept to find a full rewrite of the file"
        return replace(result, note=note)
    return replace(result, checkpoints=len(checkpoints), keys=len(spans))


def _broken(verified: int, position: int, problem: str) -> Verification:
    return Verification(False, verified, "", position, problem)


def replay_from_export(export: Export, case_id: UUID) -> Case:
    """The case's non-personal history as its exported events build it (no database
    needed). The person's identity and the personal fields stay sealed: an export never
    carries a person's key, so they read as redacted (``Fact.redacted``)."""
    in_memory = Register(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    mapper = SealingMapper(in_memory.construct_transcoder(), NoKeys())
    case: Any = None
    for item in export.events:
        if item["case_id"] != str(case_id):
            continue
        stored = StoredEvent(
            case_id, item["version"], item["topic"], base64.b64decode(item["state"])
        )
        case = mapper.to_domain_event(stored).mutate(case)
    if not isinstance(case, Case):  # none, or a negotiation's or an exchange's events
        raise KeyError("the export holds no events of this case")
    return case
