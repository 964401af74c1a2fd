"""Matching the names on a negotiation list to the people in the register.

A list names people as the other side spelled them: in another script, with another
transliteration, family and given names in either order. Each name entry comes back as

- ``matched``: one person, and only one, scores at or above ``names.MATCH_THRESHOLD``
  and nothing known contradicts it (date of birth, nationality); or several do and
  exactly one of them has the date of birth the entry gives;
- ``candidates``: people a case worker should look at (at or above
  ``names.CANDIDATE_THRESHOLD``, best first and, among namesakes, those whose details
  agree first; at most ``MAX_CANDIDATES``), each with its score and whether the date of
  birth and nationality agree;
- ``unmatched``: nobody close.

Scale: a list of 10,000 names against 100,000 cases. Candidates are blocked before they
are scored: the blocking keys of every part of every name on the list are looked up in
one pass over the key table, and only people who share keys with as many parts of the
name as two (or the name's only part) are scored, at most ``MAX_SCORED`` of them, those
sharing the rarest keys first. Scoring is in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from domain.facts import FactError
from domain.identity import Identity
from domain.negotiation import CANDIDATES, MATCHED, UNMATCHED
from domain.ports import Caller
from infrastructure import access, names, tables
from infrastructure.crypto import Keyring
from infrastructure.querying import CHUNK
from infrastructure.views import load_views

MAX_CANDIDATES = 10
# A name whose blocking finds more people than this is scored only against the people
# sharing the most parts and the rarest keys with it (a bare common family name).
MAX_SCORED = 400
# A blocking key shared by more people than this is too common to select anyone by
# (used only for a name part that has no rarer key).
MAX_KEY_CASES = 2000
_CHUNK = 500


@dataclass(frozen=True)
class Person:
    """What matching needs of a case: its names and aliases, date of birth, nationality."""

    case_id: str
    names: tuple[str, ...]
    date_of_birth: str | None
    nationality: str | None


class NameIndex(Protocol):
    """Where matching finds people: the register's tables, or a list in a test."""

    def cases_by_key(self, keys: Iterable[str]) -> Mapping[str, Sequence[str]]: ...

    def people(self, case_ids: Iterable[str]) -> Mapping[str, Person]: ...


@dataclass(frozen=True)
class NameEntry:
    name: str
    date_of_birth: str | None = None
    nationality: str | None = None


def match_names(entries: Sequence[NameEntry], index: NameIndex) -> list[dict[str, Any]]:
    """The match result of each entry, in order (see the module's docstring)."""
    keys_of = [names.part_keys(e.name) for e in entries]
    every_key = {k for parts in keys_of for keys in parts for k in keys}
    by_key = index.cases_by_key(every_key)
    shortlists = [_shortlist(parts, by_key) for parts in keys_of]
    people = index.people({c for shortlist in shortlists for c in shortlist})
    return [
        _decide(entry, [people[c] for c in shortlist if c in people])
        for entry, shortlist in zip(entries, shortlists, strict=True)
    ]


def _shortlist(parts: list[set[str]], by_key: Mapping[str, Sequence[str]]) -> list[str]:
    """People sharing blocking keys with enough parts of the name, most parts first,
    then rarest keys first: a key that a tenth of the register shares (the skeleton of a
    two-letter name) says little, so such keys are used only when a part has no other,
    and they weigh less in the ranking that picks the ``MAX_SCORED`` to score."""
    parts_hit: Counter[str] = Counter()
    weight: Counter[str] = Counter()
    for keys in parts:
        usable = [k for k in keys if 0 < len(by_key.get(k, ())) <= MAX_KEY_CASES]
        if not usable:  # only common keys: the rarest of them
            usable = sorted(keys, key=lambda k: len(by_key.get(k, ())))[:1]
        found: dict[str, float] = {}
        for k in usable:
            cases = by_key.get(k, ())
            rarity = 1.0 / (1 + len(cases))
            for c in cases:
                found[c] = max(found.get(c, 0.0), rarity)
        parts_hit.update(found.keys())
        weight.update(found)
    if not parts_hit:
        return []
    needed = min(2, len(parts))
    ranked = sorted(
        (c for c, n in parts_hit.items() if n >= needed),
        key=lambda c: (-parts_hit[c], -weight[c], c),
    )
    return ranked[:MAX_SCORED]


def _agreement(given: str | None, known: str | None) -> str | None:
    """Whether a detail given on the list agrees with the register: None if either side
    does not know it."""
    unknown = (None, "unknown", "withheld")
    if given in unknown or known in unknown:
        return None
    return "agrees" if given == known else "differs"


