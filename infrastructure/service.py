"""The register's use cases as the API sees them: each write in one transaction.

A write: take the lock, answer a retried request from its idempotency record, run the
domain command, project the view and periods, chain the events, store the idempotency
record, commit. Reads go to the view table; register-wide as-of / known-at lists and
counts to the periods table; one case as of a time, and histories, replay its log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from domain.case import Case, Stamp
from domain.facts import Fact, FactError
from domain.identity import Identity
from domain.input import parse_fact, parse_opening
from domain.register import CaseNotFound, NotOwner
from domain.state import derive, retracted_versions
from infrastructure import access, chain, checkpoints, exports, names, readlog, tables, views
from infrastructure.checkpoints import Checkpoint
from infrastructure.keys import ApiKey
from infrastructure.readlog import Reader
from infrastructure.store import Store, WriteUnit, current_unit

FILTERS = ("status", "held_by", "nationality", "category", "disputed")

log = logging.getLogger("casebook")


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before with a different request."""


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Written:
    """A write's answer. ``case_id`` is the id of what was written: the case, or for the
    writes of ``infrastructure.negotiations`` the negotiation or the exchange (``id``)."""

    status_code: int
    case_id: uuid.UUID
    version: int
    view: dict[str, Any]

    @property
    def id(self) -> uuid.UUID:
        return self.case_id


@dataclass(frozen=True)
class When:
    """A point on both time axes: the world as of a day, as known at an instant."""

    as_of: date | None = None
    known_at: datetime | None = None

    def conditions(self) -> list[Any]:
        p = tables.case_periods
        known: ColumnElement[bool]
        valid: ColumnElement[bool]
        if self.known_at is None:
            known = p.c.recorded_to.is_(None)
        else:
            known = and_(
                p.c.recorded_from <= self.known_at,
                or_(p.c.recorded_to.is_(None), p.c.recorded_to > self.known_at),
            )
        if self.as_of is None:
            valid = p.c.valid_to.is_(None)
        else:
            valid = and_(
                p.c.valid_from <= self.as_of,
                or_(p.c.valid_to.is_(None), p.c.valid_to > self.as_of),
            )
        return [known, valid]

    def as_dict(self) -> dict[str, str | None]:
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "known_at": self.known_at.isoformat() if self.known_at else None,
        }


@dataclass(frozen=True)
class Idempotency:
    key: str
    request_hash: str


def request_hash(*parts: Any) -> str:
    data = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


