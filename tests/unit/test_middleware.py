"""The ASGI middleware on a stand-in app: overload answers, body limits and deadlines,
the probes, and what the request log says of disconnects and storage faults."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from api.middleware import BodyLimit, InFlightLimit, RequestLog, WriteGate


def limited(app):  # type: ignore[no-untyped-def]
    return BodyLimit(app, limit=10, deadline=5, budget=1000, per_key=1000)


async def call(app, method="POST", chunks=None, body=b"", path="/cases"):  # type: ignore[no-untyped-def]
    sent = []
    scope = {"type": "http", "method": method, "headers": [], "path": path}
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

    limited = InFlightLimit(slow, limit=2, per_key=8)

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
    sent = asyncio.run(call(limited(reader), chunks=chunked))
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
    sent = asyncio.run(call(limited(echo), chunks=chunked))
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


def test_a_body_that_arrives_too_slowly_is_answered_408_and_never_reaches_the_app():
    reached = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(await receive())

    async def scenario():  # type: ignore[no-untyped-def]
        sent = []
        scope = {"type": "http", "method": "POST", "headers": [], "path": "/cases"}
        parts = [{"type": "http.request", "body": b"{", "more_body": True}]

        async def receive():  # type: ignore[no-untyped-def]
            if parts:
                return parts.pop(0)
            await asyncio.sleep(60)  # the rest never comes

        async def send(message):  # type: ignore[no-untyped-def]
            sent.append(message)

        await BodyLimit(app, limit=100, deadline=0.05, budget=1000, per_key=1000)(
            scope, receive, send
        )
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert reached == []


def test_the_probes_are_answered_when_the_in_flight_limit_is_reached():
    release = asyncio.Event()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["path"] == "/cases":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = InFlightLimit(app, limit=1, per_key=8)

    async def scenario():  # type: ignore[no-untyped-def]
        busy = asyncio.create_task(call(limited, method="GET"))
        await asyncio.sleep(0.01)
        refused = await call(limited, method="GET")
        probes = [await call(limited, method="GET", path=p) for p in ("/health", "/ready")]
        release.set()
        await busy
        return refused, probes

    refused, probes = asyncio.run(scenario())
    assert refused[0]["status"] == 503
    assert [p[0]["status"] for p in probes] == [200, 200]


def test_a_client_that_went_away_is_logged_as_499_not_500(caplog):  # type: ignore[no-untyped-def]
    async def reader(scope, receive, send):  # type: ignore[no-untyped-def]
        await receive()  # the disconnect: nobody to answer

    caplog.set_level("INFO", logger="casebook.requests")
    gone = [{"type": "http.disconnect"}]
    asyncio.run(call(RequestLog(limited(reader)), chunks=gone))
    lines = [json.loads(r.message) for r in caplog.records]
    assert [line["status"] for line in lines] == [499]
    assert all(r.levelname == "INFO" for r in caplog.records)


def test_a_full_disk_under_the_app_is_answered_507_with_retry_after(caplog):  # type: ignore[no-untyped-def]
    async def full(scope, receive, send):  # type: ignore[no-untyped-def]
        conn = sqlite3.connect(":memory:")
        conn.execute("PRAGMA max_page_count = 3")
        conn.execute("CREATE TABLE t (x)")
        for _ in range(100):
            conn.execute("INSERT INTO t VALUES (randomblob(1000))")

    sent = asyncio.run(call(RequestLog(full)))
    assert sent[0]["status"] == 507 and (b"retry-after", b"1") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["type"] == "/problems/storage-full"
    assert json.loads(caplog.records[-1].message)["fault"] == "storage-full"


def test_bodies_beyond_the_memory_budget_or_one_keys_share_are_refused_before_reading():
    class Key:
        id = "key-1"

    async def scenario():  # type: ignore[no-untyped-def]
        arrived = asyncio.Event()

        async def app(scope, receive, send):  # type: ignore[no-untyped-def]
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        limit = BodyLimit(app, limit=100, deadline=5, budget=250, per_key=200)

        async def slow_upload(length: int):  # type: ignore[no-untyped-def]
            sent = []
            headers = [(b"content-length", str(length).encode())]
            scope = {"type": "http", "method": "POST", "headers": headers, "path": "/cases"}
            scope["state"] = {"api_key": Key()}
            parts = [{"type": "http.request", "body": b"{", "more_body": True}]

            async def receive():  # type: ignore[no-untyped-def]
                if parts:
                    return parts.pop(0)
                await arrived.wait()
                return {"type": "http.request", "body": b"x" * (length - 1), "more_body": False}

            async def send(message):  # type: ignore[no-untyped-def]
                sent.append(message)

            await limit(scope, receive, send)
            return sent[0]["status"]

        waiting = [asyncio.create_task(slow_upload(100)) for _ in range(2)]
        await asyncio.sleep(0.01)
        third_from_the_same_key = await slow_upload(10)  # 210 of its 200 bytes
        Key.id = "key-2"
        over_budget = await slow_upload(100)  # 200 of 250 bytes already reserved
        within_budget = asyncio.create_task(slow_upload(40))
        await asyncio.sleep(0.01)
        arrived.set()
        done = await asyncio.gather(*waiting, within_budget)
        return third_from_the_same_key, over_budget, done, limit.reserved

    third, over, done, reserved = asyncio.run(scenario())
    assert (third, over) == (429, 503)
    assert done == [201, 201, 201] and reserved == 0


def test_one_key_cannot_take_every_request_slot():
    release = asyncio.Event()

    class Key:
        def __init__(self, name: str):
            self.id = name

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = InFlightLimit(app, limit=10, per_key=2)

    async def request(key: str):  # type: ignore[no-untyped-def]
        sent = []
        scope = {"type": "http", "method": "GET", "headers": [], "path": "/cases"}
        scope["state"] = {"api_key": Key(key)}

        async def send(message):  # type: ignore[no-untyped-def]
            sent.append(message)

        await limited(scope, lambda: None, send)
        return sent[0]["status"]

    async def scenario():  # type: ignore[no-untyped-def]
        hogging = [asyncio.create_task(request("hog")) for _ in range(2)]
        await asyncio.sleep(0.01)
        third = await request("hog")
        other = asyncio.create_task(request("other"))
        await asyncio.sleep(0.01)
        release.set()
        return third, await asyncio.gather(*hogging, other), limited.in_flight

    third, done, in_flight = asyncio.run(scenario())
    assert third == 429 and done == [200, 200, 200] and in_flight == 0
