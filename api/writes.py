"""What every write route shares: conditional writes, idempotent retries, answers."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.responses import JSONResponse

from api.problems import Problem
from api.schemas import problems
from domain.ports import Written
from infrastructure.idempotency import Idempotency, request_hash

WRITE_ERRORS = problems(
    (400, "the body is not JSON"),
    401,
    403,
    404,
    422,
    413,
    (409, "version-conflict or invalid-transition: nothing was recorded"),
    (503, "busy: nothing was recorded; retry after Retry-After seconds"),
)
_IF_MATCH = re.compile(r'^"(\d{1,18})"$')

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="a retried POST with the same key returns the first answer",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(\*|"\d{1,18}")$',
        description='"<version>" (the ETag): write only at that version',
    ),
]


def refuse_if_match(
    if_match: Annotated[str | None, Header(alias="If-Match", include_in_schema=False)] = None,
) -> None:
    """For routes that create a record (or record several at once): there is no version
    for If-Match to be about, so it is refused rather than silently ignored (a client
    that sends it expects it to guard something). Use it as
    ``dependencies=[NoIfMatch]``."""
    if if_match is not None:
        raise Problem(
            422,
            "invalid-input",
            "If-Match is not taken here: this route creates a record",
            errors=[{"field": "If-Match", "message": "not taken by this route"}],
        )


NoIfMatch = Depends(refuse_if_match)


def idempotency(key: str | None, *parts: Any) -> Idempotency | None:
    return None if key is None else Idempotency(key, request_hash(*parts))


def answer(body: Any, written: Written, location: str) -> JSONResponse:
    """A write's answer: its body, Location, and the written record's version as ETag."""
    return JSONResponse(
        body,
        status_code=written.status_code,
        headers={"Location": f"{location}/{written.id}", "ETag": f'"{written.version}"'},
    )


def expected_version(if_match: str | None, in_body: int | None) -> int | None:
    """The version a write is conditional on: If-Match (a strong ETag, or * for any)
    or expected_version in the body; both given must agree."""
    header_version = None
    if if_match is not None and if_match.strip() != "*":
        found = _IF_MATCH.match(if_match.strip())
        if found is None:
            raise Problem(
                422,
                "invalid-input",
                'If-Match must be the ETag of what is written, such as "3" (weak tags never match)',
                errors=[{"field": "If-Match", "message": 'must be "<version>" or *'}],
            )
        header_version = int(found.group(1))
    if header_version is not None and in_body is not None and header_version != in_body:
        raise Problem(
            422,
            "invalid-input",
            "If-Match and expected_version disagree",
            errors=[{"field": "expected_version", "message": "differs from If-Match"}],
        )
    return header_version if header_version is not None else in_body
