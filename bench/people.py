"""Invented people for the negotiation benchmarks, and their respellings.

Names are built from syllables: a pool of family names and a smaller pool of given
names per nationality, drawn with falling weights, so that common names repeat (as
Grigoryan and Mammadov do) while most full names are rare. A list names people as the
other side spelled them: ``respell`` turns a register name into the kind of variant
that reaches a negotiation (yan/ian, yev/ev, e/i, d/t, kh/x, doubled letters, order,
Azerbaijani letters, Cyrillic).
"""

# Cyrillic letters that look like Latin ones are meant here (see infrastructure.names).
# ruff: noqa: RUF001

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate, islice
from typing import Any

from domain.case import NewFact
from domain.cases import NewPerson, OpenCase
from domain.identity import Identity
from infrastructure.keys import ApiKey
from infrastructure.store import Store

# Syllables of invented Armenian and Azerbaijani names (Latin passport spellings): a
# name is a first syllable, sometimes a middle one, and a last one, then the suffix.
AM_FAMILY = (
    ("Gri", "Pet", "Sar", "Hov", "Kha", "Mkr", "A", "Ve", "Ha", "Var", "Gas", "Mel", "Ko",
     "Ba", "Ter", "Si", "Ka", "Gha", "Ar", "Ma", "Ye", "Vos", "Ste", "Ge", "Sa", "Da",
     "Na", "Tu", "Ho", "Ava", "Zak", "Mi", "Ohan", "Por", "Ag"),
    ("go", "ro", "ha", "ne", "cha", "ti", "ru", "tyu", "da", "pa", "ko", "gha", "sa",
     "ra", "ma", "nu", "ke", "za", "pe", "vo"),
    ("r", "s", "sis", "tr", "tch", "k", "b", "kel", "lon", "dan", "par", "zar", "kar",
     "tev", "nes", "vor", "tur", "gan", "sam", "bek", "rap", "gov", "nyan", "mik", "sep"),
)  # fmt: skip
AZ_FAMILY = (
    ("Ma", "Mam", "Hu", "Ha", "Ga", "Is", "Ra", "Ka", "Na", "Ba", "Ja", "Va", "As", "Mu",
     "Hey", "Sul", "Al", "Ab", "Gu", "Re", "Ta", "Me", "Kha", "Az", "Ad", "Sa", "Ah",
     "El", "Nov", "Ra", "Be", "Ka", "Zey", "Ib", "Shi"),
    ("ma", "sey", "sa", "hi", "ri", "bi", "gi", "fa", "li", "ga", "da", "ta", "shi",
     "hdi", "la", "ra", "mi", "na", "za", "ya"),
    ("d", "n", "m", "l", "r", "b", "f", "t", "z", "sim", "yil", "him", "rim", "gar",
     "lan", "tan", "bas", "lil", "gul", "dar", "shid", "san", "mad", "hir", "bek"),
)  # fmt: skip
AM_GIVEN = (
    ("Ar", "Ti", "Na", "Da", "Ha", "Se", "Ge", "Le", "Ka", "Va", "A", "Ed", "Ga", "Hra",
     "Mi", "Sa", "Ro", "Su", "Vah", "Ash"),
    ("am", "men", "gran", "rek", "vit", "yk", "drak", "vorg", "von", "ren", "han", "shot",
     "gar", "ant", "sak", "mvel", "bert", "tur", "en", "ik"),
)  # fmt: skip
AZ_GIVEN = (
    ("El", "Ra", "Or", "Vu", "Ni", "Fa", "Tu", "Ka", "Ri", "Sa", "Ja", "Il", "Ay", "Tal",
     "Ru", "Em", "Se", "Ya", "Za", "Ak"),
    ("nur", "shad", "khan", "gar", "jat", "rid", "ral", "mal", "fat", "mir", "vid", "kin",
     "dan", "chin", "eh", "slan", "in", "ymur", "vin", "var"),
)  # fmt: skip

FAMILY_NAMES_PER_NATION = 3000
GIVEN_NAMES_PER_NATION = 150


_CLUMSY = re.compile(r"(.)\1\1|^(.)\2|yanyan|([aeiou])\3(?!$)", re.IGNORECASE)


def _pool(
    rng: random.Random, syllables: Sequence[Sequence[str]], size: int, suffix: Callable[[str], str]
) -> list[str]:
    """``size`` distinct names of a first, sometimes a middle, and a last syllable."""
    first, *middle, last = syllables
    seen: dict[str, None] = {}
    while len(seen) < size:
        parts = [rng.choice(first)]
        if middle and rng.random() < 0.3:
            parts.append(rng.choice(middle[0]))
        parts.append(rng.choice(last))
        name = suffix("".join(parts))
        if not _CLUMSY.search(name):
            seen.setdefault(name, None)
    return list(seen)