def _decide(entry: NameEntry, people: list[Person]) -> dict[str, Any]:
    scored: list[dict[str, Any]] = []
    for person in people:
        score = names.best_similarity(entry.name, person.names)
        if score < names.CANDIDATE_THRESHOLD:
            continue
        scored.append(
            {
                "case_id": person.case_id,
                "score": round(score, 3),
                "date_of_birth": _agreement(entry.date_of_birth, person.date_of_birth),
                "nationality": _agreement(entry.nationality, person.nationality),
            }
        )
    # Best score first; among equal scores (namesakes) those whose details agree first.
    rank = {"agrees": 0, None: 1, "differs": 2}
    scored.sort(
        key=lambda c: (
            -c["score"],
            rank[c["date_of_birth"]],
            rank[c["nationality"]],
            c["case_id"],
        )
    )
    strong = [c for c in scored if c["score"] >= names.MATCH_THRESHOLD]
    consistent = [c for c in strong if "differs" not in (c["date_of_birth"], c["nationality"])]
    born = [c for c in consistent if c["date_of_birth"] == "agrees"]
    chosen = None
    if len(strong) == 1 and consistent:
        chosen = consistent[0]
    elif len(born) == 1:  # namesakes: the list's date of birth picks out one of them
        chosen = born[0]
    if chosen is not None:
        return {"result": MATCHED, "case_id": chosen["case_id"], "score": chosen["score"]}
    if scored:
        return {"result": CANDIDATES, "candidates": scored[:MAX_CANDIDATES]}
    return {"result": UNMATCHED}


class RegisterIndex:
    """The register's name keys and case views, read on one connection. The name index
    holds keyed hashes of the blocking keys (``Keyring.name_key``), and the views are
    sealed: names are compared in memory, after the views are opened."""

    def __init__(self, conn: Connection | Session, keyring: Keyring, org: str | None = None):
        self.conn = conn
        self.keyring = keyring
        self.org = org  # only the cases this organisation may see; None: all

    def cases_by_key(self, keys: Iterable[str]) -> dict[str, list[str]]:
        t = tables.case_name_keys
        out: dict[str, list[str]] = {}
        plain = {self.keyring.name_key(k): k for k in keys}
        ordered = sorted(plain)
        for i in range(0, len(ordered), _CHUNK):
            query = select(t.c.key, t.c.case_id).where(t.c.key.in_(ordered[i : i + _CHUNK]))
            if self.org is not None:
                a = tables.case_access
                query = query.join(a, a.c.case_id == t.c.case_id).where(a.c.org == self.org)
            rows = self.conn.execute(query)
            for key, case_id in rows:
                out.setdefault(plain[key], []).append(str(case_id))
        return out

    def people(self, case_ids: Iterable[str]) -> dict[str, Person]:
        v = tables.case_views
        out: dict[str, Person] = {}
        ordered = sorted(case_ids)
        for i in range(0, len(ordered), _CHUNK):
            chunk = [UUID(c) for c in ordered[i : i + _CHUNK]]
            rows = self.conn.execute(select(v.c.case_id, v.c.view).where(v.c.case_id.in_(chunk)))
            opened = load_views(self.keyring, [(case_id, view) for case_id, view in rows])
            for case_id, view in opened.items():
                person = Identity.from_dict(view["person"])
                out[str(case_id)] = Person(
                    str(case_id),
                    tuple(person.names()),
                    person.date_of_birth,
                    person.nationality,
                )
        return out


def match_entries(
    conn: Connection, keyring: Keyring, entries: list[dict[str, Any]], key: Caller
) -> list[dict[str, Any]]:
    """The list's entries, each with its match: by case id (which must exist and be one
    the caller may see, ``FactError`` naming each that does not), or by name, against
    the cases the caller may see. Run on a snapshot before the write lock is taken: a
    long list takes seconds, and cases are never deleted, so whatever it finds still
    exists when the list is recorded."""
    missing = {}
    matched = [dict(e) for e in entries]
    by_id = [(i, e) for i, e in enumerate(matched) if "case_id" in e]
    ids = [UUID(e["case_id"]) for _, e in by_id]
    hidden = {str(c) for c in access.hidden_among(conn, key, ids)}
    known = _existing_cases(conn, ids) - hidden
    for i, entry in by_id:
        if entry["case_id"] not in known:
            missing[f"entries[{i}].case_id"] = "no such case"
        entry["match"] = {"result": MATCHED, "case_id": entry["case_id"], "by": "case_id"}
    if missing:
        raise FactError(missing)
    named = [e for e in matched if "name" in e]
    results = match_names(
        [NameEntry(e["name"], e.get("date_of_birth"), e.get("nationality")) for e in named],
        RegisterIndex(conn, keyring, None if access.sees_all(key) else key.org),
    )
    for entry, result in zip(named, results, strict=True):
        entry["match"] = result
    return matched


def _existing_cases(conn: Connection, case_ids: list[UUID]) -> set[str]:
    v = tables.case_views
    found: set[str] = set()
    for i in range(0, len(case_ids), CHUNK):
        chunk = case_ids[i : i + CHUNK]
        query = select(v.c.case_id).where(v.c.case_id.in_(chunk))
        found.update(str(c) for c in conn.execute(query).scalars())
    return found
