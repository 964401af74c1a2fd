"""The ASGI middleware on a stand-in app: overload answers and body limits."""

from __future__ import annotations

import asyncio

from api.middleware import BodyLimit, InFlightLimit


async def call(app, scope=None, body=b""):  # type: ignore[no-untyped-def]
    sent = []
    scope = scope or {"type": "http", "headers": []}
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():  # type: ignore[no-untyped-def]
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_requests_beyond_the_in_flight_limit_get_503_with_retry_after():
    release = asyncio.Event()

    async def slow(scope, receive, send):  # type: ignore[no-untyped-def]
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = InFlightLimit(slow, limit=2)

    async def scenario():  # type: ignore[no-untyped-def]
        first = [asyncio.create_task(call(limited)) for _ in range(2)]
        await asyncio.sleep(0.01)
        refused = await call(limited)
        release.set()
        done = await asyncio.gather(*first)
        return refused, done

    refused, done = asyncio.run(scenario())
    assert refused[0]["status"] == 503
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert [d[0]["status"] for d in done] == [200, 200]
    assert limited.in_flight == 0


def test_a_streamed_body_over_the_limit_is_refused_with_413():
    async def reader(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = asyncio.run(call(BodyLimit(reader, limit=10), body=b"x" * 11))
    assert sent[0]["status"] == 413
