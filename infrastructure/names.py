"""Cross-script matching of personal names: Armenian, Azerbaijani, Russian and English spellings.

One person reaches the register as Գրիգորյան Սեդրակ, Григорян Седрак, Grigoryan Sedrak or
Grigorian Setrak, depending on who wrote the list. Exact comparison misses people, and a person
missed in a negotiation list is a person nobody asks about. So every spelling is reduced in steps:

1. ``normalise``: NFKC, a few script-specific rules, ``unidecode``: readable lower-case ASCII
   (``grigoryan sedrak``); this is what logs and people see.
2. ``_readings``: per name part, unreadable *skeletons* in which letters that scripts and spelling
   traditions swap for each other share one symbol (d/t: Sedrak/Setrak; g/k/q/kh/gh/h:
   Oganesyan/Hovhannisyan; e/i: Ованесян/Hovhannisyan).
3. ``similarity``: ``rapidfuzz`` Levenshtein similarity of the skeletons, part against part, so
   the order of family and given names does not matter.

Each rule was kept only if switching it off alone lowered the scores of one person's spellings,
raised those of different people, or made fewer normalised spellings of one person agree, on
``tests/data/name_variants.tsv``. The exception is the cluster symbols for sh/ch/zh, which only
stop the h rule from inventing a k. ``tests/unit/test_names.py`` prints recall and precision with
all our rules switched off (``rules=False``: NFKC and ``unidecode`` alone).
"""

# This module is about letters of other scripts that look like Latin ones (ո, հ, е, а, ı): they
# are meant, not homoglyphs slipped in by accident.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import combinations, permutations

from rapidfuzz.distance import Levenshtein
from unidecode import unidecode

__all__ = [
    "CANDIDATE_THRESHOLD",
    "MATCH_THRESHOLD",
    "best_similarity",
    "blocking_keys",
    "index_keys",
    "name_parts",
    "normalise",
    "pair_keys",
    "part_keys",
    "search_keys",
    "similarity",
]

MATCH_THRESHOLD: float = 0.86
"""Score at or above which a query finds a name.

Chosen on the labelled set: different people who share a part and differ by one letter in the
other score at most 0.85 (Petrosyan Arsen / Armen, Armen / Arman; Aram / Ara and Mamedov /
Mahmudov 0.81); the hardest spellings of one person score at least 0.875 (Гасымов / Касумов,
Musaev / Moussaev 0.89).
"""

CANDIDATE_THRESHOLD: float = 0.75
"""Lower bound for "possible match" candidates that a person reviews in list matching.

Low enough to show near misses (one letter more wrong than any same-person pair in the labelled
set) to a person, who decides; on that set four in five such candidates are the same person.
"""

_CACHE_SIZE = 1 << 16

# Rules are (regular expression, replacement) pairs applied in order.
_Rules = tuple[tuple[re.Pattern[str], str], ...]


def _compile(*rules: tuple[str, str]) -> _Rules:
    return tuple((re.compile(pattern), replacement) for pattern, replacement in rules)


def _apply(rules: _Rules, text: str) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


# --- normalise ----------------------------------------------------------------------------------

# Rules that need the original script, so they run before unidecode.
_ARMENIAN = _compile(
    ("ու", "u"),  # one vowel, /u/; unidecode spells the two letters "ow"
    ("ռ", "r"),  # trilled r; unidecode's "rh" is in no passport
    ("ւ", "v"),  # left of the ligature և after NFKC (ե + ւ): Gevorg, Levon, Aliyev
    (r"\bե", "ye"),  # word-initial ե is /je/: Yeghiazaryan, Russian Егиазарян
    (r"\bո", "vo"),  # word-initial ո is /vo/: Voskanyan, Russian Восканян
)
_RUSSIAN = _compile(
    ("дж", "j"),  # Джафаров = Jafarov, not Dzhafarov
    ("ю", "yu"),  # unidecode: "iu"; passports and the other scripts: "yu" (Арутюнян)
)
_AZERBAIJANI = _compile(
    ("[əә]", "a"),  # passports write ə as "a": Məmmədov = Mammadov; unidecode gives "@"
    ("ş", "sh"),  # unidecode drops the cedilla and with it the difference to s
    ("ç", "ch"),
    ("x", "kh"),  # Azerbaijani x is /χ/: Xaçatryan = Khachatryan = Хачатрян
    ("q", "g"),  # Qasımov = Gasimov = Гасымов
)
# Azerbaijani c is /dʒ/ (Cəfərov = Jafarov); only where the name shows it is Azerbaijani.
_AZERBAIJANI_MARKERS = frozenset("əәğışçİ")
_AZERBAIJANI_C = re.compile(r"c(?!h)")