def _am_family(root: str) -> str:
    return root + "yan"  # -ian appears only in respellings


def _az_family(root: str, rng: random.Random) -> str:
    if rng.random() < 0.08:
        return root + "li"  # Hasanli
    return root + ("yev" if root[-1] in "aeiou" else "ov")


@dataclass(frozen=True)
class Nation:
    family: list[str]
    given: list[str]
    family_cumulative: list[float]  # cumulative weights, for random.choices
    given_cumulative: list[float]


def _cumulative(n: int, flat: float) -> list[float]:
    """Falling weights, cumulated: the name of rank r is drawn in proportion to
    1 / (r + flat), so a few names are common and most are rare."""
    return list(accumulate(1 / (r + flat) for r in range(n)))


@dataclass(frozen=True)
class Person:
    """One invented person: what the register holds of them."""

    family_name: str
    given_names: str
    nationality: str
    date_of_birth: str | None

    @property
    def name(self) -> str:
        return f"{self.family_name} {self.given_names}"

    def identity(self) -> Identity:
        return Identity(
            family_name=self.family_name,
            given_names=self.given_names,
            nationality=self.nationality,
            date_of_birth=self.date_of_birth,
        )


class Population:
    """Invented Armenian and Azerbaijani people, reproducibly from a seed."""

    def __init__(self, seed: int = 11):
        self.rng = r = random.Random(seed)
        # The commonest family name is about 1% of a nation (as Grigoryan or Mammadov
        # are); given names are fewer and more concentrated.
        family = _cumulative(FAMILY_NAMES_PER_NATION, 20)
        given = _cumulative(GIVEN_NAMES_PER_NATION, 6)
        self.nations = {
            "AM": Nation(
                _pool(r, AM_FAMILY, FAMILY_NAMES_PER_NATION, _am_family),
                _pool(r, AM_GIVEN, GIVEN_NAMES_PER_NATION, str),
                family,
                given,
            ),
            "AZ": Nation(
                _pool(r, AZ_FAMILY, FAMILY_NAMES_PER_NATION, lambda root: _az_family(root, r)),
                _pool(r, AZ_GIVEN, GIVEN_NAMES_PER_NATION, str),
                family,
                given,
            ),
        }

    def person(self, nationality: str, dob_share: float = 0.8) -> Person:
        """Someone of ``nationality``; their date of birth known ``dob_share`` of the time."""
        r, nation = self.rng, self.nations[nationality]
        dob = None
        if r.random() < dob_share:
            dob = (date(1960, 1, 1) + timedelta(days=r.randrange(16000))).isoformat()
        return Person(
            r.choices(nation.family, cum_weights=nation.family_cumulative)[0],
            r.choices(nation.given, cum_weights=nation.given_cumulative)[0],
            nationality,
            dob,
        )

    def people(self, count: int, nationality: str | None = None) -> list[Person]:
        """``count`` people, of one nationality or of both in turn."""
        return list(self.each(count, nationality))

    def each(self, count: int, nationality: str | None = None) -> Iterator[Person]:
        """The same people as ``people`` (from the same seed), one at a time: for
        registers too large to hold every person in memory at once."""
        for i in range(count):
            yield self.person(nationality or ("AM", "AZ")[i % 2])


# ---- respellings ----------------------------------------------------------------------

_Rule = Callable[[str, random.Random], str]


def _sub(pattern: str, replacement: str) -> _Rule:
    compiled = re.compile(pattern)

    def rule(name: str, rng: random.Random) -> str:
        return compiled.sub(replacement, name, count=1)

    return rule


def _swap_vowel(name: str, rng: random.Random) -> str:
    """One e for an i or an i for an e (Hovhannes / Hovhannis, Ованесян)."""
    spots = [i for i, c in enumerate(name) if c in "ei" and i > 0]
    if not spots:
        return name
    i = rng.choice(spots)
    return name[:i] + ("i" if name[i] == "e" else "e") + name[i + 1 :]


def _swap_order(name: str, rng: random.Random) -> str:
    family, _, given = name.partition(" ")
    return f"{given} {family}" if given else name


_AZ_LETTERS = (("sh", "ş"), ("ch", "ç"), ("kh", "x"), ("gh", "ğ"), ("ma", "mə"), ("a", "ə"))


def _azerbaijani(name: str, rng: random.Random) -> str:
    """The name in Azerbaijani Latin letters (Məmmədov, Şahin, Xəlilov)."""
    for latin, letter in _AZ_LETTERS:
        if latin in name.lower():
            return name.replace(latin, letter, 1)
    return name


