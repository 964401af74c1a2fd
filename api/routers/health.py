"""The probes: they answer without a key, for load balancers and monitors, and are
never refused for load (``api.middleware.InFlightLimit``)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from api.problems import Problem
from api.schemas import Health, Ready, problems
from infrastructure.faults import classify
from infrastructure.readiness import unready
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
    """The service can serve: its database answers a read and accepts writes, and a
    SQLite register's disk has room. Otherwise 503, saying what is missing."""
    missing = await request.app.state.readiness.missing()
    if missing is not None:
        raise Problem(503, "not-ready", missing, headers={"Retry-After": "1"})
    return {"status": "ready"}


class Readiness:
    """``readiness.unready``, checked at most once per ``ttl`` seconds whatever the number
    of probes (they need no key, so they must cost little), in one worker thread at a
    time: a check that has not returned after ``timeout`` seconds is answered as not
    ready, and no other is started until it returns (a hung database must not take a
    thread per probe)."""

    def __init__(self, store: Store, ttl: float = 1.0, timeout: float = 2.0):
        self.store, self.ttl, self.timeout = store, ttl, timeout
        self.lock = asyncio.Lock()
        self.checked_at: float | None = None
        self.result: str | None = None
        self.running: asyncio.Task[str | None] | None = None

    async def missing(self) -> str | None:
        """None when ready, else what is missing."""
        async with self.lock:  # one check at a time; the others take its answer
            if self.checked_at is None or time.monotonic() - self.checked_at >= self.ttl:
                self.result = await self._check()
                self.checked_at = time.monotonic()
            return self.result

    async def _check(self) -> str | None:
        if self.running is None or self.running.done():
            self.running = asyncio.create_task(self._in_thread())
        try:
            return await asyncio.wait_for(asyncio.shield(self.running), self.timeout)
        except TimeoutError:
            return f"the database did not answer within {self.timeout:g} seconds"

    async def _in_thread(self) -> str | None:
        try:
            return await run_in_threadpool(unready, self.store)
        except Exception as e:
            fault = classify(e)
            return f"the database cannot be used ({fault.slug if fault else type(e).__name__})"