# Rules on the ASCII result.
_LATIN = _compile(
    (r"ian\b", "yan"),  # one Armenian suffix: Grigorian = Grigoryan
    (r"([aeiou])(?:ey|y)?ev(a?)\b", r"\1yev\2"),  # Babaev = Babaeyev = Babayev; Aliev = Aliyev
)

_APOSTROPHES = re.compile(r"['`\"\u2018\u2019\u02b9\u02bb\u02bc]")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=_CACHE_SIZE)
def normalise(name: str, *, rules: bool = True) -> str:
    """Return ``name`` as lower-case ASCII Latin words separated by single spaces.

    ``rules=False`` leaves only NFKC, ``unidecode`` and the clean-up of separators; it exists so
    the tests can measure what our own rules add and is not meant for production use.
    Apostrophes and aspiration marks (Khach`atryan, El'chin) are dropped, not turned into spaces,
    in both modes: they never separate two words.
    """
    text = unicodedata.normalize("NFKC", name).lower()
    if rules:
        azerbaijani = not _AZERBAIJANI_MARKERS.isdisjoint(text)
        text = _apply(_AZERBAIJANI, _apply(_RUSSIAN, _apply(_ARMENIAN, text)))
        if azerbaijani:
            text = _AZERBAIJANI_C.sub("j", text)
    text = _APOSTROPHES.sub("", unidecode(text).lower())
    if rules:
        text = _apply(_LATIN, text)
    return _SEPARATORS.sub(" ", text).strip()


@lru_cache(maxsize=_CACHE_SIZE)
def _words(name: str, rules: bool) -> tuple[str, ...]:
    return tuple(word for word in normalise(name, rules=rules).split() if len(word) >= 2)


def name_parts(name: str) -> list[str]:
    """Return the normalised words of ``name``; one-letter words are initials, not identity."""
    return list(_words(name, True))


# --- skeletons ----------------------------------------------------------------------------------

# Consonants that the scripts and spelling traditions swap for each other share one symbol.
# Upper-case letters are symbols for clusters, so later single-letter rules leave them alone.
_CONSONANTS = _compile(
    ("dzh|dj|j", "J"),  # Джафаров / Dzhafarov / Jafarov / Nidjat
    ("c(?!h)", "J"),  # a lone c here is Azerbaijani c without the marks normalise looks for
    ("sh", "S"),  # sh ch zh are single sounds: their h must not become k below
    ("tch|ch", "C"),  # Mkrtchyan / Mkrtchian
    ("zh", "Z"),
    ("ts|tz|dz", "T"),  # Armenian ձ: Hambardzumyan / Амбарцумян
    ("kh|gh|[gkqxh]", "k"),  # Г stands for h (Гасанов) and ğ (Агаев); Western Armenian g/k
    ("b", "p"),  # Western Armenian swaps voiced and voiceless: Bedrosian / Petrosyan
    ("d", "t"),  # Setrak / Sedrak, Vartan / Vardan, Davit / David
    ("[fw]", "v"),
    ("y(?=[aeiou])", ""),  # a glide before a vowel is spelled or not: Ismailov / Ismayilov
    ("y", "i"),
    ("^k", ""),  # Russian drops Armenian initial հ (Арутюнян, Айк) and writes Г (Гайк)
)
# Vowel readings. Russian writes е for Armenian ի (Ованесян / Hovhannisyan), so e reads as i.
# In Azerbaijani family names Russian writes е for ə where passports write a (Аскеров / Asgarov,
# Велиев / Valiyev); given names keep а (Рашад), and Armen and Arman are two names, so reading
# e as a is only tried for family names.
_VOWELS_E_AS_I = str.maketrans("e", "i")
_VOWELS_E_AS_A = str.maketrans("e", "a")
_FAMILY_NAME = re.compile(r"(?:ov|ev)a?$")
_VOWEL_H = re.compile(r"(?<=[aeiou])h(?=[aeiou])")
_REPEATS = re.compile(r"(.)\1+")


