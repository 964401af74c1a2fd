"""Authentication, before anything else is spent on a request.

``Authenticate`` is middleware, not only a route dependency, so that it runs before the
body is read and before any shared slot is taken (``api.middleware``): a caller without
a valid key is answered 401 from its headers alone, costs one indexed lookup, and holds
nothing while its body trickles in. Every path but the public ones (``PUBLIC`` in
``api.permissions``: the probes and the API docs) needs a key, unknown paths included,
so that the route map is not shown to callers without one. The route dependency
``api.deps.get_key`` then only reads what was checked here.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from api.permissions import PUBLIC
from api.problems import problem_response
from infrastructure.faults import StoreBusy
from infrastructure.keys import ApiKey

CHALLENGE = {"WWW-Authenticate": "Bearer", "Connection": "close"}


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return (token.strip() or None) if scheme.lower() == "bearer" else None
    return None


# Worker threads that key checks may use at once (PostgreSQL), and how many more may
# wait for one before the service answers 503: a flood of requests with made-up keys
# cannot take the threads and connections that callers with valid keys need.
KEY_CHECK_THREADS = 4
KEY_CHECKS_WAITING = 256


async def authenticate(scope: Scope, token: str) -> ApiKey | None:
    """The valid key with this secret. On SQLite it is looked up right here, on the
    event loop, on a connection of its own (``Store.key_engine``): a WAL read never
    waits for a writer and takes a fraction of a millisecond, less than the hop to a
    worker thread. Elsewhere (a database across the network) it goes to at most
    ``KEY_CHECK_THREADS`` worker threads."""
    state = scope["app"].state
    if state.store.dialect == "sqlite":
        key: ApiKey | None = state.keys.authenticate(token)
        return key
    limiter: anyio.CapacityLimiter = state.key_checks
    if limiter.statistics().tasks_waiting >= KEY_CHECKS_WAITING:
        raise StoreBusy()
    return await anyio.to_thread.run_sync(state.keys.authenticate, token, limiter=limiter)


class Authenticate:
    """401 for every non-public request without a valid key; the key, for the routes."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in PUBLIC:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        key = await authenticate(scope, token) if token else None
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
