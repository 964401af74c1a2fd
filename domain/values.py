"""Checks shared by every kind of input: dates, codes and text."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

ALPHA2 = re.compile(r"^[A-Z]{2}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_TEXT = 200
MAX_LONG_TEXT = 4000
# Characters that reorder or hide text on a terminal or in a report (bidirectional
# overrides and isolates): never needed in a name or a note, and a way to mislead.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def parse_day(value: object) -> date:
    """A calendar date written YYYY-MM-DD, and nothing else (Python 3.11 would also
    take week dates such as 2021-W01-1)."""
    if not isinstance(value, str) or not DAY.match(value):
        raise ValueError("must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real date YYYY-MM-DD") from None


# Unicode categories never needed in a name or a note: controls (C0, DEL, C1: a
# terminal acts on ESC, BEL, CR...), invisible format characters (zero-width space,
# soft hyphen, word joiner, tags...: a name carrying one is not found by its own
# spelling), lone surrogates (not text; they cannot be stored as UTF-8) and the line
# and paragraph separators (a line break in disguise).
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# The format characters that names do need: the zero-width non-joiner and joiner
# (Persian, Kurdish and Indic spellings) and the implicit direction marks, which cannot
# reorder what follows them the way the overrides and isolates do.
FORMAT_ALLOWED = frozenset("\u200c\u200d\u200e\u200f\u061c")


def check_text(value: str, limit: int = MAX_TEXT, multiline: bool = False) -> str:
    """The one rule for free text: trimmed, not empty, at most ``limit`` characters,
    and without control characters, invisible format characters (but those of
    ``FORMAT_ALLOWED``), bidirectional overrides and isolates, or line separators;
    ``multiline`` text (notes, reasons, purposes) keeps its line breaks and tabs."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters")
    allowed = FORMAT_ALLOWED | ({"\n", "\t"} if multiline else set())
    for ch in value:
        if ch in allowed:
            continue
        if ch in BIDI_CONTROLS or unicodedata.category(ch) in REFUSED_CATEGORIES:
            raise ValueError("must not contain control characters")
    return value
