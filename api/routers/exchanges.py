"""Exchanges: one handover on one day, recorded on every case in it at once."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api import commands
from api.deps import Caller, ExchangesDep, ReaderDep, RegisterDep
from api.schemas import ExchangeCreate, ExchangePublic, ExchangesPublic, problems
from api.writes import WRITE_ERRORS, IdempotencyKey, NoIfMatch, answer, idempotency

router = APIRouter(prefix="/exchanges", tags=["exchanges"])


@router.post(
    "",
    status_code=201,
    response_model=ExchangePublic,
    responses=WRITE_ERRORS,
    dependencies=[NoIfMatch],
)
def record_exchange(
    body: ExchangeCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    exchanges: ExchangesDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record an exchange and the matching fact on every case in it (handed_over,
    handover_refused, handover_absent), in one transaction. If any case cannot take
    part (dead, not held by the handing party, already handed over, unwilling, stale
    expected_version, no such case) the answer is a 409 naming every such case, and
    nothing at all is recorded. Each handover's `expected_version` makes it conditional
    on that case's version (If-Match is refused: one header cannot name many cases)."""
    payload = body.model_dump(mode="json", exclude_none=True)
    payload["handovers"] = [h.model_dump(mode="json", exclude_none=True) for h in body.handovers]
    idem = idempotency(idempotency_key, "exchange", payload)
    written = register.record_exchange(commands.record_exchange(payload), key, idem)
    return answer(exchanges.written(written, key, reader), written, "/exchanges")


@router.get("", response_model=ExchangesPublic, responses=problems(401, 403, 422, 400))
def list_exchanges(
    key: Caller,
    reader: ReaderDep,
    exchanges: ExchangesDep,
    negotiation: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Exchanges in the order they were recorded; of one negotiation with ?negotiation=."""
    items, next_cursor = exchanges.list_exchanges(negotiation, limit, cursor, key, reader)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{exchange_id}", response_model=ExchangePublic, responses=problems(401, 403, 404, 422))
def get_exchange(
    exchange_id: UUID, key: Caller, reader: ReaderDep, exchanges: ExchangesDep
) -> dict[str, Any]:
    """The exchange as recorded; each handover says whether it still stands on its case
    (a retraction there undoes it); each party's announced figure beside the count."""
    return exchanges.exchange(exchange_id, key, reader)
