"""The HTTP baseline: a bare FastAPI app, one ``async def`` route returning a constant.

It answers every path the load generator sends to casebook (``GET /cases/{id}``,
``POST /cases/{id}/events``), so that both servers get the same requests, byte for byte.
"""

from __future__ import annotations

from fastapi import FastAPI

CONSTANT = {"status": "ok"}


def create_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def constant(path: str) -> dict[str, str]:
        return CONSTANT

    return app
