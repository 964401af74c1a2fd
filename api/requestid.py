"""A request id on every answer (``X-Request-ID``) and on every log line written while
the request is served, so that an operator can find all that one request did, and a
client can quote the id of an answer it got.

A client's own id is kept when it is a short safe token (``SAFE``: up to 64 of
``A-Z a-z 0-9 . _ -``), so that a proxy's or a caller's id follows the request through;
anything else (longer, or with other characters, which could forge log lines or carry
a name) is replaced by one made here. The id lives in a context variable for the
request's task and every worker thread it hands work to (Starlette's thread pool copies
the context), and a log record factory puts it on every record made meanwhile
(``record.request_id``), whichever logger makes it.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
SAFE = re.compile(rb"[A-Za-z0-9._-]{1,64}")

current: ContextVar[str | None] = ContextVar("casebook_request_id", default=None)


def new_id() -> str:
    return secrets.token_hex(8)


def accepted(value: bytes | None) -> str:
    """The client's id if it is a safe token, else a new one."""
    if value is not None and SAFE.fullmatch(value):
        return value.decode("ascii")
    return new_id()


class RequestId:
    """Outermost middleware: the request's id, in the context while it is served and on
    its answer, whoever answers it (a refusal of the middleware inside included)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v for k, v in scope["headers"] if k.lower() == HEADER), None)
        rid = accepted(sent)
        header = (HEADER, rid.encode("ascii"))

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*kept, header]}
            await send(message)

        token = current.set(rid)
        try:
            await self.app(scope, receive, with_id)
        finally:
            current.reset(token)


def install_record_factory() -> None:
    """Every log record carries ``request_id`` (None outside a request). Installed once
    per process, over whatever factory was there."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "casebook_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current.get()
        return record

    factory.casebook_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class LineFormatter(logging.Formatter):
    """The message, and the request's id: a JSON line (the request log) names it among
    its members itself; any other line made while serving a request ends with
    `` request_id=<id>``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        if rid is None or line.startswith("{"):
            return line
        return f"{line} request_id={rid}"
