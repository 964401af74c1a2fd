"""Request and response schemas. The fact schemas are built from ``domain.facts.FACT_TYPES``
so the API documents exactly the fields the domain accepts. Unknown fields are refused.

Dates are documented as ``format: date`` but kept as strings here, so that the domain's
one parser gives the error message (pydantic would accept a number as a date).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    create_model,
)

from domain import facts
from domain.facts import CATEGORIES, FACT_TYPES, REFUSERS, SOURCE_KINDS
from domain.negotiation import PRINCIPLES
from domain.values import MAX_LONG_TEXT, MAX_TEXT, check_text

Day = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"),
    WithJsonSchema({"type": "string", "format": "date", "example": "2021-07-03"}),
]
Party = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), Field(examples=["AZ"])]

# The one text rule (``domain.values.check_text``) on every free-text field of every
# request: a line (names, places, titles, a search) refuses control characters,
# bidirectional overrides and line separators; long text (notes, reasons, purposes,
# descriptions) keeps its line breaks and tabs. tests/e2e/test_text_rule.py walks the
# OpenAPI document and tries every string field, so a new one cannot forget it.
# The patterns document the rule for clients (JSON Schema has no Unicode categories,
# so they name the common characters only); check_text enforces it.
_REFUSED = r"\x7f-\x9f\xad\u200b\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
LINE_PATTERN = rf"^[^\x00-\x1f{_REFUSED}]+$"
LONG_PATTERN = rf"^[^\x00-\x08\x0b-\x1f{_REFUSED}]+$"
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT),
    AfterValidator(lambda v: check_text(v, MAX_TEXT)),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": LINE_PATTERN}
    ),
]
LongText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_LONG_TEXT),
    AfterValidator(lambda v: check_text(v, MAX_LONG_TEXT, multiline=True)),
    WithJsonSchema(
        {"type": "string", "minLength": 1, "maxLength": MAX_LONG_TEXT, "pattern": LONG_PATTERN}
    ),
]

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


class ShareCreate(Strict):
    """Share a case with another organisation."""

    org: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")]
    purpose: LongText


class EraseCreate(Strict):
    """Erase a person's identifying data, on a lawful request. The reason stays in
    clear in the case's history (it outlives the person's key): give the legal ground
    and a reference, not the person's details."""

    reason: LongText


class ErasedOut(BaseModel):
    at: str
    reason: str | None
    version: int


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
    erased: ErasedOut | None = Field(
        default=None, description="set once the person's identifying data was erased"
    )
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


class DirectionCount(BaseModel):
    from_party: str
    to_party: str
    exchanges: int
    handed_over: int
    refused: int
    absent: int


class ReturnedCount(BaseModel):
    negotiation_id: str
    returned: int = Field(description="handed over to the party of their nationality")
    handed_over: int = Field(description="handed over to any party, a third country too")


class SummaryPublic(BaseModel):
    group_by: str
    groups: list[SummaryGroup]
    total: int
    exchanges: list[DirectionCount]
    returned_by_negotiation: list[ReturnedCount]
    as_of: str | None = None
    known_at: str | None = None


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]


# ---- negotiations and exchanges -------------------------------------------------------

# Ids in a JSON body arrive as strings: taken as UUIDs despite the models' strict mode.
Id = Annotated[UUID, Field(strict=False, examples=["0b6a4b7e-6a0e-4d0e-9b1e-3f0f4f5e6a7b"])]
Mediator = Annotated[Text, Field(examples=["RU", "ICRC", "OSCE"])]
Version = Annotated[int, Field(ge=1, strict=True)]
MAX_ENTRIES = 20_000  # names on one list, people in one exchange (1,000-for-1,000 is 2,000)


class NegotiationCreate(Strict):
    """Open a negotiation between two or more parties."""

    title: Text
    parties: list[Party] = Field(min_length=2, max_length=50)
    mediators: list[Mediator] = Field(default_factory=list, max_length=50)
    principle: Literal[PRINCIPLES]  # type: ignore[valid-type]
    opened_on: Day


