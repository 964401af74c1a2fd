"""The case views as read: rendered, opened, listed with their negotiations.

A view is ``domain.state.derive`` of the case's facts, rendered (``render``) as the JSON
that ``GET /cases/{id}`` answers. The same rendering serves the rows the projections
write (``infrastructure.projections``), the rebuild, and the as-of / known-at answers,
so they cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from domain.state import CaseState
from domain.timeline import Period
from infrastructure import tables
from infrastructure.crypto import SEALED_TEXT, Keyring, MissingPersonKey

PERIOD_COLUMNS = [f.name for f in fields(Period)]


def render(case_id: UUID, state: CaseState) -> dict[str, Any]:
    """The case view of api.md, from a derived state."""
    return {
        "id": str(case_id),
        "version": state.version,
        "category": state.category,
        "person": state.person.to_dict(),
        "status": state.status,
        "held_by": state.held_by,
        "place": state.place,
        "last_seen_alive_on": _iso(state.last_seen_alive_on),
        "classifications": [state.classifications[p] for p in sorted(state.classifications)],
        "disputed": state.disputed,
        "disputes": state.disputes,
        "erased": state.erased,
        "negotiations": [],
        "org": state.org,
        "shares": [
            {k: v for k, v in state.shares[org].items() if k != "by"}
            for org in sorted(state.shares)
        ],
        "opened_at": _iso(state.opened_at),
        "updated_at": _iso(state.updated_at),
    }


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dumps(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False, separators=(",", ":"))


def open_texts(
    keyring: Keyring, rows: list[tuple[UUID, str]], on: Connection | None = None
) -> dict[UUID, str]:
    """View rows' JSON text, opened: the keys read at once (on ``on`` if given). A
    person erased between the read of their row and the read of their key has the row
    read again: the erasure rewrote it in clear in the transaction that destroyed it."""
    keyring.load((case_id for case_id, _ in rows), on)
    out, again = {}, []
    for case_id, stored in rows:
        text = keyring.open_text(case_id, stored)
        if text is None:
            again.append(case_id)
        else:
            out[case_id] = text
    if again:
        t = tables.case_views
        with keyring.connect(on) as (conn, _):
            fresh = conn.execute(select(t.c.case_id, t.c.view).where(t.c.case_id.in_(again)))
            for case_id, stored in fresh:
                if stored.startswith(SEALED_TEXT):
                    raise MissingPersonKey(f"the view of case {case_id} is sealed, its key gone")
                out[case_id] = stored
    return out


def load_views(keyring: Keyring, rows: list[tuple[UUID, str]]) -> dict[UUID, dict[str, Any]]:
    """View rows, opened and parsed (``open_texts``)."""
    return {case_id: json.loads(text) for case_id, text in open_texts(keyring, rows).items()}


def negotiations_of(
    session: Connection | Session,
    case_ids: list[UUID],
    as_of: date | None = None,
    org: str | None = None,
) -> dict[UUID, list[str]]:
    """Case id -> the ids of the negotiations that name the case, oldest first; with
    ``as_of``, only those opened by that day; with ``org``, only that organisation's
    (``access.org_filter``: a case shared with another organisation must not tell it
    which negotiations the owner is in). Which negotiations name a case is kept as it
    is now, not as it was known at past instants."""
    t, n = tables.negotiation_cases, tables.negotiations
    out: dict[UUID, list[str]] = {}
    for chunk in chunks(case_ids):
        query = (
            select(t.c.case_id, t.c.negotiation_id, n.c.seq)
            .distinct()
            .join(n, n.c.negotiation_id == t.c.negotiation_id)
            .where(t.c.case_id.in_(chunk))
            .order_by(t.c.case_id, n.c.seq)
        )
        if as_of is not None:
            query = query.where(n.c.opened_on <= as_of)
        if org is not None:
            query = query.where(n.c.org == org)
        rows = session.execute(query)
        for case_id, negotiation_id, _ in rows:
            listed = out.setdefault(case_id, [])
            if str(negotiation_id) not in listed:
                listed.append(str(negotiation_id))
    return out


def negotiations_naming(session: Connection | Session, case_id: UUID, org: str | None) -> list[str]:
    """``negotiations_of`` for one case, now, in a statement built once (the answer to
    every write and read of a case)."""
    query = _NAMING if org is None else _NAMING_FOR_ORG
    rows = session.execute(query, {"case_id": case_id, "org": org})
    return list(dict.fromkeys(str(negotiation_id) for negotiation_id, _ in rows))


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size`` (for IN clauses)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


_V, _A, _N = tables.case_views, tables.case_access, tables.negotiation_cases
# One statement for a case's view: the row, whether the caller's organisation may see it,
# whether any negotiation names it, and the newest erasure (for the keyring's cache).
ONE_VIEW = select(
    _V.c.version,
    _V.c.view,
    exists().where(_A.c.case_id == _V.c.case_id, _A.c.org == bindparam("org")).label("visible"),
    exists().where(_N.c.case_id == _V.c.case_id).label("named"),
    select(func.max(tables.erasures.c.id)).scalar_subquery().label("epoch"),
).where(_V.c.case_id == bindparam("case_id"))


def read_view(session: Connection, keyring: Keyring, case_id: UUID) -> tuple[int, str] | None:
    """The view JSON of a case, opened, and its version; or None."""
    t = tables.case_views
    row = session.execute(select(t.c.version, t.c.view).where(t.c.case_id == case_id)).first()
    if row is None:
        return None
    return row.version, open_texts(keyring, [(case_id, row.view)])[case_id]


_T = tables.negotiations
_NAMING = (
    select(_N.c.negotiation_id, _T.c.seq)
    .distinct()
    .join(_T, _T.c.negotiation_id == _N.c.negotiation_id)
    .where(_N.c.case_id == bindparam("case_id"))
    .order_by(_T.c.seq)
)
_NAMING_FOR_ORG = _NAMING.where(_T.c.org == bindparam("org"))