def _skeleton(word: str, vowels: dict[int, int]) -> str:
    return _REPEATS.sub(r"\1", _apply(_CONSONANTS, word).translate(vowels))


@lru_cache(maxsize=_CACHE_SIZE)
def _readings(word: str) -> tuple[str, str, str]:
    """Skeletons of one normalised word under each plausible reading, always in the same order.

    A reading that does not apply repeats the plain one, so two words can be compared reading
    by reading.
    """
    plain = _skeleton(word, _VOWELS_E_AS_I)
    family = _skeleton(word, _VOWELS_E_AS_A) if _FAMILY_NAME.search(word) else plain
    # Russian drops Armenian հ between vowels: Sahakyan / Саакян, Vahan / Ваан.
    silent = _VOWEL_H.sub("", word)
    silent_h = _skeleton(silent, _VOWELS_E_AS_I) if silent != word else plain
    return plain, family, silent_h


@lru_cache(maxsize=_CACHE_SIZE)
def _forms(name: str, rules: bool) -> tuple[tuple[str, ...], ...]:
    """Per part, the strings compared: skeleton readings, or the plain words without rules."""
    if not rules:
        return tuple((word,) for word in _words(name, False))
    return tuple(_readings(word) for word in _words(name, True))


# --- scoring ------------------------------------------------------------------------------------

_EXACT_ASSIGNMENT_LIMIT = 5  # parts; beyond that a greedy pairing keeps the cost bounded
_ratio = Levenshtein.normalized_similarity


