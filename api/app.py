"""The app factory: one store and its read side per process, routers, errors, middleware."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi_offline import FastAPIOffline

from api import metrics_address, problems, requestid
from api.auth import KEY_CHECK_THREADS, Authenticate, KeyCheck
from api.metrics import Metrics, learn_routes
from api.middleware import BodyLimit, InFlightLimit, RequestLog, WriteGate
from api.requestid import RequestId
from api.routers import audit, cases, exchanges, health, metrics, negotiations, reports
from infrastructure import rotation, vitals
from infrastructure.auditing import AuditReads
from infrastructure.cases import CaseReads
from infrastructure.checkpoints import Signer
from infrastructure.exchanges import ExchangeReads
from infrastructure.keys import KeyStore
from infrastructure.negotiations import NegotiationReads
from infrastructure.settings import Settings
from infrastructure.store import Store

DESCRIPTION = """An event-sourced register of people deprived of liberty in armed conflict.

Every route but `/health`, `/ready` and these docs needs `Authorization: Bearer <key>`.
Errors are RFC 9457 problem details. Every answer carries `X-Request-ID` (a client's
own, when it is up to 64 of `A-Za-z0-9._-`)."""


async def _checkpoint_timer(store: Store, minutes: float) -> None:
    """Every so many minutes, sign the head if events were recorded since the last
    checkpoint (each worker process runs one; a spare checkpoint costs nothing)."""
    while True:
        await asyncio.sleep(minutes * 60)
        try:
            if await run_in_threadpool(store.head_moved_since_checkpoint):
                await run_in_threadpool(store.auto_checkpoint)
        except Exception as e:  # try again next time; by type only, never data
            logging.getLogger("casebook").error("checkpoint timer: %s", type(e).__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signer = Signer.from_settings(settings)  # production: refuses to start without
        store = Store(settings)  # one per process: it owns the connection pool
        try:
            rotation.require_current(store.engine, signer)  # not a retired key
        except Exception:
            store.close()
            raise
        store.signer = signer
        app.state.store = store
        app.state.cases = CaseReads(store)
        app.state.negotiations = NegotiationReads(store)
        app.state.exchanges = ExchangeReads(store)
        app.state.audit = AuditReads(store)
        app.state.key_check = KeyCheck(
            KeyStore(store.quick_engine),
            on_loop=store.dialect == "sqlite",
            limiter=anyio.CapacityLimiter(KEY_CHECK_THREADS),
        )
        app.state.readiness = health.Readiness(store)
        app.state.metrics = Metrics(lambda: vitals.read(store))
        learn_routes(app)
        store.on_written = app.state.metrics.written
        store.read_audit.on_recorded = app.state.metrics.read_audit.inc
        address = settings.metrics_host_port()
        apart = await metrics_address.serve(app.state.metrics, *address) if address else None
        timer = asyncio.create_task(_checkpoint_timer(store, settings.checkpoint_minutes))
        try:
            yield
        finally:
            timer.cancel()
            if apart is not None:
                apart.close()
            store.close()

    # The docs are served from the installed package: the service runs offline.
    app = FastAPIOffline(
        title="casebook",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(health.router)
    app.include_router(cases.router)
    app.include_router(negotiations.router)
    app.include_router(exchanges.router)
    app.include_router(reports.router)
    app.include_router(audit.router)
    app.include_router(metrics.router)
    # Added innermost first: the request passes RequestId, RequestLog, Authenticate, BodyLimit,
    # InFlightLimit and WriteGate in that order (see api.middleware).
    app.add_middleware(WriteGate, slots=settings.write_slots, wait=settings.write_wait_seconds)
    app.add_middleware(
        InFlightLimit, limit=settings.max_in_flight, per_key=settings.max_in_flight_per_key
    )
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        deadline=settings.body_timeout_seconds,
        budget=settings.max_body_buffer_bytes,
        per_key=settings.max_body_buffer_bytes_per_key,
    )
    app.add_middleware(Authenticate)
    app.add_middleware(RequestLog)
    app.add_middleware(RequestId)
    _log_to_stderr()
    return app


def _log_to_stderr() -> None:
    """The request log, in every worker process (uvicorn starts workers afresh, so a
    configuration made by the parent process does not reach them)."""
    requestid.install_record_factory()  # every line made while serving: the request's id
    logger = logging.getLogger("casebook")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(requestid.LineFormatter("%(message)s"))
        logger.addHandler(handler)
