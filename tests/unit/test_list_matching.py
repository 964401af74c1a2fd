"""Matching a negotiation list against the register, measured on the labelled spelling set.

The register holds one person per labelled group (under one of the group's spellings); the
list names every person again under each of the group's other spellings. Run with ``-s`` to
see recall, candidate recall, precision and the number of names left unmatched.

All people are invented (see ``tests/data/name_variants.tsv``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import pytest

from infrastructure.matching import NameEntry, Person, match_names
from infrastructure.names import blocking_keys
from tests.unit.test_names import Spelling, spellings


class MemoryIndex:
    """A register in a list: the key table is ``blocking_keys`` of every name of every
    person, as the register stores it."""

    def __init__(self, people: Iterable[Person]):
        self._people = {p.case_id: p for p in people}
        self._keys: dict[str, set[str]] = defaultdict(set)
        for person in self._people.values():
            for name in person.names:
                for key in blocking_keys(name):
                    self._keys[key].add(person.case_id)

    def cases_by_key(self, keys: Iterable[str]) -> Mapping[str, Iterable[str]]:
        return {k: sorted(self._keys[k]) for k in keys if k in self._keys}

    def people(self, case_ids: Iterable[str]) -> Mapping[str, Person]:
        return {c: self._people[c] for c in case_ids if c in self._people}


def case_of(group: str) -> str:
    return f"case-{group}"


def groups() -> dict[str, list[Spelling]]:
    out: dict[str, list[Spelling]] = defaultdict(list)
    for row in spellings():
        out[row.group].append(row)
    return dict(out)


# How the register spells each person: a function of (the group's spellings, round).
Choice = Callable[[list[Spelling], int], Spelling]


def first_latin(rows: list[Spelling], _: int) -> Spelling:
    return next((r for r in rows if r.script == "lat"), rows[0])


def in_turn(rows: list[Spelling], round_: int) -> Spelling:
    return rows[round_ % len(rows)]


@dataclass(frozen=True)
class ListQuality:
    entries: int
    recall: float  # matched to the right case
    candidate_recall: float  # right case matched, or among the candidates
    precision: float  # matched results that are the right case
    unmatched: int
    wrong: tuple[str, ...]  # spellings matched to the wrong case, or missed entirely

    def __str__(self) -> str:
        return (
            f"{self.entries} list names: recall {self.recall:.3f}, "
            f"candidate recall {self.candidate_recall:.3f}, precision {self.precision:.3f}, "
            f"unmatched {self.unmatched}"
        )


def labelled_register(choice: Choice, round_: int = 0) -> tuple[list[Person], list[Spelling]]:
    """One person per group in the register, and a list of the groups' other spellings.

    Every group is in the register in every round (the namesakes are what makes matching
    hard); a group is on the list only in the rounds in which its register spelling is new,
    so that with ``in_turn`` each spelling is the register's exactly once."""
    register, listed = [], []
    for group, rows in groups().items():
        chosen = choice(rows, round_)
        register.append(Person(case_of(group), (chosen.name,), None, None))
        if round_ < len(rows):
            listed.extend(r for r in rows if r is not chosen)
    return register, listed


@cache
def measured(choice: Choice, rounds: int) -> ListQuality:
    entries = right = found = matched = unmatched = 0
    wrong = []
    for round_ in range(rounds):
        register, listed = labelled_register(choice, round_)
        results = match_names([NameEntry(s.name) for s in listed], MemoryIndex(register))
        for spelling, result in zip(listed, results, strict=True):
            expected = case_of(spelling.group)
            entries += 1
            if result["result"] == "matched":
                matched += 1
                right += result["case_id"] == expected
                found += result["case_id"] == expected
                if result["case_id"] != expected:
                    wrong.append(f"{spelling.name} -> {result['case_id']}")
            elif result["result"] == "candidates":
                if any(c["case_id"] == expected for c in result["candidates"]):
                    found += 1
                else:
                    wrong.append(f"{spelling.name}: not among candidates")
            else:
                unmatched += 1
                wrong.append(f"{spelling.name}: unmatched")
    return ListQuality(
        entries=entries,
        recall=right / entries,
        candidate_recall=found / entries,
        precision=right / matched if matched else 1.0,
        unmatched=unmatched,
        wrong=tuple(wrong),
    )


# --- measured quality ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "rounds"),
    [(first_latin, 1), (in_turn, max(len(rows) for rows in groups().values()))],
    ids=["register-spells-latin", "register-spells-each-spelling-in-turn"],
)
def test_list_matching_finds_the_right_person_and_rarely_the_wrong_one(
    choice: Choice, rounds: int
) -> None:
    quality = measured(choice, rounds)
    print(f"\nlist matching ({choice.__name__}, {rounds} round(s)): {quality}")
    if quality.wrong:
        print("  not found or wrong: " + "; ".join(quality.wrong[:20]))
    assert quality.entries >= 150, "the list is too short to measure anything"
    # A wrong automatic match ties a list name to someone else: the person named goes
    # unasked for. Precision matters most.
    assert quality.precision >= 0.95, str(quality)
    # The case worker must at least see the right person for nearly every name.
    assert quality.candidate_recall >= 0.95, str(quality)
    # And most names should not need a case worker at all.
    assert quality.recall >= 0.90, str(quality)
    assert quality.unmatched <= 0.02 * quality.entries, str(quality)


