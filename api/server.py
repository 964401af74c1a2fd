"""How ``casebook serve`` runs uvicorn, with the limits a hostile network needs.

uvicorn bounds open connections (``limit_concurrency``, beyond which it answers 503)
and idle kept-alive connections (``timeout_keep_alive``), and both are set from the
settings. Its httptools parser bounds neither the time nor the size of a request's
line and headers, so a client could hold a connection for ever by sending a header
byte every few seconds (slowloris), or make the process buffer headers without end.
``GuardedHttpToolsProtocol`` adds both limits: the request line and headers must
arrive within ``CASEBOOK_HEADER_TIMEOUT_SECONDS`` of the connection being opened (or of
the request's first byte on a kept-alive connection), else 408 and the connection is
closed; and hold at most ``CASEBOOK_MAX_HEADER_BYTES``, else 431 and closed. The body
has its own deadline (``api.middleware.BodyLimit``).
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from infrastructure.settings import Settings


@cache
def _limits() -> tuple[float, int]:
    """Read once per worker process (uvicorn starts workers afresh)."""
    settings = Settings()
    return settings.header_timeout_seconds, settings.max_header_bytes


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit on the headers."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes = _limits()
        self.header_timer: asyncio.TimerHandle | None = None
        self.header_bytes = 0
        self.in_headers = False  # a request has begun and its headers are not complete
        self.oversized = False  # sticky: the connection is answered 431 and closed
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        super().data_received(data)
        if self.oversized:
            self._refuse(431, b"Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_bytes, self.in_headers = 0, True
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self.in_headers = False
        if not self.oversized:  # else data_received answers 431 once the parser returns
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not (self.oversized or self.refused):
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not (self.oversized or self.refused):
            super().on_message_complete()

    def _count(self, size: int) -> None:
        self.header_bytes += size
        self.oversized = self.oversized or self.header_bytes > self.max_header_bytes

    def _arm(self) -> None:
        self._disarm()
        self.header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_too_slow(self) -> None:
        """The deadline passed: a request that began is told why; a connection that
        never sent a byte is closed silently."""
        self.header_timer = None
        if self.in_headers:
            self._refuse(408, b"Request Timeout")
        elif (self.cycle is None or self.cycle.response_complete) and not self.refused:
            self.refused = True
            self.transport.close()

    def _refuse(self, status: int, reason: bytes) -> None:
        self.refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        body = reason + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()


def run(
    host: str, port: int, workers: int, settings: Settings, app: str = "api.app:create_app"
) -> None:
    """Start uvicorn on an app factory with the limits above (the benchmark serves its
    bare baseline app the same way)."""
    import uvicorn

    uvicorn.run(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=GuardedHttpToolsProtocol,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_seconds,
        # On SIGTERM, requests in progress get this long to finish; then it stops.
        timeout_graceful_shutdown=30,
        access_log=False,  # its lines carry query strings, so names; ours do not
        log_level="info",
        server_header=False,
    )
