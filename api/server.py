"""How ``casebook serve`` runs uvicorn, with the limits a hostile network needs.

uvicorn bounds open connections (``limit_concurrency``) and idle kept-alive
connections (``timeout_keep_alive``), and both are set from the settings; beyond the
first, a request is answered 503 with ``Retry-After: 1`` here (uvicorn's own 503 has
none), and the connection closed. Every refusal written here (503, 408, 411, 431)
carries an ``X-Request-ID`` like the app's. Its httptools parser bounds neither the
time nor the size of a request's line and headers, so a client could hold a connection
for ever by sending a header byte every few seconds (slowloris), or make the process
buffer headers without end.
``GuardedHttpToolsProtocol`` adds both limits: the request line and headers must
arrive within ``CASEBOOK_HEADER_TIMEOUT_SECONDS`` of the connection being opened, of
the request's first byte, or of the previous answer's end on a kept-alive connection,
else 408 and the connection is closed; and hold at most ``CASEBOOK_MAX_HEADER_BYTES``,
else 431 and closed. A body must declare its length (``Content-Length``; a chunked
one is refused with 411), and has its own deadline (``api.middleware.BodyLimit``).
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.metrics import MULTIPROCESS, workers_folder
from api.requestid import new_id
from infrastructure.settings import Settings


@cache
def _limits() -> tuple[float, int, float]:
    """Read once per worker process (uvicorn starts workers afresh)."""
    settings = Settings()
    return (
        settings.header_timeout_seconds,
        settings.max_header_bytes,
        settings.send_timeout_seconds,
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size limit on the headers.

    Bytes reach the parser in slices whose meaning is known: while a connection is
    *awaiting headers* (from when it opens, and again once a request's body has been
    read whole), at most ``max_header_bytes`` of them, so that a header that never ends
    is stopped at the limit rather than buffered whole; while a body is read, exactly
    the ``Content-Length`` it declared, so that a request pipelined behind a body is
    counted too. Bodies must declare their length: a ``Transfer-Encoding`` (chunked,
    whose trailers would be headers outside any limit) is refused with 411. A deadline
    runs while headers are awaited: from the connection's opening, from a request's
    first byte and from each answer's end (so that blank lines or a body trickling in
    after the answer cannot keep a connection open). A refusal, ours or the parser's
    400, is never spliced into an answer still being written: that answer is finished,
    then the connection closed. An answer the client stops reading for
    ``send_timeout`` seconds is abandoned and the connection dropped."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout, self.max_header_bytes, self.send_timeout = _limits()
        self.header_timer: asyncio.TimerHandle | None = None
        self.stall_timer: asyncio.TimerHandle | None = None
        self.awaiting_headers = True
        self.header_bytes = 0  # fed while awaiting headers
        self.body_left = 0  # of the request whose body is being read
        self.in_request = False  # a request has begun and its headers are not complete
        self.refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.stall_timer is not None:
            self.stall_timer.cancel()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading what it is sent: if it has not read enough to
        resume within ``send_timeout`` seconds, the connection is dropped, and the
        answer (an export, a long list) with whatever it holds is let go."""
        super().pause_writing()
        if self.stall_timer is None:
            self.stall_timer = self.loop.call_later(self.send_timeout, self._stalled)

    def resume_writing(self) -> None:
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None
        super().resume_writing()

    def _stalled(self) -> None:
        self.stall_timer = None
        self.refused = True
        self.transport.abort()  # close() would wait to flush what nobody reads

    def data_received(self, data: bytes) -> None:
        while data and not self.refused and not self.transport.is_closing():
            if self.awaiting_headers:
                room = self.max_header_bytes - self.header_bytes
                if room <= 0:
                    self._refuse(431, b"Request Header Fields Too Large")
                    return
                piece, data = data[:room], data[room:]
                self.header_bytes += len(piece)
            else:  # the body declared, and nothing past it
                piece, data = data[: max(self.body_left, 1)], data[max(self.body_left, 1) :]
            super().data_received(piece)

    def send_400_response(self, msg: str) -> None:
        """The parser refused what it was given: never in the middle of an answer."""
        if self._answering():
            self._refuse(400, b"Bad Request")
        else:
            self.refused = True
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_request = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self.awaiting_headers, self.in_request, self.header_bytes = False, False, 0
        if self._over_capacity():  # uvicorn's own 503 would say nothing of when to retry
            self._refuse(503, b"Service Unavailable")
            return
        headers = dict(self.headers)
        if b"transfer-encoding" in headers:
            self._refuse(411, b"Length Required")
            return
        self.body_left = int(headers.get(b"content-length", b"0"))
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.body_left -= len(body)
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.refused:
            super().on_message_complete()
        self.awaiting_headers, self.body_left = True, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers, or the end of this connection

    def _over_capacity(self) -> bool:
        """uvicorn's ``limit_concurrency`` test: as many connections or requests in
        progress as ``CASEBOOK_MAX_CONNECTIONS`` (this connection among them)."""
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def _answering(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self.header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _too_slow(self) -> None:
        """The deadline passed: a request that began is told why (408); a connection
        that sent nothing more, or only blank lines or an unread body, is closed."""
        self.header_timer = None
        if self.in_request:
            self._refuse(408, b"Request Timeout")
        elif not self._answering():
            self.refused = True
            self.transport.close()

    def _refuse(self, status: int, reason: bytes) -> None:
        self.refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        if self._answering():
            # An earlier request's answer is in progress (pipelining): let it finish
            # whole, then close, rather than splice this refusal into it.
            assert self.cycle is not None
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        body = reason + b"\n"
        retry = b"retry-after: 1\r\n" if status == 503 else b""
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n%sx-request-id: %s\r\n\r\n%s"
            % (status, reason, len(body), retry, new_id().encode(), body)
        )
        self.transport.close()


def run(
    host: str, port: int, workers: int, settings: Settings, app: str = "api.app:create_app"
) -> None:
    """Start uvicorn on an app factory with the limits above (the benchmark serves its
    bare baseline app the same way). Several workers count their metrics together, in
    files of a folder of their own (``api.metrics``): set before they start."""
    import uvicorn

    if workers > 1:
        os.environ[MULTIPROCESS] = str(workers_folder(settings.data_dir, port))

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
