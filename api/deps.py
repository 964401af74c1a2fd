"""Dependencies declared once: the register, its read side, the calling key and its
permission."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.permissions import PERMISSIONS
from api.problems import Problem
from domain.register import Register
from infrastructure.auditing import AuditReads
from infrastructure.cases import CaseReads
from infrastructure.exchanges import ExchangeReads
from infrastructure.keys import ApiKey
from infrastructure.negotiations import NegotiationReads
from infrastructure.readlog import Reader
from infrastructure.store import Store

bearer = HTTPBearer(auto_error=False, description="an API key made by `casebook keys create`")


# Dependencies that do no I/O are ``async def``: FastAPI runs a sync dependency in the
# thread pool, one thread hop each, which costs more than the work.
async def get_register(request: Request) -> Register:
    """The register's use cases (the write side)."""
    register: Register = request.app.state.store.register
    return register


def _from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency for one of the objects the app factory keeps on ``app.state`` (the
    store, and the read side of each resource)."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


P = ParamSpec("P")
T = TypeVar("T")


async def quick(request: Request, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
    """Run a short read. On SQLite right here, on the event loop: a WAL read never
    waits for a writer and takes a fraction of a millisecond, less than the hop to a
    worker thread would cost. Elsewhere (a database across the network) in the thread
    pool, as FastAPI does with sync code. Writes, which may wait for the write lock,
    always run in the thread pool."""
    if request.app.state.store.dialect == "sqlite":
        return fn(*args, **kw)
    return await run_in_threadpool(fn, *args, **kw)


async def get_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The key ``api.auth.Authenticate`` checked before the body was read; 401 when
    there is none (the route is then one the middleware took for public: fail closed).
    ``credentials`` is here for the OpenAPI document's security scheme."""
    key: ApiKey | None = request.scope.get("state", {}).get("api_key")
    if key is None:
        raise Problem(
            401,
            "not-authenticated",
            "send a valid API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key


async def get_caller(request: Request, key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
    """The calling key, if the permission table lets its role call this route (403)."""
    route = request.scope.get("route")
    allowed = PERMISSIONS.get((request.method, getattr(route, "path", "")), frozenset())
    if key.role not in allowed:
        raise Problem(403, "forbidden", f"the {key.role} role may not do this")
    return key


async def get_reader(request: Request, key: Annotated[ApiKey, Depends(get_caller)]) -> Reader:
    """The caller, as the read audit records it: key and route template (never the query,
    whose words may be a name)."""
    route = request.scope.get("route")
    return Reader(key, f"{request.method} {getattr(route, 'path', '')}")


RegisterDep = Annotated[Register, Depends(get_register)]
StoreDep = Annotated[Store, Depends(_from_state("store"))]
CasesDep = Annotated[CaseReads, Depends(_from_state("cases"))]
NegotiationsDep = Annotated[NegotiationReads, Depends(_from_state("negotiations"))]
ExchangesDep = Annotated[ExchangeReads, Depends(_from_state("exchanges"))]
AuditDep = Annotated[AuditReads, Depends(_from_state("audit"))]
Caller = Annotated[ApiKey, Depends(get_caller)]
ReaderDep = Annotated[Reader, Depends(get_reader)]
