"""Cases: open a case, record facts, read one case or a filtered list, replay history."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from api import commands
from api.deps import Caller, CasesDep, ReaderDep, RegisterDep, quick
from api.schemas import (
    CaseCreate,
    CasePublic,
    CasesPublic,
    EraseCreate,
    FactCreate,
    HistoryPublic,
    Party,
    ShareCreate,
    Text,
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
from domain.cases import EndShare, EraseCase, ShareCase
from domain.ports import Written

router = APIRouter(prefix="/cases", tags=["cases"])

ERRORS = problems(401, 403, 404, 422)
ORG = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$"  # as infrastructure.keys names them
LIST_ERRORS = problems(401, 403, 422, (400, "a cursor this list did not give out"))


def answer_case(view: dict[str, Any], written: Written) -> JSONResponse:
    return answer(view, written, "/cases")


@router.post(
    "",
    status_code=201,
    response_model=CasePublic,
    responses=WRITE_ERRORS,
    dependencies=[NoIfMatch],
)
def open_case(
    body: CaseCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    cases: CasesDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Open a case for one person."""
    payload = body.model_dump(exclude_none=True)
    idem = idempotency(idempotency_key, "open", payload)
    written = register.open_case(commands.open_case(payload), key, idem)
    return answer_case(cases.answer(written, key, reader), written)


@router.post(
    "/{case_id}/events", status_code=201, response_model=CasePublic, responses=WRITE_ERRORS
)
def record_event(
    request: Request,
    case_id: UUID,
    body: Annotated[FactCreate, Body()],
    reader: ReaderDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record one fact about the person."""
    # The hottest write takes the fewest dependencies (as get_case): the reader
    # carries the key, checked for this route's permission.
    key, register, cases = reader.key, request.app.state.store.register, request.app.state.cases
    payload = body.model_dump(exclude_none=True)
    expected = expected_version(if_match, payload.pop("expected_version", None))
    idem = idempotency(idempotency_key, "event", str(case_id), payload, expected)
    written = register.record_fact(commands.record_fact(case_id, payload, expected), key, idem)
    return answer_case(cases.answer(written, key, reader), written)


@router.get("/{case_id}", response_model=CasePublic, responses=ERRORS)
async def get_case(request: Request, case_id: UUID, reader: ReaderDep, when: WhenDep) -> Response:
    """The case view; with as_of and/or known_at, as it stood then. The read is
    recorded in the read audit before the answer leaves."""
    # The hottest route takes the fewest dependencies: the reader carries the key
    # (checked for this route's permission by get_caller, which get_reader needs).
    key, cases = reader.key, request.app.state.cases
    if when is None:
        # On SQLite on the event loop (a WAL read never waits for a writer); the read
        # audit's batch is awaited without holding a thread.
        version, text = await quick(request, cases.read_view, case_id, key)
        await cases.store.read_audit.recorded(reader, [case_id])
        return Response(text, media_type="application/json", headers={"ETag": f'"{version}"'})
    # A replay of the case's log: may take milliseconds, so not on the event loop. No
    # ETag: a past view's version is not one a write could be conditional on.
    view = await run_in_threadpool(cases.view_at, case_id, when.as_of, when.known_at, key, reader)
    return JSONResponse(view)


@router.get("", response_model=CasesPublic, responses=LIST_ERRORS)
def list_cases(
    key: Caller,
    reader: ReaderDep,
    cases: CasesDep,
    status: Literal[
        "unknown",
        "held",
        "hospitalised",
        "released",
        "repatriated",
        "escaped",
        "deceased",
        "remains_returned",
        "closed",
    ]
    | None = None,
    held_by: Party | None = None,
    nationality: Annotated[str | None, Query(pattern=r"^([A-Z]{2}|unknown|withheld)$")] = None,
    category: Literal["prisoner_of_war", "civilian_internee", "detained_person", "missing_person"]
    | None = None,
    negotiation: UUID | None = None,
    disputed: bool | None = None,
    q: Annotated[Text | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    when: WhenDep = None,
) -> dict[str, Any]:
    """Case views, filtered; q finds names and aliases across spellings and scripts;
    as_of and known_at give the register as it stood then."""
    filters = {
        "negotiation": negotiation,
        "status": status,
        "held_by": held_by,
        "nationality": nationality,
        "category": category,
        "disputed": disputed,
    }
    items, next_cursor = cases.list_cases(filters, q, limit, cursor, when, key, reader)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{case_id}/history", response_model=HistoryPublic, responses=ERRORS)
def history(case_id: UUID, key: Caller, reader: ReaderDep, cases: CasesDep) -> dict[str, Any]:
    """Every event of the case in order, oldest first, for auditors."""
    return cases.history(case_id, key, reader)


@router.get(
    "/{case_id}/export",
    responses={200: {"content": {"application/x-ndjson": {}}}, **ERRORS},
    response_class=StreamingResponse,
)
def export_case(case_id: UUID, key: Caller, reader: ReaderDep, cases: CasesDep) -> Response:
    """One case file: the case's events with their chain links, the head and the latest
    checkpoint, as JSON Lines (verify it with `casebook verify --export FILE`). For
    auditors and the organisation that owns the case: it carries the stored events
    whole, with the ids of the owner's negotiations and exchanges (403 for an
    organisation the case is shared with)."""
    return SpooledResponse(
        spooled(cases.export(case_id, key, reader)),  # CaseNotFound (404) first
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}.jsonl"'},
    )


def spooled(lines: Iterator[str]) -> IO[bytes]:
    """Write the lines whole to a temporary file (memory up to 1 MB, then disk), so
    that the database snapshot they are read from is closed before the first byte is
    sent: a client that reads slowly, or never, holds a file, not a connection."""
    spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - the response closes it
    try:
        with contextlib.closing(lines):
            for line in lines:
                spool.write(line.encode())
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


class SpooledResponse(Response):
    """A spooled file sent in pieces, and closed when the answer ends however it ends
    (sent, or abandoned by a client that went away or stopped reading)."""

    def __init__(self, spool: IO[bytes], media_type: str, headers: dict[str, str]):
        super().__init__(media_type=media_type, headers=headers)
        self.spool = spool
        del self.headers["content-length"]  # sent in pieces (chunked)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.spool:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            while chunk := self.spool.read(1 << 16):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


@router.post(
    "/{case_id}/shares", status_code=201, response_model=CasePublic, responses=WRITE_ERRORS
)
def share_case(
    case_id: UUID,
    body: ShareCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    cases: CasesDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Share the case with another organisation, for a stated purpose (recorded as a
    fact of the case). Only the organisation that owns the case may share it."""
    expected = expected_version(if_match, None)
    # The condition joins the digest only when given: retries of shares recorded before
    # If-Match was taken here still match their first request.
    condition = [] if expected is None else [expected]
    idem = idempotency(idempotency_key, "share", str(case_id), body.org, body.purpose, *condition)
    written = register.share_case(ShareCase(case_id, body.org, body.purpose, expected), key, idem)
    return answer_case(cases.answer(written, key, reader), written)


