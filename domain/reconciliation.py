"""The reconciliation of a negotiation: who is on which list, matched or not, agreed,
handed over, refused, absent, and who is still outstanding. A read model beside the
``Negotiation`` aggregate: it reads the aggregate and rows of the status projection,
and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from domain.negotiation import (
    CANDIDATES,
    UNMATCHED,
    Negotiation,
)


@dataclass(frozen=True)
class CaseRow:
    """What the reconciliation needs of a case: from the status projection."""

    case_id: str
    status: str
    held_by: str | None
    nationality: str | None
    disputed: bool


@dataclass(frozen=True)
class HandoverRow:
    """A standing handover fact of a case in one of the negotiation's exchanges."""

    case_id: str
    outcome: str  # handed_over, refused, absent
    exchange_id: str
    occurred_on: date
    from_party: str
    to_party: str
    willingness: str | None
    recorded_at: datetime


IN_CUSTODY = ("held", "hospitalised")


def reconcile(
    negotiation: Negotiation,
    handovers: Iterable[HandoverRow],
    cases: Mapping[str, CaseRow],
) -> dict[str, Any]:
    """Who is where in the negotiation.

    - ``on_every_list``: on the current list of every party; ``only_on``: on one party's
      list and no other's; ``unmatched``: name entries the register has not tied to a
      case (with ``candidates`` when it has some to propose; those entries alone are
      also listed under ``candidates``).
    - ``agreed``: named in an agreement's transfers.
    - ``handed_over``, ``refused``, ``absent``: each person's outcome in the
      negotiation's exchanges: handed over if any standing handover says so, otherwise
      the latest refusal or absence. ``handed_over_without_willingness_check`` flags
      handovers made with no willingness check on record.
    - ``outstanding``: everyone the register has in the custody of one party to the
      negotiation who is a national of another (listed or not), and everyone listed or
      agreed who is still in a party's custody; refused and absent included.

    ``cases`` holds the status of every case named by the negotiation, plus every case
    held by one party who is a national of another; a listed case missing from it (one
    the caller may not see) is left out of every answer.
    """
    parties = negotiation.parties
    listed = negotiation.listed_by()
    visible = {cid for cid in listed if cid in cases}

    def entry(case_id: str, **extra: Any) -> dict[str, Any]:
        row = cases[case_id]
        return {
            "case_id": case_id,
            "status": row.status,
            "held_by": row.held_by,
            "nationality": row.nationality,
            "disputed": row.disputed,
            "listed_by": sorted(listed.get(case_id, ())),
            **extra,
        }

    on_every = sorted(cid for cid in visible if listed[cid] >= set(parties))
    only_on = {
        party: [entry(cid) for cid in sorted(visible) if listed[cid] == {party}]
        for party in parties
    }
    unmatched, candidates = [], []
    for party in parties:
        current = negotiation.current_list(party)
        for i, e in enumerate(current["entries"] if current else ()):
            result = (e.get("match") or {}).get("result")
            if result not in (UNMATCHED, CANDIDATES):
                continue
            item = {
                "party": party,
                "list_version": current["list_version"] if current else None,
                "entry": i,
                "name": e["name"],
            }
            if result == UNMATCHED:
                unmatched.append(item)
            else:  # not tied to a case either: unmatched, with the candidates to look at
                shown = [c for c in e["match"]["candidates"] if c["case_id"] in cases]
                unmatched.append({**item, "candidates": shown})
                candidates.append({**item, "candidates": shown})
    agreed = negotiation.agreed()
    outcomes = _outcomes(handovers)
    by_outcome: dict[str, list[dict[str, Any]]] = {"handed_over": [], "refused": [], "absent": []}
    unchecked = []
    for cid in sorted(outcomes):
        if cid not in cases:
            continue
        h = outcomes[cid]
        by_outcome[h.outcome].append(
            entry(
                cid,
                exchange_id=h.exchange_id,
                occurred_on=h.occurred_on.isoformat(),
                from_party=h.from_party,
                to_party=h.to_party,
            )
        )
        if h.outcome == "handed_over" and h.willingness in (None, "not_checked"):
            unchecked.append(cid)
    outstanding = []
    for cid in sorted(cases):
        row = cases[cid]
        if row.status not in IN_CUSTODY or row.held_by not in parties:
            continue
        other_national = row.nationality in parties and row.nationality != row.held_by
        named = cid in listed or cid in agreed
        if other_national or named:
            why = "national_of_another_party" if other_national else "listed"
            last = outcomes.get(cid)
            extra = {"why": why, "last_outcome": last.outcome if last else None}
            outstanding.append(entry(cid, **extra))
    return {
        "on_every_list": [entry(cid) for cid in on_every],
        "only_on": only_on,
        "unmatched": unmatched,
        "candidates": candidates,
        "agreed": [
            entry(cid, agreement=t["agreement"], from_party=t["from_party"], to_party=t["to_party"])
            for cid, t in sorted(agreed.items())
            if cid in cases
        ],
        **by_outcome,
        "handed_over_without_willingness_check": unchecked,
        "outstanding": outstanding,
        "counts": {
            "listed": len(visible),
            "unmatched": len(unmatched),
            "candidates": len(candidates),
            "agreed": sum(1 for cid in agreed if cid in cases),
            **{k: len(v) for k, v in by_outcome.items()},
            "outstanding": len(outstanding),
        },
    }


def _outcomes(handovers: Iterable[HandoverRow]) -> dict[str, HandoverRow]:
    """Each case's outcome in the negotiation: a standing handover, else the latest."""
    out: dict[str, HandoverRow] = {}
    for h in sorted(handovers, key=lambda h: (h.occurred_on, h.recorded_at)):
        if out.get(h.case_id) is not None and out[h.case_id].outcome == "handed_over":
            continue
        out[h.case_id] = h
    return out
