"""RFC 9457 problem details for every error, mapped from domain errors in one place.

Details never carry personal data: they name fields, versions and rules, not values.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import NotFound, NotOwner, VersionConflict
from domain.exchange import ExchangeRefused
from domain.facts import FACT_TYPES, FactError
from domain.identity import IdentityError
from domain.negotiation import NegotiationError
from domain.rules import InvalidTransition
from infrastructure.faults import StorageFault
from infrastructure.idempotency import IdempotencyMismatch
from infrastructure.querying import BadCursor
from infrastructure.readlog import ReadNotRecorded

MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    431: "Request header fields too large",
    408: "Request timeout",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
    507: "Insufficient storage",
}


class Problem(Exception):
    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int, slug: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"/problems/{slug}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def fault_response(fault: StorageFault) -> JSONResponse:
    """A storage fault's answer: 503 or 507, with Retry-After, naming the fault only."""
    return problem_response(
        fault.status, fault.slug, f"{fault.detail}; retry shortly", headers={"Retry-After": "1"}
    )


def field_errors(errors: dict[str, str]) -> list[dict[str, str]]:
    return [{"field": k, "message": v} for k, v in errors.items()]


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ())]
        if loc[:1] == ["body"]:
            loc = loc[1:]
            # A fact's type shows up as the first step (the union's tag): drop it.
            if loc and loc[0] in FACT_TYPES:
                loc = loc[1:]
        out.append({"field": ".".join(loc) or "body", "message": error.get("msg", "invalid")})
    return out


def install(app: FastAPI) -> None:
    """Map every error the service can raise to a problem response."""

    @app.exception_handler(Problem)
    def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.slug, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            422, "invalid-input", "the request is not valid", errors=_validation_errors(exc)
        )

    @app.exception_handler(FactError)
    @app.exception_handler(IdentityError)
    def _fact(_: Request, exc: FactError | IdentityError) -> JSONResponse:
        return problem_response(
            422, "invalid-input", "the request is not valid", errors=field_errors(exc.errors)
        )

    @app.exception_handler(NegotiationError)
    def _negotiation(_: Request, exc: NegotiationError) -> JSONResponse:
        return problem_response(
            422, "invalid-input", "the request is not valid", errors=field_errors(exc.errors)
        )

    @app.exception_handler(NotOwner)
    def _not_owner(_: Request, exc: NotOwner) -> JSONResponse:
        return problem_response(403, "forbidden", str(exc))

    @app.exception_handler(NotFound)
    def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem_response(404, "not-found", f"no {exc.what} with this id")

    @app.exception_handler(ExchangeRefused)
    def _exchange_refused(_: Request, exc: ExchangeRefused) -> JSONResponse:
        kinds = {p.kind for p in exc.problems}
        slug = "version-conflict" if kinds == {"version-conflict"} else "invalid-transition"
        return problem_response(
            409,
            slug,
            f"{len(exc.problems)} of the cases cannot take part in this exchange; "
            "nothing was recorded",
            cases=[p.to_dict() for p in exc.problems],
        )

    @app.exception_handler(VersionConflict)
    def _conflict(_: Request, exc: VersionConflict) -> JSONResponse:
        return problem_response(
            409,
            "version-conflict",
            f"it is at version {exc.current}, not {exc.expected}; read it again and resend",
            headers={"ETag": f'"{exc.current}"'},
            current_version=exc.current,
        )

    @app.exception_handler(InvalidTransition)
    def _transition(_: Request, exc: InvalidTransition) -> JSONResponse:
        return problem_response(
            409, "invalid-transition", exc.detail, conflicts_with=exc.conflicts_with
        )

    @app.exception_handler(StorageFault)
    def _fault(_: Request, exc: StorageFault) -> JSONResponse:
        return fault_response(exc)

    @app.exception_handler(ReadNotRecorded)
    def _unrecorded(_: Request, exc: ReadNotRecorded) -> JSONResponse:
        return problem_response(
            503,
            "read-not-recorded",
            "the read could not be recorded in the read audit, so nothing is shown; retry shortly",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(IdempotencyMismatch)
    def _idem(_: Request, exc: IdempotencyMismatch) -> JSONResponse:
        return problem_response(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request",
            errors=[{"field": "Idempotency-Key", "message": "used before for another request"}],
        )

    @app.exception_handler(BadCursor)
    def _cursor(_: Request, exc: BadCursor) -> JSONResponse:
        return problem_response(
            400, "bad-cursor", str(exc), errors=[{"field": "cursor", "message": str(exc)}]
        )

    @app.exception_handler(StarletteHTTPException)
    def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = TITLES.get(exc.status_code, "error").lower().replace(" ", "-")
        detail = exc.detail if isinstance(exc.detail, str) else slug
        return problem_response(exc.status_code, slug, detail, headers=exc.headers)
