"""ASGI middleware: the body size limit and the one log line per request.

The log line names the route template (``/cases/{case_id}``), never the path as sent
and never the query string: a search for a name must not write the name to the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response

log = logging.getLogger("casebook.requests")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, by Content-Length or, for a chunked
    body, by reading it (at most ``limit`` + 1 bytes are ever held) before the app."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "body-too-large", f"the request body is larger than {self.limit} bytes"
        )
        await response(scope, receive, send)


def retry_later(slug: str, detail: str) -> JSONResponse:
    """A 503 that tells the client when to try again."""
    return problem_response(503, slug, f"{detail}; retry shortly", headers={"Retry-After": "1"})


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
    ``limit`` requests are in progress in this process."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit, self.in_flight = app, limit, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await retry_later("overloaded", "too many requests in progress")(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class RequestLog:
    """One JSON line per request: method, route template, status, duration, key name;
    and the barrier that turns any unexpected error into a 500 problem."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            # Answered and logged here, by type only, so that it never reaches
            # Starlette's outermost handler, which re-raises to the server, whose log
            # would print the exception's text: it may quote the data it choked on.
            log.error(json.dumps({"error": type(exc).__name__, **_line(scope, 500, start)}))
            if status == 500:  # nothing sent yet
                response = problem_response(500, "internal-error", "an internal error occurred")
                await response(scope, receive, send)
            return
        log.info(json.dumps(_line(scope, status, start)))


def _line(scope: Scope, status: int, start: float) -> dict[str, Any]:
    route = scope.get("route")
    state = scope.get("state") or {}
    return {
        "method": scope.get("method"),
        "route": getattr(route, "path", None) or "(unmatched)",
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 2),
        "key": state.get("key_name"),
    }
