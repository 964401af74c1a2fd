"""Audit: verification of the hash chain, signed checkpoints of it, and the read audit."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema

from api.deps import AuditDep, Caller, StoreDep
from api.problems import Problem
from api.schemas import LINE_PATTERN, Strict, problems
from api.writes import NoIfMatch
from domain.values import check_text
from infrastructure.checkpoints import Checkpoint, StaleSigningKey

router = APIRouter(prefix="/audit", tags=["audit"])

Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]*$", max_length=128)]


class VerificationPublic(BaseModel):
    ok: bool
    events: int
    head: str
    checkpoints: int = Field(description="signed checkpoints the chain agrees with")
    keys: int | None = Field(
        default=None, description="signing keys reached from the trusted one, in order"
    )
    first_broken_position: int | None = None
    problem: str | None = None
    note: str | None = Field(default=None, description="what the check could not establish")


class CheckpointPublic(Strict):
    """A signed checkpoint: keep it, and verify the register against it later."""

    position: int = Field(ge=0)
    head: Hex
    made_at: Annotated[
        str,
        StringConstraints(max_length=40),
        AfterValidator(check_text),
        WithJsonSchema({"type": "string", "maxLength": 40, "pattern": LINE_PATTERN}),
    ]
    public_key: Hex
    signature: Hex
    key_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]*$", max_length=16)] | None = Field(
        default=None, description="of public_key, which is what was signed"
    )


class CheckpointsPublic(BaseModel):
    items: list[CheckpointPublic]
    next_cursor: str | None


class KeptCheckpoints(Strict):
    checkpoints: list[CheckpointPublic] = Field(max_length=1000)


@router.get(
    "/verify",
    response_model=VerificationPublic,
    response_model_exclude_none=True,
    responses=problems(401, 403),
)
async def verify(key: Caller, audit: AuditDep) -> dict[str, Any]:
    """Check the whole log's hash chain and the stored checkpoints; ok false names the
    first broken position."""
    return (await run_in_threadpool(audit.verify)).as_dict()


@router.post(
    "/verify",
    response_model=VerificationPublic,
    response_model_exclude_none=True,
    responses=problems((400, "the body is not JSON"), 401, 403, 422),
)
async def verify_against(body: KeptCheckpoints, key: Caller, audit: AuditDep) -> dict[str, Any]:
    """The same, also against checkpoints an auditor kept: finds a full rewrite."""
    kept = [Checkpoint.from_dict(c.model_dump()) for c in body.checkpoints]  # key_id: derived
    return (await run_in_threadpool(audit.verify, kept)).as_dict()


@router.get(
    "/checkpoints", response_model=CheckpointsPublic, responses=problems(400, 401, 403, 422)
)
def list_checkpoints(
    key: Caller,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Signed checkpoints, newest first."""
    items, next_cursor = audit.checkpoints_page(limit, cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post(
    "/checkpoints",
    status_code=201,
    response_model=CheckpointPublic,
    responses=problems(401, 403, 422, (503, "the signing key was rotated: restart needed")),
    dependencies=[NoIfMatch],
)
def make_checkpoint(key: Caller, store: StoreDep) -> dict[str, Any]:
    """Sign the chain's head now."""
    try:
        return store.checkpoint().shown()
    except StaleSigningKey:
        raise Problem(
            503,
            "signing-key-rotated",
            "the signing key was rotated since this service started: it signs no "
            "checkpoint until restarted with the key in force",
        ) from None


class PublicKey(BaseModel):
    public_key: str = Field(description="hex of the raw Ed25519 public key")
    key_id: str


@router.get("/key", response_model=PublicKey, responses=problems(401, 403, 404))
def public_key(key: Caller, store: StoreDep) -> dict[str, str]:
    """The installation's checkpoint-signing public key: keep it with your checkpoints,
    and trust checkpoints signed with it only."""
    signer = store.signer
    if signer is None:
        raise Problem(404, "not-found", "this service signs no checkpoints")
    return {"public_key": signer.public_key, "key_id": signer.key_id}


class Statement(BaseModel):
    statement: str = Field(
        description="canonical JSON announcing the key; its ASCII bytes are what was signed"
    )
    outgoing_signature: str = Field(description="Ed25519, base64, by the key before this one")
    incoming_signature: str = Field(description="Ed25519, base64, by this key itself")


class SigningKeyPublic(BaseModel):
    sequence: int = Field(description="0 for the first key, then one more at each rotation")
    public_key: str = Field(description="hex of the raw Ed25519 public key")
    fingerprint: str = Field(description="SHA-256 of the raw public key, hex")
    key_id: str = Field(description="the fingerprint's first 16 hex digits")
    in_force_from: int = Field(description="the chain position from which it signs")
    in_force_until: int | None = Field(description="the position at which the next took over")
    current: bool
    first_checkpoint: int | None = Field(description="position of the first it signed")
    last_checkpoint: int | None = Field(description="position of the last it signed")
    announcement: Statement | None = Field(description="none for the first key")


class SigningKeysPublic(BaseModel):
    items: list[SigningKeyPublic]


@router.get("/keys", response_model=SigningKeysPublic, responses=problems(401, 403))
def signing_keys(key: Caller, audit: AuditDep) -> dict[str, Any]:
    """Every checkpoint-signing key, oldest first, with the signed statement that
    announced it: check them offline from a key you kept (the register's list alone
    proves nothing)."""
    return {"items": audit.keys()}


class AccessRecord(BaseModel):
    case_id: str
    read_at: str
    key: str
    org: str
    role: str
    route: str = Field(description="method and route template, e.g. GET /cases/{case_id}")


class AccessPublic(BaseModel):
    items: list[AccessRecord]
    next_cursor: str | None
    pruned_before: str | None = Field(
        description="reads before this instant may have been removed by `casebook prune` "
        "(CASEBOOK_READ_AUDIT_DAYS); from it on the list is complete. null: none ever were"
    )


@router.get(
    "/access",
    response_model=AccessPublic,
    responses=problems(401, 403, 422, (400, "a cursor this list did not give out")),
)
def access_log(
    key: Caller,
    audit: AuditDep,
    case_id: UUID,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Who read the case's personal data, when, and through which route (key name and
    organisation), oldest first: every answer that carries it is recorded before it
    leaves."""
    items, next_cursor, pruned = audit.reads_of(case_id, limit, cursor)
    pruned_before = None if pruned is None else pruned.astimezone(UTC).isoformat()
    return {"items": items, "next_cursor": next_cursor, "pruned_before": pruned_before}
