"""Reports: counts over the status views."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from api.deps import Caller, CasebookDep
from api.schemas import SummaryPublic, problems
from api.timeparams import WhenDep

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/summary", response_model=SummaryPublic, responses=problems(401, 403, 422))
def summary(
    key: Caller,
    casebook: CasebookDep,
    group_by: Literal["status", "held_by", "nationality", "category"] = "status",
    when: WhenDep = None,
) -> dict[str, Any]:
    """How many cases, grouped by status, holding party, nationality or category; with
    as_of and/or known_at, as the register stood then."""
    return casebook.summary(group_by, when)
