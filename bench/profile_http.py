"""Where a request's CPU goes: cProfile of ``GET /cases/{id}`` or ``POST
/cases/{id}/events`` run through the whole app (middleware, FastAPI, the register, the
read audit) in this process, with thread hops made direct calls so that one profile sees
everything. Not a benchmark (profiling slows it); the benchmark is ``python -m bench``.

    python -m bench.profile_http get     # or post; optional: sort key, rows to print
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import pstats
import sys
import tempfile
import time
from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import starlette.concurrency


async def _inline(func: Any, *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


for module in (fastapi.routing, fastapi.dependencies.utils, starlette.concurrency):
    module.run_in_threadpool = _inline  # type: ignore[attr-defined]


async def profile(mode: str, sort: str, rows: int, requests: int = 300) -> None:
    import api.deps
    from api.app import create_app
    from infrastructure.keys import KeyStore
    from infrastructure.settings import Settings
    from infrastructure.store import Store

    api.deps.run_in_threadpool = _inline  # type: ignore[attr-defined]
    logging.getLogger("casebook").setLevel(logging.WARNING)
    settings = Settings(data_dir=tempfile.mkdtemp(prefix="casebook-profile-"))
    store = Store(settings)
    _, secret = KeyStore(store.engine).create("profiler", "case_worker", "org-a")
    store.close()
    app = create_app(settings)

    async def call(method: str, path: str, body: Any = None) -> list[Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = [(b"authorization", f"Bearer {secret}".encode()), (b"host", b"x")]
        if body is not None:
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(raw)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 8000),
            "scheme": "http",
            "root_path": "",
            "state": {},
        }
        sent: list[Any] = []
        messages = [{"type": "http.request", "body": raw, "more_body": False}]

        async def receive() -> Any:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent

    lifespan: asyncio.Queue[Any] = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: Any) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    await lifespan.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    running = asyncio.create_task(app(scope, lifespan.get, lifespan_send))
    await started.wait()
    # 50 cases, written in turn: about 8 facts each at the end, as in the benchmark
    # (a single case would grow to hundreds of facts and profile ``derive`` alone).
    person = {"family_name": "Testyan", "given_names": "Aram"}
    case_ids = []
    for _ in range(50):
        opened = await call(
            "POST",
            "/cases",
            {"category": "missing_person", "person": person, "source": {"kind": "ngo"}},
        )
        case_ids.append(json.loads(opened[1]["body"])["id"])
    note = {"type": "note", "text": "x", "source": {"kind": "ngo"}}
    turn = iter(range(1 << 30))

    def one() -> Any:
        case_id = case_ids[next(turn) % len(case_ids)]
        if mode == "get":
            return call("GET", f"/cases/{case_id}")
        return call("POST", f"/cases/{case_id}/events", note)

    for _ in range(50):
        await one()
    profiler = cProfile.Profile()
    started_at = time.process_time()
    profiler.enable()
    for _ in range(requests):
        await one()
    profiler.disable()
    cpu = (time.process_time() - started_at) / requests * 1000
    print(f"{mode}: {cpu:.2f} ms of CPU per request under the profiler ({requests} requests)")
    pstats.Stats(profiler).sort_stats(sort).print_stats(rows)
    await lifespan.put({"type": "lifespan.shutdown"})
    await running


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        profile(
            args[0] if args else "get",
            args[1] if len(args) > 1 else "cumulative",
            int(args[2]) if len(args) > 2 else 60,
        )
    )