class Casebook:
    def __init__(self, store: Store):
        self.store = store
        self.register = store.register

    # ---- writes -------------------------------------------------------------------

    def open_case(
        self,
        payload: dict[str, Any],
        key: ApiKey,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Written:
        category, person, source = parse_opening(payload)
        with self.store.write() as unit:
            first = remembered(unit.session, key, idem)
            if first is None:
                stamp = Stamp(unit.recorded_at, key.name, key.org)
                case, _ = self.register.open_case(uuid.uuid4(), category, person, source, stamp)
                return self._finish(unit, case, key, idem)
        return self._replay(first, key, reader)

    def record_fact(
        self,
        case_id: uuid.UUID,
        payload: dict[str, Any],
        key: ApiKey,
        expected_version: int | None = None,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Written:
        fact = parse_fact(payload, datetime.now(UTC).date())

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            case, _ = self.register.record_fact(case_id, fact, stamp, expected_version)
            return self._finish(unit, case, key, idem)

        return self._on_case(case_id, key, idem, command, reader)

    def share(
        self,
        case_id: uuid.UUID,
        org: str,
        key: ApiKey,
        purpose: str | None = None,
        idem: Idempotency | None = None,
        expected: int | None = None,
        reader: Reader | None = None,
    ) -> Written:
        """Share the case with ``org`` (``purpose`` given), or end that share (None)."""

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            k = tables.api_keys
            if unit.session.execute(select(k.c.id).where(k.c.org == org)).first() is None:
                raise FactError({"org": "no organisation of that name has keys here"})
            if purpose is not None:
                case, _ = self.register.share_case(case_id, org, purpose, stamp, expected)
            else:
                case, _ = self.register.end_share(case_id, org, None, stamp, expected)
            return self._finish(unit, case, key, idem)

        return self._on_case(case_id, key, idem, command, reader)

    def erase(
        self,
        case_id: uuid.UUID,
        reason: str,
        key: ApiKey,
        expected: int | None = None,
        idem: Idempotency | None = None,
        reader: Reader | None = None,
    ) -> Written:
        """Erase the person: record the fact, destroy their key and rewrite their view
        and name keys, in one transaction; then push what was overwritten out of the
        database files (``Store.scrub``)."""

        def command(unit: WriteUnit, stamp: Stamp) -> Written:
            case, _ = self.register.erase_case(case_id, reason, stamp, expected)
            m = tables.negotiation_mentions
            listing = unit.session.execute(
                select(m.c.negotiation_id).where(m.c.case_id == case_id)
            ).scalars()
            _, entry_keys, _ = self.register.erase_listed_names(case_id, sorted(listing), stamp)
            conn = unit.session.connection()
            for key_id in [case_id, *(uuid.UUID(k) for k in entry_keys)]:
                self.store.keyring.destroy(conn, key_id, unit.recorded_at)
            return self._finish(unit, case, key, idem, status=200)

        written = self._on_case(case_id, key, idem, command, reader)
        try:
            self.store.scrub()
        except Exception as e:  # committed: the key is gone; the files catch up later
            log.warning("erasure: scrubbing the database files failed: %s", type(e).__name__)
        return written

    def _on_case(
        self,
        case_id: uuid.UUID,
        key: ApiKey,
        idem: Idempotency | None,
        command: Callable[[WriteUnit, Stamp], Written],
        reader: Reader | None,
    ) -> Written:
        """A write to one existing case: 404 for a case the caller may not see, else
        ``command`` in the transaction; for a retried request, the first answer again
        (``_replay``)."""
        with self.store.write() as unit:
            first = remembered(unit.session, key, idem)
            if first is None:
                if not access.can_see(unit.session, key, case_id):
                    raise CaseNotFound(case_id)
                return command(unit, Stamp(unit.recorded_at, key.name, key.org))
        return self._replay(first, key, reader)

    def _finish(
        self,
        unit: WriteUnit,
        case: Case,
        key: ApiKey,
        idem: Idempotency | None,
        status: int = 201,
    ) -> Written:
        """The answer to a write to one case: its view as projected, with the
        negotiations the caller may see that name it (a new case has none)."""
        session, view = unit.session, unit.views[case.id]
        if case.version > 1:
            listed = views.negotiations_of(session, [case.id], org=access.org_filter(key))
            view["negotiations"] = listed.get(case.id, [])
        remember(session, key, idem, status, case.id, case.version)
        return Written(status, case.id, case.version, view)

    def _replay(self, first: Any, key: ApiKey, reader: Reader | None) -> Written:
        """The first answer to a request retried with the same Idempotency-Key,
        re-rendered from the log. It is a read of the case: given only to a caller who
        may see the case now (a share may have ended since; 404 otherwise), and
        recorded in the read audit (503 when that cannot be). Outside the write
        transaction, which recorded nothing."""
        self._check_visible(first.aggregate_id, key)
        case = self.register.get_case(first.aggregate_id, version=first.version)
        view = views.render(case.id, case.state())
        with self.store.read() as conn:
            listed = views.negotiations_of(conn, [case.id], org=access.org_filter(key))
        view["negotiations"] = listed.get(case.id, [])
        self.store.record_read(reader, [case.id])
        return Written(first.status_code, case.id, case.version, view)

    # ---- reads --------------------------------------------------------------------

    def view_json(
        self, case_id: uuid.UUID, key: ApiKey | None = None, reader: Reader | None = None
    ) -> tuple[int, str]:
        """The live view, as stored JSON text, recorded in the read audit."""
        found = self.read_view(case_id, key)
        self.store.record_read(reader, [case_id])
        return found

    def read_view(self, case_id: uuid.UUID, key: ApiKey | None = None) -> tuple[int, str]:
        """The live view, as stored JSON text (no re-encoding on the hot path), for a
        caller who may see the case (``CaseNotFound`` otherwise), and its version; the
        caller records the read (``GET /cases/{id}`` awaits its batch on the event
        loop). One statement, and a second only for a case that negotiations name."""
        org = access.org_filter(key)
        # The quick engine: on SQLite one connection of its own, used only on the event
        # loop, which a busy pool of worker threads can never make it wait for.
        with self.store.quick_engine.connect() as conn:
            row = conn.execute(views.ONE_VIEW, {"case_id": case_id, "org": org}).first()
            if row is None or not (org is None or row.visible):
                raise CaseNotFound(case_id)
            self.store.keyring.refresh_to(row.epoch or 0)
            text = views.open_texts(self.store.keyring, [(case_id, row.view)], conn)[case_id]
            listed = (
                views.negotiations_of(conn, [case_id], org=org).get(case_id) if row.named else None
            )
        if listed:  # rare next to plain reads: only then is the stored JSON re-encoded
            view = json.loads(text)
            view["negotiations"] = listed
            return row.version, views.dumps(view)
        return row.version, text

    def view_at(
        self,
        case_id: uuid.UUID,
        as_of: date | None,
        known_at: datetime | None,
        key: ApiKey | None = None,
        reader: Reader | None = None,
    ) -> dict[str, Any]:
        """The case as of a world date and/or with only what was recorded by an instant."""
        self._check_visible(case_id, key)
        view = self._timed_view(case_id, as_of, known_at, access.org_filter(key))
        self.store.record_read(reader, [case_id])
        return view

    def _timed_view(
        self, case_id: uuid.UUID, as_of: date | None, known_at: datetime | None, org: str | None
    ) -> dict[str, Any]:
        """A replay of the case at a point on both axes; ``org``: whose negotiations."""
        case = self.register.get_case(case_id)
        if known_at is not None and case.facts[0].recorded_at > known_at:
            raise CaseNotFound(case_id)  # nobody knew of this case then
        state = derive(case.facts, as_of=as_of, known_at=known_at)
        view = views.render(case_id, state)
        with self.store.read() as conn:
            listed = views.negotiations_of(conn, [case_id], as_of, org).get(case_id, [])
        view["negotiations"] = listed
        view["as_of"] = as_of.isoformat() if as_of else None
        view["known_at"] = known_at.isoformat() if known_at else None
        return view

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
        items = [cp.as_dict() for _, cp in rows[:limit]]
        return items, encode_cursor("c", rows[limit - 1][0]) if len(rows) > limit else None

    def _check_visible(self, case_id: uuid.UUID, key: ApiKey | None) -> None:
        if not access.sees_all(key):
            with self.store.read() as conn:
                if not access.can_see(conn, key, case_id):
                    raise CaseNotFound(case_id)

    def history(
        self, case_id: uuid.UUID, key: ApiKey | None = None, reader: Reader | None = None
    ) -> dict[str, Any]:
        self._check_visible(case_id, key)
        facts = self.register.get_case(case_id).facts
        with self.store.read() as conn:
            hashes = chain.hashes_of_case(conn, case_id)
            withheld = access.unseen_talks(conn, key, talks_named(facts))
        self.store.record_read(reader, [case_id])
        return history_of(case_id, facts, hashes, withheld)

    def export(
        self,
        case_id: uuid.UUID | None = None,
        key: ApiKey | None = None,
        reader: Reader | None = None,
    ) -> Iterator[str]:
        """The whole register, or one case, as export lines from one snapshot. A case
        file is for auditors and the organisation that owns the case (``NotOwner`` for
        one it is shared with): it carries the stored events whole, and so the ids of
        the owner's negotiations and exchanges that its history withholds."""
        if case_id is not None:
            self._check_visible(case_id, key)
            case = self.register.get_case(case_id)  # CaseNotFound before the first line
            if not access.sees_all(key) and key is not None and case.state().org != key.org:
                raise NotOwner(case_id, "take its case file (an auditor may too)")
            self.store.record_read(reader, [case_id])
        with self.store.snapshot() as conn:
            yield from exports.export_lines(conn, self.store.events_table, case_id)

    def list_cases(
        self,
        filters: dict[str, Any],
        q: str | None,
        limit: int,
        cursor: str | None,
        when: When | None = None,
        key: ApiKey | None = None,
        reader: Reader | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Case views, filtered; with ``when``, the register as of a day and/or as known
        at an instant, selected from the bitemporal periods (no replay to filter), each
        item then rendered as of that time."""
        v = tables.case_views
        query = select(v.c.seq, v.c.view, v.c.case_id)
        columns = v.c
        if when is not None:
            p = tables.case_periods
            query = query.join(p, p.c.case_id == v.c.case_id).where(*when.conditions())
            columns = p.c
        for name in FILTERS:
            if filters.get(name) is not None:
                query = query.where(columns[name] == filters[name])
        if filters.get("negotiation") is not None:
            # Only a negotiation the caller may see: another organisation's names none.
            n, t = tables.negotiation_cases, tables.negotiations
            named = select(n.c.case_id).where(n.c.negotiation_id == filters["negotiation"])
            org = access.org_filter(key)
            if org is not None:
                named = named.join(t, t.c.negotiation_id == n.c.negotiation_id).where(
                    t.c.org == org
                )
            query = query.where(v.c.case_id.in_(named))
        visible = access.visible_ids(key)
        if visible is not None:
            query = query.where(v.c.case_id.in_(visible))
        with self.store.read() as session:
            if q is None:
                after = decode_cursor(cursor, "s")
                rows = session.execute(
                    query.where(v.c.seq > after).order_by(v.c.seq).limit(limit + 1)
                ).all()
                opened = views.load_views(
                    self.store.keyring, [(r.case_id, r.view) for r in rows[:limit]]
                )
                page = [(r.case_id, opened[r.case_id]) for r in rows[:limit]]
                more = len(rows) > limit
                next_cursor = encode_cursor("s", rows[limit - 1].seq) if more else None
            else:
                page, next_cursor = self._search(session, query, q, limit, cursor)
            listed = views.negotiations_of(
                session, [case_id for case_id, _ in page], org=access.org_filter(key)
            )
        for case_id, view in page:
            view["negotiations"] = listed.get(case_id, [])
        if when is not None:
            org = access.org_filter(key)
            page = [(c, self._timed_item(c, view, when, org)) for c, view in page]
        self.store.record_read(reader, [case_id for case_id, _ in page])
        return [view for _, view in page], next_cursor

    def reads_of(
        self, case_id: uuid.UUID, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Who read the case's personal data, when, through which route: oldest first."""
        after = decode_cursor(cursor, "r")
        with self.store.read() as conn:
            rows = readlog.listed(conn, case_id, limit + 1, after)
        items = [item for _, item in rows[:limit]]
        return items, encode_cursor("r", rows[limit - 1][0]) if len(rows) > limit else None

    def _timed_item(
        self, case_id: uuid.UUID, view: dict[str, Any], when: When, org: str | None
    ) -> dict[str, Any]:
        timed = self._timed_view(case_id, when.as_of, when.known_at, org)
        if "match_score" in view:
            timed["match_score"] = view["match_score"]
        return timed

    def _search(
        self, session: Connection, query: Any, q: str, limit: int, cursor: str | None
    ) -> tuple[list[tuple[uuid.UUID, dict[str, Any]]], str | None]:
        offset = decode_cursor(cursor, "o")
        keyring = self.store.keyring
        keys = sorted(keyring.name_key(k) for k in names.blocking_keys(q))
        if not keys:
            return [], None
        k = tables.case_name_keys
        v = tables.case_views
        candidates = select(k.c.case_id).where(k.c.key.in_(keys)).distinct()
        rows = session.execute(query.where(v.c.case_id.in_(candidates))).all()
        opened = views.load_views(keyring, [(row.case_id, row.view) for row in rows])
        scored = []
        for row in rows:
            view = opened[row.case_id]
            score = names.best_similarity(q, Identity.from_dict(view["person"]).names())
            if score >= names.MATCH_THRESHOLD:
                view["match_score"] = round(score, 3)
                scored.append((-score, row.seq, row.case_id, view))
        scored.sort(key=lambda s: (s[0], s[1]))
        page = [(case_id, view) for _, _, case_id, view in scored[offset : offset + limit]]
        more = len(scored) > offset + limit
        return page, encode_cursor("o", offset + limit) if more else None

    def summary(
        self, group_by: str, when: When | None = None, key: ApiKey | None = None
    ) -> dict[str, Any]:
        """Counts by one column, now or (``when``) as of a day and/or known at an instant;
        of the cases the caller may see."""
        table = tables.case_views if when is None else tables.case_periods
        column = table.c[group_by]
        query = select(column, func.count()).group_by(column).order_by(column)
        visible = access.visible_ids(key)
        if visible is not None:
            query = query.where(table.c.case_id.in_(visible))
        if when is not None:
            query = query.where(*when.conditions())
        with self.store.read() as session:
            rows = session.execute(query).all()
        groups = [{"value": r[0], "count": r[1]} for r in rows]
        out: dict[str, Any] = {"group_by": group_by, "groups": groups}
        out["total"] = sum(g["count"] for g in groups)
        if when is not None:
            out.update(when.as_dict())
        return out


def remember(
    session: Session,
    key: ApiKey,
    idem: Idempotency | None,
    status_code: int,
    aggregate_id: uuid.UUID,
    version: int,
) -> None:
    """Keep what a write with an Idempotency-Key recorded, so that a retry can answer
    the same. The ``aggregate_id`` column holds the id of whatever was written (a case, a
    negotiation or an exchange); no personal data is kept: the request's digest is keyed
    (``Keyring.digest``), so a guessed body cannot be confirmed against it."""
    if idem is None:
        return
    session.execute(
        insert(tables.idempotency).values(
            api_key_id=key.id,
            idem_key=idem.key,
            request_hash=_keyed(idem),
            status_code=status_code,
            aggregate_id=aggregate_id,
            version=version,
            created_at=datetime.now(UTC),
        )
    )


def remembered(session: Session, key: ApiKey, idem: Idempotency | None) -> Any:
    """The record of a write first made with this key's Idempotency-Key, or None.
    The same key with a different request is an error, never a silent replay."""
    if idem is None:
        return None
    t = tables.idempotency
    row = session.execute(
        select(t).where(t.c.api_key_id == key.id, t.c.idem_key == idem.key)
    ).first()
    if row is not None and not hmac.compare_digest(row.request_hash, _keyed(idem)):
        raise IdempotencyMismatch()
    return row


def _keyed(idem: Idempotency) -> str:
    unit = current_unit.get()
    if unit is None:
        raise RuntimeError("idempotency records are kept only inside Store.write()")
    return unit.keyring.digest(idem.request_hash)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TALK_FIELDS = ("negotiation_id", "exchange_id")


def talks_named(facts: list[Fact]) -> set[str]:
    """The negotiation and exchange ids a case's facts name: a handover's fields, and a
    confirmed match's source ("list of negotiation <id>")."""
    named = {str(f.get(k)) for f in facts for k in TALK_FIELDS if f.get(k)}
    for f in facts:
        named.update(_UUID.findall(str(f.source.get("reference") or "")))
    return named


def history_of(
    case_id: uuid.UUID,
    facts: list[Fact],
    hashes: dict[int, str],
    withheld: AbstractSet[str] = frozenset(),
) -> dict[str, Any]:
    """A case's history for auditors: every event, oldest first, with its link hash and,
    for a retracted one, the retraction that stands against it. The negotiation and
    exchange ids in ``withheld`` (the caller may not see them) read "withheld"."""
    undone = retracted_versions(facts)
    retracted_by = {
        f.get("version"): f.version
        for f in facts
        if f.type == "retracted" and f.version not in undone
    }
    return {
        "case_id": str(case_id),
        "events": [
            {
                **_withholding(_history_entry(f, undone, retracted_by), withheld),
                "hash": hashes.get(f.version),
            }
            for f in facts
        ],
    }


def _withholding(entry: dict[str, Any], withheld: AbstractSet[str]) -> dict[str, Any]:
    if not withheld:
        return entry
    fields = {
        k: "withheld" if k in TALK_FIELDS and str(v) in withheld else v
        for k, v in entry["fields"].items()
    }
    source = dict(entry["source"])
    if source.get("reference"):
        source["reference"] = _UUID.sub(
            lambda m: "withheld" if m.group(0) in withheld else m.group(0), source["reference"]
        )
    return {**entry, "fields": fields, "source": source}


def _history_entry(fact: Fact, undone: set[int], retracted_by: dict[int, int]) -> dict[str, Any]:
    fields: dict[str, Any] = dict(fact.data)
    if fact.person is not None:
        fields.update(fact.person.to_dict())
    entry = {
        "version": fact.version,
        "type": fact.type,
        "occurred_on": fact.occurred_on.isoformat(),
        "recorded_at": fact.recorded_at.isoformat(),
        "recorded_by": fact.recorded_by,
        "source": fact.source,
        "fields": fields,
        "retracted": fact.version in undone,
    }
    if fact.version in retracted_by:
        entry["retracted_by"] = retracted_by[fact.version]
    return entry


def encode_cursor(kind: str, value: int) -> str:
    raw = json.dumps({kind: value}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str) -> int:
    if cursor is None:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))[kind]
        if type(value) is not int or not 0 <= value < 2**62:
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError):
        raise BadCursor("the cursor is not one this list gave out") from None
