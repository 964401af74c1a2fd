"""``GET /metrics`` without a key, on an address of its own (``CASEBOOK_METRICS_ADDRESS``),
for a Prometheus that reaches the service over a monitoring network: the API's address
then needs no key to be handed to the monitoring system.

Each worker process listens there on its event loop (``SO_REUSEPORT``: with ``--workers
N`` the N workers share the address and the kernel hands each scrape to one of them;
in multiprocess mode each answers with every worker's counts, ``api.metrics``). It
answers one thing, ``GET /metrics`` (404 for any other path, 405 for another method),
one request per connection: at most ``MAX_HEAD`` bytes of request line and headers,
within ``DEADLINE`` seconds for the request and its answer together, and at most
``CONNECTIONS`` connections at once (one more is closed unanswered). A body is never
read. It does nothing else: bind it to an address only the monitoring network reaches.
"""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from api.metrics import Metrics

MAX_HEAD = 8192
DEADLINE = 10.0
CONNECTIONS = 8


async def serve(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port``; the caller closes the server."""
    open_now = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now
        if open_now >= CONNECTIONS:
            writer.close()
            return
        open_now += 1
        try:
            async with asyncio.timeout(DEADLINE):
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(await _response(metrics, head))
                await writer.drain()
        except (TimeoutError, asyncio.LimitOverrunError, asyncio.IncompleteReadError, OSError):
            pass  # too slow, too long, cut short, gone: closed unanswered
        finally:
            open_now -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(answer, host, port, limit=MAX_HEAD, reuse_port=True)


async def _response(metrics: Metrics, head: bytes) -> bytes:
    method, _, rest = head.partition(b" ")
    target = rest.split(b" ", 1)[0].split(b"?", 1)[0]
    if target != b"/metrics":
        return _plain(b"404 Not Found", b"not found: this address serves GET /metrics only\n")
    if method not in (b"GET", b"HEAD"):
        return _plain(b"405 Method Not Allowed", b"GET /metrics only\n", b"Allow: GET, HEAD\r\n")
    body = await metrics.exposition()
    kind = CONTENT_TYPE_PLAIN_0_0_4.encode()
    return _plain(b"200 OK", body, content_type=kind, head_only=method == b"HEAD")


def _plain(
    status: bytes,
    body: bytes,
    extra: bytes = b"",
    content_type: bytes = b"text/plain; charset=utf-8",
    head_only: bool = False,
) -> bytes:
    return (
        b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n"
        % (status, content_type, len(body), extra)
    ) + (b"" if head_only else body)
