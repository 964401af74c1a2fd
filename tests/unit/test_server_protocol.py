"""The guarded HTTP protocol on a stand-in transport: an answer the client stops
reading is abandoned after the send timeout, and the connection dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from api import server


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = self.closed = False
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8000) if name in ("sockname", "peername") else default

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def protocol(monkeypatch: pytest.MonkeyPatch, loop: asyncio.AbstractEventLoop) -> Any:
    monkeypatch.setattr(server, "_limits", lambda: (10.0, 32_768, 0.05))
    config = Config(app=lambda *a: None, http=server.GuardedHttpToolsProtocol)
    config.load()
    made = server.GuardedHttpToolsProtocol(
        config=config, server_state=ServerState(), app_state={}, _loop=loop
    )
    made.connection_made(Transport())
    return made


def test_an_answer_nobody_reads_is_abandoned_after_the_send_timeout(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> tuple[bool, bool]:
        guarded = protocol(monkeypatch, asyncio.get_running_loop())
        guarded.pause_writing()  # the write buffer is full: the client stopped reading
        await asyncio.sleep(0.1)
        stalled = guarded.transport.aborted
        reading = protocol(monkeypatch, asyncio.get_running_loop())
        reading.pause_writing()
        reading.resume_writing()  # it read enough in time
        await asyncio.sleep(0.1)
        return stalled, reading.transport.aborted

    assert asyncio.run(scenario()) == (True, False)
