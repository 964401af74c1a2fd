"""A search for a common full name: its many namesakes are answered a page at a time,
in order of score then of the register, and every page is the one a search that
opened and scored every candidate would give (``CaseReads._search`` stops opening
candidates once the page is settled)."""

from __future__ import annotations

from typing import Any

from domain.cases import NewPerson, OpenCase
from domain.input import parse_opening
from infrastructure import cases
from infrastructure.keys import KeyStore
from infrastructure.store import Store
from tests.book import Book


def _person(family: str, given: str) -> NewPerson:
    opening = {
        "category": "prisoner_of_war",
        "person": {"family_name": family, "given_names": given, "nationality": "AM"},
        "source": {"kind": "family"},
    }
    return NewPerson(OpenCase(*parse_opening(opening)), ())


def _every_page(book: Book, q: str, key: Any) -> list[tuple[str, float]]:
    found, cursor = [], None
    while True:
        page, cursor = book.list_cases({}, q, 20, cursor, key=key)
        found += [(item["id"], item["match_score"]) for item in page]
        if cursor is None:
            return found


def test_a_common_full_name_is_paged_as_if_every_candidate_were_scored(
    store: Store, monkeypatch: Any
) -> None:
    worker = KeyStore(store.engine).create("worker-1", "case_worker", "org-a")[0]
    spellings = [
        ("Testyan", "Aram"),
        ("Testoyan", "Aram"),
        ("Testyan", "Arame"),
        ("Otheryan", "Aram"),
    ]
    people = [_person(*spellings[i % 4] if i % 3 else spellings[0]) for i in range(240)]
    store.register.open_cases(people, worker)
    book = Book(store)
    lazy = _every_page(book, "Testyan Aram", worker)
    monkeypatch.setattr(cases, "SEARCH_CHUNK", 10_000)  # every candidate scored at once
    whole = _every_page(book, "Testyan Aram", worker)
    assert lazy == whole
    assert len({case_id for case_id, _ in lazy}) == len(lazy)  # no one twice
    exact = [score for _, score in lazy if score == 1.0]
    assert len(exact) > 100 and len(lazy) > len(exact)  # namesakes, then near spellings
    assert [score for _, score in lazy] == sorted((score for _, score in lazy), reverse=True)