# --- single decisions ----------------------------------------------------------------------------


def one(entry: NameEntry, *people: Person) -> dict:
    [result] = match_names([entry], MemoryIndex(people))
    return result


def test_a_date_of_birth_that_differs_prevents_an_automatic_match() -> None:
    sedrak = Person("case-1", ("Grigoryan Sedrak",), "1990-01-01", "AM")
    assert one(NameEntry("Григорян Седрак", "1990-01-01"), sedrak)["result"] == "matched"
    assert one(NameEntry("Григорян Седрак"), sedrak)["result"] == "matched"
    result = one(NameEntry("Григорян Седрак", "1991-02-02"), sedrak)
    assert result["result"] == "candidates"
    [candidate] = result["candidates"]
    assert candidate["case_id"] == "case-1"
    assert candidate["date_of_birth"] == "differs"


def test_a_nationality_that_differs_prevents_an_automatic_match() -> None:
    sedrak = Person("case-1", ("Grigoryan Sedrak",), None, "AM")
    result = one(NameEntry("Grigorian Setrak", nationality="AZ"), sedrak)
    assert result["result"] == "candidates"
    assert result["candidates"][0]["nationality"] == "differs"


def test_an_unknown_date_of_birth_in_the_register_does_not_prevent_a_match() -> None:
    sedrak = Person("case-1", ("Grigoryan Sedrak",), "unknown", None)
    assert one(NameEntry("Grigorian Setrak", "1990-01-01"), sedrak) == {
        "result": "matched",
        "case_id": "case-1",
        "score": 1.0,
    }


NAMESAKE_A = Person("case-a", ("Grigoryan Sedrak",), "1990-01-01", "AM")
NAMESAKE_B = Person("case-b", ("Григорян Седрак",), "1985-05-05", "AM")
NAMESAKE_UNKNOWN = Person("case-u", ("Grigoryan Sedrak",), None, "AM")


def candidate_ids(result: dict) -> set[str]:
    assert result["result"] == "candidates", result
    return {c["case_id"] for c in result["candidates"]}


def test_two_people_of_the_same_name_give_candidates_without_a_date_of_birth() -> None:
    result = one(NameEntry("Grigorian Setrak"), NAMESAKE_A, NAMESAKE_B)
    assert candidate_ids(result) == {"case-a", "case-b"}


def test_two_people_of_the_same_name_give_candidates_when_neither_was_born_that_day() -> None:
    result = one(NameEntry("Grigorian Setrak", "1970-01-01"), NAMESAKE_A, NAMESAKE_B)
    assert candidate_ids(result) == {"case-a", "case-b"}


def test_of_two_namesakes_the_one_born_on_the_listed_date_is_matched_if_the_other_is_unknown():
    result = one(NameEntry("Grigorian Setrak", "1990-01-01"), NAMESAKE_A, NAMESAKE_UNKNOWN)
    assert result["result"] == "matched"
    assert result["case_id"] == "case-a"


def test_of_two_namesakes_the_one_born_on_the_listed_date_is_matched() -> None:
    result = one(NameEntry("Grigorian Setrak", "1985-05-05"), NAMESAKE_A, NAMESAKE_B)
    assert result["result"] == "matched", result
    assert result["case_id"] == "case-b"


def labelled_index() -> MemoryIndex:
    register, _ = labelled_register(first_latin)
    return MemoryIndex(register)


def test_a_name_nobody_resembles_is_unmatched() -> None:
    index = labelled_index()
    for name in ("Okonkwo Chidi", "Lindqvist Olof", "Ямамото Кэндзи"):
        [result] = match_names([NameEntry(name)], index)
        assert result == {"result": "unmatched"}, (name, result)


def test_a_family_name_alone_shared_by_several_people_gives_candidates_not_a_match() -> None:
    index = labelled_index()
    petrosyan, tovmasyan = match_names([NameEntry("Петросян"), NameEntry("Tovmasian")], index)
    # Petrosyan Arsen, Petrosyan Armen and Petrosyan Arman; Tovmasyan Aram and Tovmasyan Ara.
    assert candidate_ids(petrosyan) == {case_of("g08"), case_of("g09"), case_of("g48")}
    assert candidate_ids(tovmasyan) == {case_of("g53"), case_of("g55")}


def test_results_come_back_in_the_order_of_the_list() -> None:
    index = labelled_index()
    names: Sequence[str] = ("Petrossian Arsen", "Okonkwo Chidi", "Хачатрян Тигран")
    results = match_names([NameEntry(n) for n in names], index)
    assert [r["result"] for r in results] == ["matched", "unmatched", "matched"]
    assert [r.get("case_id") for r in results] == [case_of("g08"), None, case_of("g05")]
