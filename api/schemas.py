"""Request and response schemas. The fact schemas are built from ``domain.facts.FACT_TYPES``
so the API documents exactly the fields the domain accepts. Unknown fields are refused.

Dates are documented as ``format: date`` but kept as strings here, so that the domain's
one parser gives the error message (pydantic would accept a number as a date).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, create_model

from domain import facts
from domain.facts import CATEGORIES, FACT_TYPES, SOURCE_KINDS
from domain.values import MAX_LONG_TEXT, MAX_TEXT

Day = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"),
    WithJsonSchema({"type": "string", "format": "date", "example": "2021-07-03"}),
]
Party = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(examples=["AZ"])]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LONG_TEXT)]

FIELD_TYPES: dict[str, Any] = {
    facts.PARTY: Party,
    facts.ACTOR: Text,
    facts.TEXT: Text,
    facts.LONG_TEXT: LongText,
    facts.DATE: Day,
    facts.VERSION: Annotated[int, Field(ge=1, strict=True)],
    facts.CLASSIFICATION: Literal[facts.CLASSIFICATIONS],  # type: ignore[valid-type]
    facts.RESULT: Literal[facts.WILLINGNESS],  # type: ignore[valid-type]
}


class Strict(BaseModel):
    """Request bodies: unknown fields refused, and no coercion (true is not 1, "3" is
    not 3): a careless client hears about its mistake instead of having it guessed."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SourceIn(Strict):
    """Who says so."""

    kind: Literal[SOURCE_KINDS]  # type: ignore[valid-type]
    name: Text | None = None
    reference: Text | None = None
    reported_on: Day | None = None


class PersonIn(Strict):
    """Identity: every field may be left out, or be "unknown" or "withheld"."""

    family_name: Text | None = None
    given_names: Text | None = None
    date_of_birth: Text | None = Field(
        default=None, description='YYYY-MM-DD, "unknown" or "withheld"'
    )
    sex: Literal["male", "female", "unknown", "withheld"] | None = None
    nationality: (
        Annotated[str, StringConstraints(pattern=r"^([A-Z]{2}|unknown|withheld)$")] | None
    ) = Field(default=None, description='ISO 3166-1 alpha-2, "unknown" or "withheld"')
    service_number: Text | None = None
    rank: Text | None = None
    place_of_birth: Text | None = None
    father_name: Text | None = None
    mother_maiden_name: Text | None = None
    person_to_inform: Text | None = None
    aliases: list[Text] | None = Field(default=None, max_length=50)


class CaseCreate(Strict):
    """Open a case for one person."""

    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    person: PersonIn
    source: SourceIn


def _fact_model(name: str) -> type[BaseModel]:
    fact_type = FACT_TYPES[name]
    fields: dict[str, Any] = {
        "type": (Literal[name], ...),
        "occurred_on": (Day, ...) if fact_type.dated else (Day | None, None),
        "source": (SourceIn, ...),
        "expected_version": (int | None, Field(default=None, ge=1, strict=True)),
    }
    for field in fact_type.required:
        fields[field] = (FIELD_TYPES[facts.FIELD_KINDS[field]], ...)
    for field in fact_type.optional:
        fields[field] = (FIELD_TYPES[facts.FIELD_KINDS[field]] | None, None)
    if name == "identity_updated":
        for field, info in PersonIn.model_fields.items():
            fields[field] = (info.annotation, info)
    model_name = "Fact" + "".join(p.capitalize() for p in name.split("_"))
    return create_model(  # type: ignore[call-overload, no-any-return]
        model_name, __base__=Strict, __doc__=fact_type.doc, **fields
    )


FACT_MODELS = [_fact_model(name) for name in FACT_TYPES]
FactCreate = Annotated[Union[tuple(FACT_MODELS)], Field(discriminator="type")]  # noqa: UP007


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def problems(*codes: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes, answered as application/problem+json."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        status, description = code if isinstance(code, tuple) else (code, "problem details")
        out[status] = {
            "description": description,
            "content": {"application/problem+json": {"schema": ProblemOut.model_json_schema()}},
        }
    return out


class ClaimOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    by_party: str
    classification: str
    basis: str | None = None
    source: dict[str, Any]
    occurred_on: str
    version: int


class CasePublic(BaseModel):
    """The case view: the status projection, or a replay for as_of / known_at."""

    model_config = ConfigDict(extra="allow")
    id: str
    version: int
    category: str
    person: dict[str, Any]
    status: str
    held_by: str | None
    place: str | None
    last_seen_alive_on: str | None
    classifications: list[ClaimOut]
    disputed: bool
    disputes: list[dict[str, Any]]
    negotiations: list[str]
    updated_at: str | None


class CasesPublic(BaseModel):
    items: list[CasePublic]
    next_cursor: str | None


class HistoryEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: int
    type: str
    occurred_on: str | None
    recorded_at: str
    recorded_by: dict[str, str]
    source: dict[str, Any]
    fields: dict[str, Any]
    retracted: bool
    hash: str | None = Field(description="the event's link in the register's hash chain")


class HistoryPublic(BaseModel):
    case_id: str
    events: list[HistoryEvent]


class SummaryGroup(BaseModel):
    value: str | bool | None
    count: int


class SummaryPublic(BaseModel):
    group_by: str
    groups: list[SummaryGroup]
    total: int
    as_of: str | None = None
    known_at: str | None = None


class Health(BaseModel):
    status: Literal["ok"]
