"""ASGI middleware, outermost first (``api.app`` adds them in this order):

0. ``api.requestid.RequestId``: the request's id, on its answer and its log lines.
1. ``RequestLog``: one log line per request, counted in the metrics (``api.metrics``),
   and the barrier that turns an unexpected error into a problem answer (a storage
   fault into 503/507, anything else into 500).
2. ``api.auth.Authenticate``: the caller's key, checked from the headers alone.
3. ``BodyLimit``: the body, read whole within a size limit and a deadline.
4. ``InFlightLimit`` and 5. ``WriteGate``: the shared slots.

So nothing shared (an in-flight slot, a write slot, a worker thread for the route) is
taken for a caller whose key is unchecked or whose body has not arrived: a slow or
absent body costs its own connection and nothing else.

The log line names the route template (``/cases/{case_id}``, found by matching the path
when the request was refused before routing), never the path as sent and never the
query string: a search for a name must not write the name to the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import requestid
from api.metrics import REFUSALS, Metrics, problem_slug, route_template
from api.problems import fault_response, problem_response
from infrastructure.faults import classify

log = logging.getLogger("casebook.requests")

# Probes for load balancers and monitors: never counted against the in-flight limit.
PROBES = frozenset({"/health", "/ready"})
METRICS = "/metrics"  # refused for load only when its own key has too many in progress
# The connection is closed after these answers: the rest of the body is not awaited.
CLOSE = {"Connection": "close"}


class PerKey:
    """How much of something each key holds at once (requests, bytes), within a cap."""

    def __init__(self, cap: int):
        self.cap = cap
        self.held: Counter[Any] = Counter()

    def take(self, scope: Scope, amount: int = 1) -> Any:
        """The caller's key id, with ``amount`` counted to it, or ``PerKey.FULL`` when
        that would take it past ``cap``."""
        key = (scope.get("state") or {}).get("api_key")
        who = key.id if key is not None else None
        if self.held[who] + amount > self.cap:
            return PerKey.FULL
        self.held[who] += amount
        return who

    def give_back(self, who: Any, amount: int = 1) -> None:
        self.held[who] -= amount
        if not self.held[who]:
            del self.held[who]

    FULL = object()


def too_many(detail: str) -> JSONResponse:
    """A 429 for one key that has too much in progress (others are not held up)."""
    headers = {"Retry-After": "1", **CLOSE}
    return problem_response(429, "too-many-requests", f"{detail}; retry shortly", headers)


class BodyLimit:
    """Read a request's body whole before the app sees it: at most ``limit`` bytes
    (413 beyond, by Content-Length or while reading), within ``deadline`` seconds from
    the first byte asked for (408 beyond). No slot, lock or thread is held while it
    arrives; memory is, until the answer, so it is bounded twice: the bytes of all the
    bodies a process holds (``budget``, reserved by Content-Length or else ``limit``;
    503 beyond), and of those one key holds (``per_key``; 429 beyond), so that one key's
    slow or waiting uploads cannot take the whole budget. Both answers close the
    connection, so an unread body is not read only to be thrown away."""

    def __init__(self, app: ASGIApp, limit: int, deadline: float, budget: int, per_key: int):
        self.app, self.limit, self.deadline = app, limit, deadline
        self.budget, self.per_key = budget, PerKey(per_key)
        self.reserved = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._too_large(scope, receive, send)
            return
        size = self.limit if length is None else int(length)
        who = self.per_key.take(scope, size)
        if who is PerKey.FULL:
            detail = f"this key has {self.per_key.cap} bytes of request bodies in progress"
            await too_many(detail)(scope, receive, send)
            return
        try:
            if self.reserved + size > self.budget:
                refusal = retry_later("overloaded", "too many request bodies in memory", CLOSE)
                await refusal(scope, receive, send)
                return
            self.reserved += size
            try:
                await self._with_body(scope, receive, send)
            finally:
                self.reserved -= size
        finally:
            self.per_key.give_back(who, size)

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                body = await self._read(receive)
        except TimeoutError:
            detail = f"the request body did not arrive within {self.deadline:g} seconds"
            await problem_response(408, "body-timeout", detail, CLOSE)(scope, receive, send)
            return
        if body is None:
            return  # the client went away
        if len(body) > self.limit:
            await self._too_large(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytearray | None:
        """The body, or None if the client disconnected; stops one byte past the limit."""
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            body += message.get("body", b"")
            if len(body) > self.limit or not message.get("more_body", False):
                return body

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.limit} bytes"
        await problem_response(413, "body-too-large", detail, CLOSE)(scope, receive, send)


def retry_later(slug: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A 503 that tells the client when to try again."""
    headers = {"Retry-After": "1", **(headers or {})}
    return problem_response(503, slug, f"{detail}; retry shortly", headers=headers)