@router.delete(
    "/{case_id}/shares/{org}", status_code=200, response_model=CasePublic, responses=WRITE_ERRORS
)
def end_share(
    case_id: UUID,
    org: Annotated[str, Path(min_length=1, max_length=100, pattern=ORG)],
    key: Caller,
    register: RegisterDep,
    cases: CasesDep,
    if_match: IfMatch = None,
) -> JSONResponse:
    """End the case's share with an organisation (recorded as a fact of the case)."""
    written = register.end_share(
        EndShare(case_id, org, None, expected_version(if_match, None)), key
    )
    view = cases.answer(written, key)
    return JSONResponse(view, headers={"ETag": f'"{written.version}"'})


@router.post("/{case_id}/erase", status_code=200, response_model=CasePublic, responses=WRITE_ERRORS)
def erase_person(
    case_id: UUID,
    body: EraseCreate,
    key: Caller,
    reader: ReaderDep,
    register: RegisterDep,
    cases: CasesDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Erase the person's identifying data for good, on a lawful request (admins of
    the organisation that owns the case). Their key is destroyed, and the keys of the
    negotiation list entries tied to them: names, dates, notes and every other field
    sealed with those keys become unreadable in the views, the history, searches,
    negotiations, exports and replays. The case's non-personal history stays and the
    hash chain still verifies. Recorded as the fact `erased`; the case then takes no
    new facts. Not reached: backups, and events recorded in clear before per-person
    encryption existed (see the README's data protection section)."""
    expected = expected_version(if_match, None)
    idem = idempotency(idempotency_key, "erase", str(case_id), body.reason, expected)
    written = register.erase_case(EraseCase(case_id, body.reason, expected), key, idem)
    return answer_case(cases.answer(written, key, reader), written)