def _part_similarity(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Best agreement of two parts under a reading both of them allow.

    Levenshtein, not Indel: a letter more is as different as a letter changed (Ara / Aram).
    """
    plain_a, plain_b = a[0], b[0]
    if plain_a == plain_b:
        return 1.0
    score = _ratio(plain_a, plain_b)
    for x, y in zip(a, b, strict=True):
        if x is not plain_a or y is not plain_b:  # readings that apply: skip the plain repeats
            score = max(score, _ratio(x, y))
    return score


def _combine(scores: Sequence[float]) -> float:
    """A name matches when every part matches: the worst part weighs as much as all together.

    Without the minimum a wrong given name (Armen for Arsen) hides behind a right family name.
    """
    return 0.5 * min(scores) + 0.5 * sum(scores) / len(scores)


def _best_pairing(matrix: list[list[float]]) -> float:
    """Best one-to-one pairing of the rows (shorter name) with the columns (longer name)."""
    rows, columns = len(matrix), len(matrix[0])
    if rows == 1:
        return max(matrix[0])
    if columns <= _EXACT_ASSIGNMENT_LIMIT:
        return max(
            _combine([row[column] for row, column in zip(matrix, chosen, strict=False)])
            for chosen in permutations(range(columns), rows)
        )
    free, scores = set(range(columns)), []
    for row in matrix:
        column = max(free, key=row.__getitem__)
        free.discard(column)
        scores.append(row[column])
    return _combine(scores)


def _similarity(a: str, b: str, *, rules: bool = True) -> float:
    """``similarity`` with our rules switchable, for measuring what they add."""
    parts_a, parts_b = _forms(a, rules), _forms(b, rules)
    if not parts_a or not parts_b:
        return 0.0
    if len(parts_a) > len(parts_b):
        parts_a, parts_b = parts_b, parts_a
    return _best_pairing([[_part_similarity(x, y) for y in parts_b] for x in parts_a])


def similarity(a: str, b: str) -> float:
    """Score in [0, 1] of two full names in any scripts; the order of the parts does not matter.

    The name with fewer parts is compared on the parts it has, so a family name alone finds every
    person with that family name, and a patronymic on one side does not prevent a match.
    """
    return _similarity(a, b)


def best_similarity(query: str, names: Iterable[str]) -> float:
    """Score of a query against one person: the best over the person's names and aliases."""
    return max((similarity(query, name) for name in names), default=0.0)


# --- blocking -----------------------------------------------------------------------------------

_BLOCKING_KEY_LENGTH = 3
_VOWELS = re.compile("[aeiou]")
_WEAK_CONSONANTS = re.compile("[kv]")


def blocking_keys(name: str) -> set[str]:
    """Short keys that pre-select candidates from a table before ``similarity`` scores them.

    Per part and reading, the first three consonant symbols of the skeleton (``grigoryan`` ->
    ``rkr``), and again without the velars and v, which one spelling writes and another drops
    (Hovhannisyan / Ованесян / Оганесян all give ``nsn``; Tovmasyan / Tomassian give ``tms``).
    Consonants survive transliteration better than vowels. Two spellings of one name meet when
    any one part agrees. The keys are deliberately lossy: short (at most 4 characters) and
    deterministic, so they block well but do not spell the name.
    """
    return set().union(*part_keys(name))


def index_keys(name: str) -> set[str]:
    """Every key the register's name index holds for one of a person's names: the
    ``blocking_keys`` (list matching, and a search for one word), the ``pair_keys`` and,
    for a name of one part, that part's keys marked as such."""
    parts = part_keys(name)
    keys = set().union(*parts) | _pairs(parts)
    if len(parts) == 1:
        keys |= {_SOLO + k for k in parts[0]}
    return keys


def search_keys(query: str) -> set[str]:
    """The keys a search for ``query`` looks up in the name index.

    A query of one word looks up its ``blocking_keys``: every person with a name part like
    it (a common given name may find many; the answer is paged). A query of several words
    (a full name) looks up its ``pair_keys``, so that it reaches the people whose names
    agree on two parts, a few, not every person who shares one part with it (everyone
    called Armen, everyone called Grigoryan); and, for people known by one name part
    only, whose names the scoring compares on that part, that part's marked keys.
    On the labelled set (``tests/data/name_variants.tsv``) every pair of one person's
    spellings that ``similarity`` matches still meets, and the spellings of different
    people that reach each other fall from 3.8% of pairs to 0.17%
    (``tests/unit/test_names.py``).
    """
    parts = part_keys(query)
    if len(parts) < 2:
        return set().union(*parts)
    return _pairs(parts) | {_SOLO + k for keys in parts for k in keys}


def pair_keys(name: str) -> set[str]:
    """For each two parts of a name, their strong keys (without velars and v, which
    spellings drop and add) joined in order: about one key for a name of two parts."""
    return _pairs(part_keys(name))


def _pairs(keys_of_parts: list[set[str]]) -> set[str]:
    parts = [{k for k in keys if k.startswith("-")} or keys for keys in keys_of_parts]
    return {
        _PAIR + "|".join(sorted((a, b)))
        for i, j in combinations(range(len(parts)), 2)
        for a in parts[i]
        for b in parts[j]
    }


_PAIR, _SOLO = "2:", "1:"  # kinds of key, so that they never meet a part's keys


def part_keys(name: str) -> list[set[str]]:
    """``blocking_keys`` part by part: list matching asks how many parts of a name agree."""
    out = []
    for readings in _forms(name, True):
        keys = set()
        for reading in readings:
            consonants = _REPEATS.sub(r"\1", _VOWELS.sub("", reading)) or reading
            keys.add(consonants[:_BLOCKING_KEY_LENGTH])
            if strong := _WEAK_CONSONANTS.sub("", consonants):
                keys.add("-" + strong[:_BLOCKING_KEY_LENGTH])
        out.append(keys)
    return out
