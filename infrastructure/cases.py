"""The read side of cases: one case's view (now, or as of a day and as known at an
instant), lists and searches, counts, histories, case files, and the answer to a write.

Everything a caller is shown passes the visibility check (``infrastructure.access``)
and is recorded in the read audit (``Store.record_read``) before it leaves. Live views
are read from the view table as stored JSON; a view at another time replays the case.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.engine import Connection

from domain.case import Case
from domain.errors import CaseNotFound, NotOwner
from domain.identity import Identity
from domain.ports import Caller, Written
from domain.state import derive
from infrastructure import access, chain, counts, exports, names, tables, views
from infrastructure.history import history_of, talks_named
from infrastructure.querying import When, decode_cursor, encode_cursor
from infrastructure.readlog import Reader
from infrastructure.store import Store

FILTERS = ("status", "held_by", "nationality", "category", "disputed")


SEARCH_CHUNK = 100  # candidates of a search opened and scored at a time


class CaseReads:
    def __init__(self, store: Store):
        self.store = store
        self.register = store.register

    def answer(self, written: Written, key: Caller, reader: Reader | None = None) -> dict[str, Any]:
        """The answer to a write to a case: its view as the write projected it, with the
        negotiations the caller may see that name it (``WriteUnit.done``). For a retry
        (``written.replayed``), the first answer rendered again from the log: a read of
        the case, given only to a caller who may see it now (a share may have ended
        since: 404 otherwise) and recorded in the read audit (503 when it cannot be)."""
        if not written.replayed:
            assert written.view is not None
            return written.view
        self._check_visible(written.id, key)
        case = self.register.get_case(written.id, version=written.version)
        view = views.render(case.id, case.state())
        with self.store.read() as conn:
            listed = views.negotiations_of(conn, [written.id], org=access.org_filter(key))
        view["negotiations"] = listed.get(written.id, [])
        self.store.record_read(reader, [written.id])
        return view

    # ---- one case -------------------------------------------------------------------

    def view_json(
        self, case_id: uuid.UUID, key: Caller | None = None, reader: Reader | None = None
    ) -> tuple[int, str]:
        """The live view, as stored JSON text, recorded in the read audit."""
        found = self.read_view(case_id, key)
        self.store.record_read(reader, [case_id])
        return found

    def read_view(self, case_id: uuid.UUID, key: Caller | None = None) -> tuple[int, str]:
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
            listed = views.negotiations_naming(conn, case_id, org) if row.named else None
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
        key: Caller | None = None,
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
        with self.store.read() as conn:
            listed = views.negotiations_of(conn, [case_id], as_of, org).get(case_id, [])
        return self._render_at(case, When(as_of, known_at), listed)

    @staticmethod
    def _render_at(case: Case, when: When, negotiations: list[Any]) -> dict[str, Any]:
        """The case's view replayed at a point on both axes."""
        state = derive(case.facts, as_of=when.as_of, known_at=when.known_at)
        view = views.render(case.id, state)
        view["negotiations"] = negotiations
        view.update(when.as_dict())
        return view

    def _check_visible(self, case_id: uuid.UUID, key: Caller | None) -> None:
        if not access.sees_all(key):
            with self.store.read() as conn:
                if not access.can_see(conn, key, case_id):
                    raise CaseNotFound(case_id)

    def history(
        self, case_id: uuid.UUID, key: Caller | None = None, reader: Reader | None = None
    ) -> dict[str, Any]:
        """Every event of the case in order, for auditors (``infrastructure.history``)."""
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
        key: Caller | None = None,
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

    # ---- many cases -----------------------------------------------------------------

    def list_cases(
        self,
        filters: dict[str, Any],
        q: str | None,
        limit: int,
        cursor: str | None,
        when: When | None = None,
        key: Caller | None = None,
        reader: Reader | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Case views, filtered; with ``when``, the register as of a day and/or as known
        at an instant, selected from the bitemporal periods (no replay to filter), each
        item then rendered as of that time."""
        org = access.org_filter(key)
        with self.store.read() as conn:
            query = self.list_query(filters, when, key, access.sees_few(conn, key))
            if q is None:
                page, next_cursor = self._page(conn, query, limit, cursor)
            else:
                page, next_cursor = self._search(conn, query, q, limit, cursor)
            listed = views.negotiations_of(conn, [case_id for case_id, _ in page], org=org)
        for case_id, view in page:
            view["negotiations"] = listed.get(case_id, [])
        if when is not None:
            page = self._timed_page(page, when, org)
        self.store.record_read(reader, [case_id for case_id, _ in page])
        return [view for _, view in page], next_cursor

    @staticmethod
    def list_query(
        filters: dict[str, Any], when: When | None, key: Caller | None, few: bool = False
    ) -> Any:
        """The cases a list answers, before its page or search: the filters on the live
        views or (``when``) on the periods standing then, and only cases the caller may
        see (``access.visible``: row by row, or from the list of an organisation that
        sees ``few``), so that a page reads about a page."""
        v = tables.case_views
        query = select(v.c.seq, v.c.view, v.c.case_id)
        if when is None:
            for name in FILTERS:
                if filters.get(name) is not None:
                    query = query.where(v.c[name] == filters[name])
        else:
            # The period standing then, checked row by row on the case's own periods
            # (correlated, through their (case_id, ...) index) as the walk in log order
            # goes: a page reads about a page, however many periods the register holds.
            p = tables.case_periods
            standing = [p.c.case_id == v.c.case_id, *when.conditions()]
            for name in FILTERS:
                if filters.get(name) is not None:
                    standing.append(p.c[name] == filters[name])
            query = query.where(exists().where(*standing))
        org = access.org_filter(key)
        if filters.get("negotiation") is not None:
            # Only a negotiation the caller may see: another organisation's names none.
            n, t = tables.negotiation_cases, tables.negotiations
            named = select(n.c.case_id).where(n.c.negotiation_id == filters["negotiation"])
            if org is not None:
                named = named.join(t, t.c.negotiation_id == n.c.negotiation_id).where(
                    t.c.org == org
                )
            query = query.where(v.c.case_id.in_(named))
        visible = access.visible(key, v.c.case_id, few)
        return query if visible is None else query.where(visible)

    @staticmethod
    def page_query(query: Any, after: int, limit: int) -> Any:
        """A page of ``list_query``: ``limit`` rows after position ``after``, and one more
        to say whether there is another page."""
        v = tables.case_views
        return query.where(v.c.seq > after).order_by(v.c.seq).limit(limit + 1)

    def _page(
        self, conn: Connection, query: Any, limit: int, cursor: str | None
    ) -> tuple[list[tuple[uuid.UUID, dict[str, Any]]], str | None]:
        after = decode_cursor(cursor, "s")
        rows = conn.execute(self.page_query(query, after, limit)).all()
        opened = views.load_views(self.store.keyring, [(r.case_id, r.view) for r in rows[:limit]])
        page = [(r.case_id, opened[r.case_id]) for r in rows[:limit]]
        more = len(rows) > limit
        return page, encode_cursor("s", rows[limit - 1].seq) if more else None

    def _timed_page(
        self, page: list[tuple[uuid.UUID, dict[str, Any]]], when: When, org: str | None
    ) -> list[tuple[uuid.UUID, dict[str, Any]]]:
        """Each case of a page replayed at ``when``: the page's events read in one query
        and its negotiations in another, not two per case."""
        ids = [case_id for case_id, _ in page]
        cases = self.register._get_many(ids)
        with self.store.read() as conn:
            listed = views.negotiations_of(conn, ids, when.as_of, org)
        out = []
        for case_id, view in page:
            timed = self._render_at(cases[case_id], when, listed.get(case_id, []))
            if "match_score" in view:
                timed["match_score"] = view["match_score"]
            out.append((case_id, timed))
        return out

    def _search(
        self, conn: Connection, query: Any, q: str, limit: int, cursor: str | None
    ) -> tuple[list[tuple[uuid.UUID, dict[str, Any]]], str | None]:
        offset = decode_cursor(cursor, "o")
        keyring = self.store.keyring
        keys = sorted(keyring.name_key(k) for k in names.search_keys(q))
        if not keys:
            return [], None
        k = tables.case_name_keys
        v = tables.case_views
        candidates = select(k.c.case_id).where(k.c.key.in_(keys)).distinct()
        rows = conn.execute(query.where(v.c.case_id.in_(candidates)).order_by(v.c.seq)).all()
        # Opened and scored in log order, a chunk at a time. Answers are ordered by score,
        # then log order, and no score beats an exact match (1.0): once more exact matches
        # than this page reaches are found, the rest cannot enter it, and are left
        # unopened (a common name has hundreds of namesakes in a large register).
        scored, exact = [], 0
        for i in range(0, len(rows), SEARCH_CHUNK):
            chunk = rows[i : i + SEARCH_CHUNK]
            opened = views.load_views(keyring, [(row.case_id, row.view) for row in chunk])
            for row in chunk:
                view = opened[row.case_id]
                score = names.best_similarity(q, Identity.from_dict(view["person"]).names())
                if score >= names.MATCH_THRESHOLD:
                    view["match_score"] = round(score, 3)
                    scored.append((-score, row.seq, row.case_id, view))
                    exact += score >= 1.0
            if exact > offset + limit:
                break
        scored.sort(key=lambda s: (s[0], s[1]))
        page = [(case_id, view) for _, _, case_id, view in scored[offset : offset + limit]]
        more = len(scored) > offset + limit
        return page, encode_cursor("o", offset + limit) if more else None

    def summary(
        self, group_by: str, when: When | None = None, key: Caller | None = None
    ) -> dict[str, Any]:
        """Counts by one column, now or (``when``) as of a day and/or known at an instant;
        of the cases the caller may see. As known now, from the kept counts
        (``infrastructure.counts``); as known at a past instant, from the periods."""
        if when is None or when.known_at is None:
            viewer = counts.ALL if access.sees_all(key) or key is None else key.org
            with self.store.read() as conn:
                groups = counts.groups(conn, viewer, group_by, when.as_of if when else None)
            return self._summary(group_by, groups, when)
        table = tables.case_periods
        column = table.c[group_by]
        query = select(column, func.count()).group_by(column).order_by(column)
        visible = access.visible_ids(key)
        if visible is not None:
            query = query.where(table.c.case_id.in_(visible))
        query = query.where(*when.conditions())
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        groups = [{"value": r[0], "count": r[1]} for r in rows]
        groups.sort(key=lambda g: (g["value"] is None, g["value"] or ""))
        return self._summary(group_by, groups, when)

    @staticmethod
    def _summary(group_by: str, groups: list[dict[str, Any]], when: When | None) -> dict[str, Any]:
        out: dict[str, Any] = {"group_by": group_by, "groups": groups}
        out["total"] = sum(g["count"] for g in groups)
        if when is not None:
            out.update(when.as_dict())
        return out