class ListEntryIn(Strict):
    """A person on a list: by ``case_id``, or by ``name`` with what else the list says."""

    case_id: Id | None = None
    name: Text | None = None
    date_of_birth: Text | None = Field(default=None, description='YYYY-MM-DD or "unknown"')
    nationality: (
        Annotated[str, StringConstraints(pattern=r"^([A-Z]{2}|unknown|withheld)$")] | None
    ) = None


class ListCreate(Strict):
    """A party's list, or a new version of it (which replaces the party's current one)."""

    submitted_by: Party
    submitted_on: Day
    entries: list[ListEntryIn] = Field(max_length=MAX_ENTRIES)
    expected_version: Version | None = None


class MatchConfirm(Strict):
    """A case worker ties an entry of one version of a party's list to a case."""

    party: Party
    entry: Annotated[int, Field(ge=0, strict=True, description="the entry's index, from 0")]
    case_id: Id
    list_version: Version = Field(
        description="the version of the party's list the entry index refers to"
    )


class TransferIn(Strict):
    case_id: Id
    from_party: Party
    to_party: Party


class ConsiderationIn(Strict):
    """What is traded that is not a person: minefield maps, information on graves, a ship."""

    from_party: Party
    to_party: Party
    description: LongText


class AgreementCreate(Strict):
    """What the parties agreed: transfers of people, and consideration."""

    agreed_on: Day
    transfers: list[TransferIn] = Field(default_factory=list, max_length=MAX_ENTRIES)
    consideration: list[ConsiderationIn] = Field(default_factory=list, max_length=100)
    source: SourceIn | None = None
    expected_version: Version | None = None


class HandoverIn(Strict):
    case_id: Id
    from_party: Party
    to_party: Party
    outcome: Literal["handed_over", "refused", "absent"]
    refused_by: Literal[REFUSERS] | None = None  # type: ignore[valid-type]
    expected_version: Version | None = None


class AnnouncedIn(Strict):
    """A party's public figure for the exchange, kept beside what was recorded: of the
    people handed over from_party to to_party when given, else of all handed over."""

    by_party: Party
    count: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    from_party: Party | None = None
    to_party: Party | None = None
    source: SourceIn | None = None


class ExchangeCreate(Strict):
    """One handover on one day, inside a negotiation or not."""

    negotiation_id: Id | None = None
    agreement: Version | None = Field(default=None, description="the agreement it carries out")
    occurred_on: Day
    place: Text | None = None
    mediators: list[Mediator] = Field(default_factory=list, max_length=50)
    handovers: list[HandoverIn] = Field(min_length=1, max_length=MAX_ENTRIES)
    consideration: list[ConsiderationIn] = Field(default_factory=list, max_length=100)
    source: SourceIn
    announced: list[AnnouncedIn] = Field(default_factory=list, max_length=20)


class Open(BaseModel):
    """An answer whose documented keys are always there; more may be."""

    model_config = ConfigDict(extra="allow")


class NegotiationPublic(Open):
    id: str
    version: int
    title: str
    parties: list[str]
    mediators: list[str]
    principle: str
    opened_on: str
    lists: dict[str, Any]


class NegotiationsPublic(BaseModel):
    items: list[NegotiationPublic]
    next_cursor: str | None


class Reconciliation(Open):
    on_every_list: list[dict[str, Any]]
    only_on: dict[str, list[dict[str, Any]]]
    unmatched: list[dict[str, Any]]
    agreed: list[dict[str, Any]]
    handed_over: list[dict[str, Any]]
    refused: list[dict[str, Any]]
    absent: list[dict[str, Any]]
    outstanding: list[dict[str, Any]]


class NegotiationFull(NegotiationPublic):
    agreements: list[dict[str, Any]]
    exchanges: list[dict[str, Any]]
    reconciliation: Reconciliation


class ExchangePublic(Open):
    id: str
    negotiation_id: str | None
    occurred_on: str
    handovers: list[dict[str, Any]]
    consideration: list[dict[str, Any]]
    announced: list[dict[str, Any]]
    recorded: dict[str, Any]


class ExchangesPublic(BaseModel):
    items: list[ExchangePublic]
    next_cursor: str | None
