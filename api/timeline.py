"""A case's history as an auditor reads it at a terminal, and the escaping of anything
printed there.

Whatever came from the register is passed through ``printable`` before it reaches a
terminal: a control character (ESC, BEL, CR...), a bidirectional control or a line
separator in a stored value (recorded before the API refused them, or written into the
database behind its back) is printed as its escape (``\\x1b``, ``\\u202e``), so that
data cannot retitle the window, clear the screen, move the cursor, overwrite a line
such as "all events verified", or reorder what an auditor reads.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from domain.values import BIDI_CONTROLS, REFUSED_CATEGORIES

# Printed as escapes: everything of the text rule's refused categories, even the format
# characters names may carry (an invisible joiner is better seen, on a terminal).
_ESCAPED_CATEGORIES = REFUSED_CATEGORIES


def printable(value: object) -> str:
    """``value`` as text that is safe to print on a terminal (see the module)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in BIDI_CONTROLS or unicodedata.category(ch) in _ESCAPED_CATEGORIES:
        return ch.encode("unicode_escape").decode("ascii")
    return ch


def print_timeline(history: dict[str, Any], echo: Callable[[str], None]) -> None:
    p = printable
    echo(f"case {p(history['case_id'])}")
    for e in history["events"]:
        mark = f"  [retracted by v{p(e['retracted_by'])}]" if e.get("retracted") else ""
        by = e["recorded_by"]
        echo(
            f"v{e['version']:<4} {p(e['occurred_on'] or ''):10}  {p(e['type']):<22}"
            f" recorded {p(e['recorded_at'][:19])}Z by {p(by.get('key'))}"
            f" ({p(by.get('org'))}){mark}"
        )
        said = ", ".join(p(v) for v in e["source"].values())
        details = ", ".join(f"{p(k)}={p(v)}" for k, v in e["fields"].items())
        echo(f"       source: {said}" + (f"; {details}" if details else ""))
