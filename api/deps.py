"""Dependencies declared once: the casebook, the calling key, and role checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from infrastructure.keys import ApiKey
from infrastructure.service import Casebook

bearer = HTTPBearer(auto_error=False, description="an API key made by `casebook keys create`")


# Dependencies that do no I/O are ``async def``: FastAPI runs a sync dependency in the
# thread pool, one thread hop each, which costs more than the work.
async def get_casebook(request: Request) -> Casebook:
    casebook: Casebook = request.app.state.casebook
    return casebook


def get_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The valid key presented as a Bearer token; 401 otherwise."""
    unauthorised = Problem(
        401,
        "not-authenticated",
        "send a valid API key as 'Authorization: Bearer <key>'",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None:
        raise unauthorised
    key = request.app.state.keys.authenticate(credentials.credentials)
    if key is None:
        raise unauthorised
    request.state.key_name = key.name  # for the request log line
    return key


def require(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency that lets only the given roles through (403 for the others)."""

    async def check(key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
        if key.role not in roles:
            raise Problem(403, "forbidden", f"the {key.role} role may not do this")
        return key

    return check


CasebookDep = Annotated[Casebook, Depends(get_casebook)]
Reader = Annotated[ApiKey, Depends(require("case_worker", "auditor"))]
Writer = Annotated[ApiKey, Depends(require("case_worker"))]
AnyRole = Annotated[ApiKey, Depends(require("case_worker", "auditor", "admin"))]
