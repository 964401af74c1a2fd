"""Health: answers without a key, for load balancers and monitors."""

from __future__ import annotations

from fastapi import APIRouter

from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
@router.head("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """The service is up."""
    return {"status": "ok"}
