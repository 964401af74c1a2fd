"""Authentication, before anything else is spent on a request.

``Authenticate`` is middleware, not only a route dependency, so that it runs before the
body is read and before any shared slot is taken (``api.middleware``): a caller without
a valid key is answered 401 from its headers alone, costs one indexed lookup (``KeyCheck``),
and holds nothing while its body trickles in. Every path but the public ones (``PUBLIC`` in
``api.permissions``: the probes and the API docs) needs a key, unknown paths included,
so that the route map is not shown to callers without one. The route dependency
``api.deps.get_key`` then only reads what was checked here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from api.permissions import PUBLIC
from api.problems import problem_response
from infrastructure.faults import StoreBusy
from infrastructure.keys import ApiKey, KeyStore, hash_key

CHALLENGE = {"WWW-Authenticate": "Bearer", "Connection": "close"}


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return (token.strip() or None) if scheme.lower() == "bearer" else None
    return None


# Worker threads that lookups of keys not yet known may use at once (PostgreSQL), and
# how many more may wait for one before the service answers 503: a flood of requests
# with made-up keys cannot take the threads and connections that others need.
KEY_CHECK_THREADS = 4
KEY_CHECKS_WAITING = 256


class KeyCheck:
    """The valid key with a secret, remembered once found, so that a caller with a
    valid key costs no key lookup, and a flood of made-up keys (which queue for at most
    ``KEY_CHECK_THREADS`` threads) does not hold it up.

    Revocation still takes effect on the next request: every request first waits for a
    count of revoked keys (``KeyStore.revocations``) read after it arrived, and a count
    that changed forgets every remembered key. On PostgreSQL one such read serves every
    request that arrived while the previous one ran (one round trip, however many
    callers); on SQLite it is a read of a fraction of a millisecond on the event loop.
    Expiry is checked on the remembered key itself."""

    def __init__(self, keys: KeyStore, on_loop: bool, limiter: anyio.CapacityLimiter):
        self.keys, self.on_loop, self.limiter = keys, on_loop, limiter
        self.known: dict[str, ApiKey] = {}
        self.revoked: int | None = None
        self.reading: asyncio.Future[int] | None = None  # the count being read
        self.next: asyncio.Future[int] | None = None  # the read after it

    async def key(self, token: str) -> ApiKey | None:
        await self._revocations()
        digest = hash_key(token)
        known = self.known.get(digest)
        if known is not None and known.is_valid(datetime.now(UTC)):
            return known
        seen = self.revoked
        key = await self._lookup(token)
        # Remembered only if no revocation was seen while it was looked up: a lookup
        # that read the row before a revocation committed must not outlive it.
        if key is not None and self.revoked == seen:
            self.known[digest] = key
        return key

    async def _revocations(self) -> None:
        if self.on_loop:
            count = self.keys.revocations()
        else:
            if self.next is None:  # join the first read that starts after now
                self.next = asyncio.get_running_loop().create_future()
            waiting = self.next
            if self.reading is None:
                self._start()
            count = await asyncio.shield(waiting)
        if count != self.revoked:
            self.known.clear()
            self.revoked = count

    def _start(self) -> None:
        self.reading, self.next = self.next, None
        task = asyncio.ensure_future(anyio.to_thread.run_sync(self.keys.revocations))
        task.add_done_callback(self._read)

    def _read(self, task: asyncio.Future[int]) -> None:
        reading, self.reading = self.reading, None
        assert reading is not None
        if task.cancelled():  # the service is stopping
            reading.cancel()
        elif task.exception() is not None:
            reading.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            reading.set_result(task.result())
        if self.next is not None:  # callers arrived meanwhile: read again for them
            self._start()

    async def _lookup(self, token: str) -> ApiKey | None:
        if self.on_loop:
            return self.keys.authenticate(token)
        if self.limiter.statistics().tasks_waiting >= KEY_CHECKS_WAITING:
            raise KeyChecksFlooded()
        return await anyio.to_thread.run_sync(self.keys.authenticate, token, limiter=self.limiter)


class KeyChecksFlooded(StoreBusy):
    detail = "too many requests with keys not seen before are waiting; nothing was done"


class Authenticate:
    """401 for every non-public request without a valid key; the key, for the routes."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in PUBLIC:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        check: KeyCheck = scope["app"].state.key_check
        key = await check.key(token) if token else None
        if key is None:
            refusal = problem_response(
                401,
                "not-authenticated",
                "send a valid API key as 'Authorization: Bearer <key>'",
                headers=CHALLENGE,
            )
            await refusal(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["api_key"], state["key_name"] = key, key.name  # the name for the log line
        await self.app(scope, receive, send)
