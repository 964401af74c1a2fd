"""The ASGI middleware on a stand-in app: overload answers and body limits."""

from __future__ import annotations

import asyncio

from api.middleware import BodyLimit, InFlightLimit, WriteGate


async def call(app, method="POST", chunks=None, body=b""):  # type: ignore[no-untyped-def]
    sent = []
    scope = {"type": "http", "method": method, "headers": []}
    chunks = chunks or [{"type": "http.request", "body": body, "more_body": False}]

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

    chunked = [{"type": "http.request", "body": b"x" * 6, "more_body": True}] * 2
    chunked.append({"type": "http.request", "body": b"", "more_body": False})
    sent = asyncio.run(call(BodyLimit(reader, limit=10), chunks=chunked))
    assert sent[0]["status"] == 413


def test_a_chunked_body_within_the_limit_reaches_the_app_whole():
    seen = []

    async def echo(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chunked = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"def", "more_body": False},
    ]
    sent = asyncio.run(call(BodyLimit(echo, limit=10), chunks=chunked))
    assert sent[0]["status"] == 200 and seen == [b"abcdef"]


def test_writes_beyond_the_write_slots_wait_then_get_503_and_reads_pass():
    release = asyncio.Event()

    async def slow(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["method"] == "POST":
            await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate = WriteGate(slow, slots=1, wait=0.05)

    async def scenario():  # type: ignore[no-untyped-def]
        first = asyncio.create_task(call(gate))
        await asyncio.sleep(0.01)
        refused = await call(gate)
        read = await call(gate, method="GET")
        release.set()
        return refused, read, await first

    refused, read, first = asyncio.run(scenario())
    assert refused[0]["status"] == 503 and (b"retry-after", b"1") in refused[0]["headers"]
    assert read[0]["status"] == 201 and first[0]["status"] == 201