class WriteGate:
    """At most ``slots`` writes of this process at a time go on to the thread pool; the
    others wait here, on the event loop, up to ``wait`` seconds, then get a 503.

    Writes are serialised by the register's write lock anyway, so more of them in the
    pool only tie up its threads while they wait, and reads would queue behind them."""

    WRITES = ("POST", "PUT", "PATCH", "DELETE")

    def __init__(self, app: ASGIApp, slots: int, wait: float):
        self.app, self.wait = app, wait
        self.slots = asyncio.Semaphore(slots)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self.WRITES:
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait)
        except TimeoutError:
            refusal = retry_later("busy", "too many writes waiting; nothing was recorded")
            await refusal(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()


class InFlightLimit:
    """Answer 503 with Retry-After, rather than queue without bound, when more than
    ``limit`` requests are in progress in this process, and 429 when one key has
    ``per_key`` of them (a key that leaves its answers unread cannot take every slot).
    The probes (``/health``, ``/ready``) are not counted and never refused: a busy
    instance is still alive; nor is a scrape of ``/metrics`` refused for the others'
    load (only for its own key's): a busy instance is the one to look at."""

    def __init__(self, app: ASGIApp, limit: int, per_key: int):
        self.app, self.limit, self.in_flight = app, limit, 0
        self.per_key = PerKey(per_key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit and scope["path"] != METRICS:
            await retry_later("overloaded", "too many requests in progress")(scope, receive, send)
            return
        who = self.per_key.take(scope)
        if who is PerKey.FULL:
            detail = f"this key has {self.per_key.cap} requests in progress"
            await too_many(detail)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.per_key.give_back(who)


class RequestLog:
    """One JSON line per request: method, route template, status, duration, key name,
    request id (and its count in ``api.metrics``);
    and the barrier that turns an error nobody answered into a problem: a storage
    fault (``infrastructure.faults``) into its 503 or 507, anything else into a 500.
    A client that went away before its answer is logged as 499, not as an error."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: int | None = None
        problem: str | None = None
        gone = False

        async def watch() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def capture(message: Message) -> None:
            nonlocal status, problem
            if message["type"] == "http.response.start":
                status = message["status"]
            elif problem is None and status in REFUSALS:  # the first part of its body
                problem = problem_slug(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, watch, capture)
        except Exception as exc:
            # Answered and logged here, by type only, so that it never reaches
            # Starlette's outermost handler, which re-raises to the server, whose log
            # would print the exception's text: it may quote the data it choked on.
            await self._failed(scope, receive, send, exc, status, gone, start)
            return
        # Nothing was answered only when the client went away first (499, as nginx
        # logs it): the app answers every request it can.
        _done(scope, _line(scope, 499 if status is None else status, start), problem)

    @staticmethod
    async def _failed(
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: Exception,
        status: int | None,
        gone: bool,
        start: float,
    ) -> None:
        if gone or isinstance(exc, ClientDisconnect):
            line = _line(scope, 499, start)
            if not isinstance(exc, ClientDisconnect):  # kept, though nobody was answered
                line = {"error": type(exc).__name__, **line}
            _done(scope, line, None)
            return
        fault = classify(exc)
        if status is not None:  # the answer had started: it cannot be changed now
            line = {"error": type(exc).__name__, **_line(scope, status, start)}
            _done(scope, line, None, logging.ERROR)
            return
        if fault is not None:
            line = {"fault": fault.slug, "error": type(exc).__name__}
            _done(scope, {**line, **_line(scope, fault.status, start)}, fault.slug, logging.WARNING)
            await fault_response(fault)(scope, receive, send)
            return
        line = {"error": type(exc).__name__, **_line(scope, 500, start)}
        _done(scope, line, "internal-error", logging.ERROR)
        response = problem_response(500, "internal-error", "an internal error occurred")
        await response(scope, receive, send)


def _line(scope: Scope, status: int, start: float) -> dict[str, Any]:
    state = scope.get("state") or {}
    return {
        "method": scope.get("method"),
        "route": route_template(scope),
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 2),
        "key": state.get("key_name"),
        "request_id": requestid.current.get(),
    }


def _done(
    scope: Scope, line: dict[str, Any], problem: str | None, level: int = logging.INFO
) -> None:
    """The request's log line, and its count in the metrics (when the app keeps them)."""
    log.log(level, json.dumps(line))
    metrics: Metrics | None = getattr(getattr(scope.get("app"), "state", None), "metrics", None)
    if metrics is not None:
        metrics.observe(scope, line["status"], line["duration_ms"] / 1000, problem)
