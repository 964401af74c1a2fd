"""A case's history for auditors: every event in order, with its link in the hash chain,
what retracted it, and the negotiation and exchange ids the caller may not see withheld.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Set as AbstractSet
from typing import Any

from domain.facts import Fact
from domain.state import retracted_versions

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TALK_FIELDS = ("negotiation_id", "exchange_id")


def talks_named(facts: list[Fact]) -> set[str]:
    """The negotiation and exchange ids a case's facts name: a handover's fields, and a
    confirmed match's source ("list of negotiation <id>")."""
    named = {str(f.get(k)) for f in facts for k in TALK_FIELDS if f.get(k)}
    for f in facts:
        named.update(_UUID.findall(str(f.source.get("reference") or "")))
    return named


def history_of(
    case_id: uuid.UUID,
    facts: list[Fact],
    hashes: dict[int, str],
    withheld: AbstractSet[str] = frozenset(),
) -> dict[str, Any]:
    """A case's history for auditors: every event, oldest first, with its link hash and,
    for a retracted one, the retraction that stands against it. The negotiation and
    exchange ids in ``withheld`` (the caller may not see them) read "withheld"."""
    undone = retracted_versions(facts)
    retracted_by = {
        f.get("version"): f.version
        for f in facts
        if f.type == "retracted" and f.version not in undone
    }
    return {
        "case_id": str(case_id),
        "events": [
            {
                **_withholding(_history_entry(f, undone, retracted_by), withheld),
                "hash": hashes.get(f.version),
            }
            for f in facts
        ],
    }


def _withholding(entry: dict[str, Any], withheld: AbstractSet[str]) -> dict[str, Any]:
    if not withheld:
        return entry
    fields = {
        k: "withheld" if k in TALK_FIELDS and str(v) in withheld else v
        for k, v in entry["fields"].items()
    }
    source = dict(entry["source"])
    if source.get("reference"):
        source["reference"] = _UUID.sub(
            lambda m: "withheld" if m.group(0) in withheld else m.group(0), source["reference"]
        )
    return {**entry, "fields": fields, "source": source}


def _history_entry(fact: Fact, undone: set[int], retracted_by: dict[int, int]) -> dict[str, Any]:
    fields: dict[str, Any] = dict(fact.data)
    if fact.person is not None:
        fields.update(fact.person.to_dict())
    entry = {
        "version": fact.version,
        "type": fact.type,
        "occurred_on": fact.occurred_on.isoformat(),
        "recorded_at": fact.recorded_at.isoformat(),
        "recorded_by": fact.recorded_by,
        "source": fact.source,
        "fields": fields,
        "retracted": fact.version in undone,
    }
    if fact.version in retracted_by:
        entry["retracted_by"] = retracted_by[fact.version]
    return entry
