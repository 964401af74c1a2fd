"""Who sees which case: the organisation that owns it, those it is shared with, and
auditors. Everything a case worker reads, lists, searches, counts or reconciles is
filtered here; a case the caller may not see is answered as if it did not exist (404,
never a 403 that would confirm it exists), and is left out of every total.

Admins administer and read counts; their counts cover their own organisation's cases
like a case worker's. Auditors see everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from domain.ports import Caller
from infrastructure import tables

SEES_ALL = frozenset({"auditor"})


def sees_all(key: Caller | None) -> bool:
    """No key (the command line, the service itself) or an auditor's: no filter."""
    return key is None or key.role in SEES_ALL


def visible_ids(key: Caller | None) -> Select[Any] | None:
    """A subquery of the case ids the caller may see, or None for all."""
    if sees_all(key):
        return None
    assert key is not None
    t = tables.case_access
    return select(t.c.case_id).where(t.c.org == key.org)


# An organisation that may see at most this many cases has them listed whole; one that
# sees more has each row of a page checked on its own (``visible``).
FEW = 1000


def sees_few(conn: Connection, key: Caller | None) -> bool:
    """Whether the caller's organisation may see at most ``FEW`` cases (a partner that
    was shared a handful, say), read from the access index without counting them all."""
    if sees_all(key):
        return False
    assert key is not None
    t = tables.case_access
    probe = select(t.c.case_id).where(t.c.org == key.org).limit(FEW + 1).subquery()
    return int(conn.execute(select(func.count()).select_from(probe)).scalar_one()) <= FEW


def visible(
    key: Caller | None, case_id: ColumnElement[Any], few: bool = False
) -> ColumnElement[bool] | None:
    """A condition that the caller may see the case in ``case_id`` (a column of the
    outer query), or None for all. For an organisation that sees many cases it is
    correlated, checked row by row through the access index, so that a page of 50
    reads about 50 access rows rather than the list of every case it may see; for one
    that sees ``few`` (``sees_few``) the list, which is short, drives the query, so
    that a page does not walk the whole register to find its few."""
    if sees_all(key):
        return None
    assert key is not None
    if few:
        ids = visible_ids(key)
        assert ids is not None
        return case_id.in_(ids)
    t = tables.case_access
    return exists().where(t.c.case_id == case_id, t.c.org == key.org)


def can_see(conn: Connection | Session, key: Caller | None, case_id: UUID) -> bool:
    if sees_all(key):
        return True
    assert key is not None
    found = conn.execute(_CAN_SEE, {"org": key.org, "case_id": case_id}).first()
    return found is not None


# Built once: checked on every write and read of one case.
_CAN_SEE = select(tables.case_access.c.case_id).where(
    tables.case_access.c.org == bindparam("org"),
    tables.case_access.c.case_id == bindparam("case_id"),
)


def hidden_among(
    conn: Connection | Session, key: Caller | None, case_ids: Iterable[UUID]
) -> set[UUID]:
    """The ones of ``case_ids`` the caller may not see (unknown ids included)."""
    ids = sorted(set(case_ids))
    if sees_all(key) or not ids:
        return set()
    assert key is not None
    t = tables.case_access
    seen: set[UUID] = set()
    for i in range(0, len(ids), 500):
        seen.update(
            conn.execute(
                select(t.c.case_id).where(t.c.org == key.org, t.c.case_id.in_(ids[i : i + 500]))
            ).scalars()
        )
    return set(ids) - seen


def org_filter(key: Caller | None) -> str | None:
    """The organisation whose negotiations and exchanges the caller may see, or None
    for all of them."""
    if sees_all(key):
        return None
    assert key is not None
    return key.org


def owns(key: Caller | None, org: str) -> bool:
    """Whether the caller may see a negotiation or exchange of ``org``."""
    return sees_all(key) or (key is not None and key.org == org)


def unseen_talks(conn: Connection | Session, key: Caller | None, ids: Iterable[str]) -> set[str]:
    """The ones of these ids that are another organisation's negotiations or exchanges,
    which the caller may not see. A case's facts name the negotiations and exchanges
    it took part in; a case shared with another organisation must not tell it which
    talks the owner is in."""
    wanted = sorted(set(ids))
    if sees_all(key) or not wanted:
        return set()
    assert key is not None
    n, e = tables.negotiations, tables.exchanges
    as_ids = [UUID(i) for i in wanted]
    queries = (
        select(n.c.negotiation_id, n.c.org).where(n.c.negotiation_id.in_(as_ids)),
        select(e.c.exchange_id, e.c.org).where(e.c.exchange_id.in_(as_ids)),
    )
    # Ids that are no negotiation's or exchange's (a reference someone typed) stay.
    return {str(i) for q in queries for i, org in conn.execute(q) if org != key.org}
