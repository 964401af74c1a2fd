"""Audit: verification of the hash chain over the whole log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Auditor, CasebookDep

router = APIRouter(prefix="/audit", tags=["audit"])


class VerificationPublic(BaseModel):
    ok: bool
    events: int
    head: str
    first_broken_position: int | None = None
    problem: str | None = None


@router.get("/verify", response_model=VerificationPublic, response_model_exclude_none=True)
def verify(key: Auditor, casebook: CasebookDep) -> dict[str, Any]:
    """Check the whole log's hash chain; ok false names the first broken position."""
    return casebook.verify().as_dict()
