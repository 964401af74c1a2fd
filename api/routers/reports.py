"""Reports: counts over the status views."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from api.deps import Caller, CasesDep, StoreDep
from api.schemas import SummaryPublic, problems
from api.timeparams import WhenDep
from infrastructure.reports import report

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/summary", response_model=SummaryPublic, responses=problems(401, 403, 422))
def summary(
    key: Caller,
    cases: CasesDep,
    store: StoreDep,
    group_by: Literal["status", "held_by", "nationality", "category"] = "status",
    when: WhenDep = None,
) -> dict[str, Any]:
    """How many cases, grouped by status, holding party, nationality or category; the
    exchanges per party and direction (handed over, refused, absent); and the persons
    returned per negotiation; of the cases the caller may see (auditors: all). With
    as_of and/or known_at, as the register stood then."""
    out = cases.summary(group_by, when, key)
    as_of, known_at = (when.as_of, when.known_at) if when else (None, None)
    out.update(report(store, as_of, known_at, key))
    return out
