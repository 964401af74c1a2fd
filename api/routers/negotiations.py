"""Negotiations: parties and mediators, lists and their matching, agreements, and the
reconciliation that says who is still outstanding."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import commands
from api.deps import Caller, NegotiationsDep, ReaderDep, RegisterDep, StoreDep
from api.schemas import (
    AgreementCreate,
    ListCreate,
    MatchConfirm,
    NegotiationCreate,
    NegotiationFull,
    NegotiationPublic,
    NegotiationsPublic,
    problems,
)
from api.timeparams import WhenDep
from api.writes import (
    WRITE_ERRORS,
    IdempotencyKey,
    IfMatch,
    NoIfMatch,
    answer,
    expected_version,
    idempotency,
)
from domain.ports import Written
from infrastructure.matching import match_entries

router = APIRouter(prefix="/negotiations", tags=["negotiations"])

ERRORS = problems(401, 403, 404, 422)
LIST_ERRORS = problems(401, 403, 422, (400, "a cursor this list did not give out"))


def _answer(body: dict[str, Any], written: Written) -> JSONResponse:
    return answer(body, written, "/negotiations")


@router.post(
    "",
    status_code=201,
    response_model=NegotiationPublic,
    responses=WRITE_ERRORS,
    dependencies=[NoIfMatch],
)
def open_negotiation(
    body: NegotiationCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    negotiations: NegotiationsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Open a negotiation: its parties, mediators and the principle it works under."""
    payload = body.model_dump(mode="json")
    idem = idempotency(idempotency_key, "negotiation", payload)
    written = register.open_negotiation(commands.open_negotiation(payload), key, idem)
    return _answer(negotiations.written(written, key, reader), written)


@router.get("", response_model=NegotiationsPublic, responses=LIST_ERRORS)
def list_negotiations(
    key: Caller,
    negotiations: NegotiationsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Negotiations, oldest first, without their lists."""
    items, next_cursor = negotiations.list_negotiations(limit, cursor, key)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{negotiation_id}", response_model=NegotiationFull, responses=ERRORS)
async def get_negotiation(
    negotiation_id: UUID,
    key: Caller,
    reader: ReaderDep,
    negotiations: NegotiationsDep,
    when: WhenDep,
) -> dict[str, Any]:
    """Parties, mediators, each party's current list (each entry with its match),
    agreements, exchanges, and the reconciliation: on every list, on one party's list
    only, unmatched, agreed, handed over, refused, absent, and outstanding. With as_of
    and/or known_at, as the register stood then."""
    return await run_in_threadpool(negotiations.view, negotiation_id, when, key, reader)


@router.post(
    "/{negotiation_id}/lists",
    status_code=201,
    response_model=NegotiationPublic,
    responses=WRITE_ERRORS,
)
def submit_list(
    negotiation_id: UUID,
    body: ListCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    negotiations: NegotiationsDep,
    store: StoreDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A party submits its list, or a new version of it. Entries by name are matched
    against the register across spellings and scripts: each comes back matched (with
    the case), candidates (with scores) or unmatched."""
    payload = body.model_dump(mode="json", exclude_none=True)
    payload["entries"] = [e.model_dump(mode="json", exclude_none=True) for e in body.entries]
    expected = expected_version(if_match, payload.pop("expected_version", None))
    idem = idempotency(idempotency_key, "list", str(negotiation_id), payload, expected)
    command = commands.submit_list(negotiation_id, payload, expected)
    negotiations.visible(negotiation_id, key)  # 404 before any matching
    with store.snapshot() as conn:  # before the write lock: matching takes seconds
        entries = match_entries(conn, store.keyring, command.entries, key)
    written = register.submit_list(replace(command, entries=entries), key, idem)
    return _answer(negotiations.written(written, key, reader, command.party), written)


@router.post(
    "/{negotiation_id}/matches",
    status_code=201,
    response_model=NegotiationPublic,
    responses=WRITE_ERRORS,
)
def confirm_match(
    negotiation_id: UUID,
    body: MatchConfirm,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    negotiations: NegotiationsDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A case worker confirms that an entry of a party's current list is this case
    (a candidate, or any case). The entry's spelling is recorded as an alias of the
    person (identity_updated), in the same transaction. If-Match is the negotiation's
    version."""
    payload = body.model_dump(exclude_none=True)
    expected = expected_version(if_match, None)
    condition = [] if expected is None else [expected]  # as for shares (api.routers.cases)
    idem = idempotency(
        idempotency_key, "match", str(negotiation_id), body.model_dump(mode="json"), *condition
    )
    command = commands.confirm_match(negotiation_id, payload, expected)
    written = register.confirm_match(command, key, idem)
    body_out = negotiations.written(written, key, reader, command.party, command.list_version)
    return _answer(body_out, written)


@router.post(
    "/{negotiation_id}/agreements",
    status_code=201,
    response_model=NegotiationPublic,
    responses=WRITE_ERRORS,
)
def record_agreement(
    negotiation_id: UUID,
    body: AgreementCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    negotiations: NegotiationsDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """An agreement: transfers of people in each direction, and the consideration that
    is not a person. Several exchanges may carry it out."""
    payload = body.model_dump(mode="json", exclude_none=True)
    expected = expected_version(if_match, payload.pop("expected_version", None))
    idem = idempotency(idempotency_key, "agreement", str(negotiation_id), payload, expected)
    written = register.agree(commands.agree(negotiation_id, payload, expected), key, idem)
    return _answer(negotiations.written(written, key, reader, agreement=True), written)
