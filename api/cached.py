"""A read of the database for callers that must cost little however many they are (the
probes, which need no key, and the metrics' scrape): run in a worker thread, at most
once per ``ttl`` seconds, one at a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from fastapi.concurrency import run_in_threadpool

T = TypeVar("T")


class OneAtATime(Generic[T]):
    """``read()``, its answer kept for ``ttl`` seconds and shared by every caller meanwhile;
    one not answered within ``timeout`` seconds is answered ``failed(None)``, and no other
    is started until it returns (a hung database must not take a thread per caller); one
    that raised is answered ``failed(error)``."""

    def __init__(
        self,
        read: Callable[[], T],
        failed: Callable[[Exception | None], T],
        ttl: float = 1.0,
        timeout: float = 2.0,
    ):
        self.read, self.failed, self.ttl, self.timeout = read, failed, ttl, timeout
        self.lock = asyncio.Lock()
        self.checked_at: float | None = None
        self.result: T | None = None
        self.running: asyncio.Task[T] | None = None

    async def get(self) -> T:
        async with self.lock:  # one read at a time; the others take its answer
            if self.checked_at is None or time.monotonic() - self.checked_at >= self.ttl:
                self.result = await self._check()
                self.checked_at = time.monotonic()
            return self.result  # type: ignore[return-value]

    async def _check(self) -> T:
        if self.running is None or self.running.done():
            self.running = asyncio.create_task(self._in_thread())
        try:
            return await asyncio.wait_for(asyncio.shield(self.running), self.timeout)
        except TimeoutError:
            return self.failed(None)

    async def _in_thread(self) -> T:
        try:
            return await run_in_threadpool(self.read)
        except Exception as e:
            return self.failed(e)
