"""The probes: they answer without a key, for load balancers and monitors, and are
never refused for load (``api.middleware.InFlightLimit``)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.cached import OneAtATime
from api.problems import Problem
from api.schemas import Health, Ready, problems
from infrastructure.faults import classify
from infrastructure.readiness import Missing, unready
from infrastructure.store import Store

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
@router.head("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """The process is up (it does not look at the database: see /ready)."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready, responses=problems((503, "what is missing")))
@router.head("/ready", include_in_schema=False)
async def ready(request: Request) -> dict[str, str]:
    """The service can serve: its database answers a read and accepts writes, the schema
    is current and owes no views rebuild, the chain's head is readable, the master key
    opens the register's keys and a signing key is loaded, and a SQLite register's disk
    has room. Otherwise 503, saying what is missing (``missing``: their codes)."""
    missing = await request.app.state.readiness.missing()
    if missing:
        detail = "; ".join(m.detail for m in missing)
        what = [m.what for m in missing]
        raise Problem(503, "not-ready", detail, headers={"Retry-After": "1"}, missing=what)
    return {"status": "ready"}


class Readiness:
    """``readiness.unready``, checked at most once per ``ttl`` seconds whatever the number
    of probes (they need no key, so they must cost little), in one worker thread at a
    time: a check that has not returned after ``timeout`` seconds is answered as not
    ready, and no other is started until it returns (a hung database must not take a
    thread per probe)."""

    def __init__(self, store: Store, ttl: float = 1.0, timeout: float = 2.0):
        self.store, self.timeout = store, timeout
        self.check = OneAtATime(lambda: unready(store), self._failed, ttl, timeout)

    async def missing(self) -> list[Missing]:
        """Empty when ready, else what is missing."""
        return await self.check.get()

    def _failed(self, error: Exception | None) -> list[Missing]:
        if error is None:
            detail = f"the database did not answer within {self.timeout:g} seconds"
            return [Missing("database", detail)]
        fault = classify(error)
        slug = fault.slug if fault else type(error).__name__
        return [Missing("database", f"the database cannot be used ({slug})")]
