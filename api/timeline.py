"""A case's history as an auditor reads it at a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def print_timeline(history: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(f"case {history['case_id']}")
    for e in history["events"]:
        mark = f"  [retracted by v{e['retracted_by']}]" if e.get("retracted") else ""
        echo(
            f"v{e['version']:<4} {e['occurred_on'] or '':10}  {e['type']:<22}"
            f" recorded {e['recorded_at'][:19]}Z by {e['recorded_by'].get('key')}"
            f" ({e['recorded_by'].get('org')}){mark}"
        )
        source = e["source"]
        said = ", ".join(str(v) for v in source.values())
        details = ", ".join(f"{k}={v}" for k, v in e["fields"].items())
        echo(f"       source: {said}" + (f"; {details}" if details else ""))