_CYRILLIC = (
    ("yev", "ев"), ("yan", "ян"), ("ya", "я"), ("yu", "ю"), ("ye", "е"), ("kh", "х"),
    ("gh", "г"), ("sh", "ш"), ("ch", "ч"), ("zh", "ж"), ("ts", "ц"), ("j", "дж"),
    ("a", "а"), ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"), ("z", "з"),
    ("i", "и"), ("y", "й"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"),
    ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "г"),
    ("q", "г"), ("x", "х"), ("c", "ц"),
)  # fmt: skip
_CYRILLIC_RE = re.compile("|".join(re.escape(latin) for latin, _ in _CYRILLIC))
_CYRILLIC_OF = dict(_CYRILLIC)


def _cyrillic(name: str, rng: random.Random) -> str:
    """The name as a Russian list writes it: Григорян Арам, Ованисян (h dropped first)."""
    words = []
    for word in name.lower().split():
        if word.startswith("h") and rng.random() < 0.5:
            word = word[1:]  # Hovhannisyan / Ованнисян
        word = _CYRILLIC_RE.sub(lambda m: _CYRILLIC_OF[m.group(0)], word)
        words.append(word.capitalize())
    return " ".join(words)


RULES: dict[str, _Rule] = {
    "yan/ian": _sub(r"yan\b", "ian"),
    "yev/ev": _sub(r"yev\b", "ev"),
    "ov/off": _sub(r"ov\b", "off"),
    "e/i": _swap_vowel,
    "t/d": _sub(r"t\b", "d"),
    "d/t": _sub(r"d\b", "t"),
    "kh/h": _sub("kh", "h"),
    "gh/g": _sub("gh", "g"),
    "double/single": _sub(r"(\w)\1", r"\1"),
    "j/dzh": _sub("j", "dzh"),
    "order": _swap_order,
    "azerbaijani": _azerbaijani,
}


def respell(name: str, nationality: str, rng: random.Random, cyrillic_share: float = 0.2) -> str:
    """A spelling of ``name`` as another list might give it: one or two variant rules
    that apply, sometimes in Cyrillic; never the name itself."""
    if rng.random() < cyrillic_share:
        out = _cyrillic(name, rng)
    else:
        out = name
        rules = sorted(k for k in RULES if nationality == "AZ" or k != "azerbaijani")
        for key in rng.sample(rules, len(rules)):
            changed = RULES[key](out, rng)
            if changed != out:
                out = changed
                if rng.random() < 0.6:  # one rule, or two
                    break
    return out if out != name else _swap_order(name, rng)


# ---- writing a register quickly -----------------------------------------------------

CATEGORY = "prisoner_of_war"
OPENING_SOURCE = {"kind": "family", "name": "a relative"}


def write_people(
    store: Store,
    key: ApiKey,
    people: Iterable[Person],
    facts: Callable[[int, Person], list[NewFact]] | None = None,
    batch: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> list[uuid.UUID]:
    """Open a case for each person (with ``facts(i, person)`` recorded on it), many cases
    per write, through the register's bulk opening (``Register.open_cases``), as
    ``bench.common.generate`` does. The ids of the cases, in order."""
    ids: list[uuid.UUID] = []
    for written in open_people(store, key, people, facts, batch):
        ids.extend(written)
        if progress is not None:
            progress(len(ids))
    return ids


def open_people(
    store: Store,
    key: ApiKey,
    people: Iterable[Person],
    facts: Callable[[int, Person], list[NewFact]] | None = None,
    batch: int = 2000,
) -> Iterator[list[uuid.UUID]]:
    """``write_people`` a batch at a time: each write's case ids as it is made. Only one
    batch of people and their facts is in memory at a time, so ``people`` may be a
    stream (``Population.each``) of a million."""
    stream = iter(people)
    done = 0
    while chunk := list(islice(stream, batch)):
        batch_of = [
            NewPerson(
                OpenCase(CATEGORY, person.identity(), OPENING_SOURCE),
                tuple(facts(done + n, person)) if facts is not None else (),
            )
            for n, person in enumerate(chunk)
        ]
        written = store.register.open_cases(batch_of, key)
        done += len(chunk)
        yield written


def today() -> date:
    return datetime.now(UTC).date()


def describe(people: Sequence[Person]) -> dict[str, Any]:
    """How varied the names are: distinct family names and full names, and the share of
    people whose full name someone else in the register shares."""
    full: dict[str, int] = {}
    for p in people:
        full[p.name] = full.get(p.name, 0) + 1
    shared = sum(n for n in full.values() if n > 1)
    return {
        "people": len(people),
        "family_names": len({p.family_name for p in people}),
        "full_names": len(full),
        "share_with_namesake": shared / len(people) if people else 0.0,
        "commonest_full_name_count": max(full.values(), default=0),
    }
