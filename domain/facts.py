"""The facts that make up a person's story, and what each one carries.

``FACT_TYPES`` is the one table of fact types: their fields, which are required, and
what kind of value each field holds. The API builds its request schema from it and the
aggregate validates against it, so a field added here is a field everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from domain.identity import ErasedIdentity, Identity
from domain.values import ALPHA2, MAX_LONG_TEXT, MAX_TEXT, check_text, parse_day

SOURCE_KINDS = ("party", "icrc", "family", "media", "court", "ngo", "other")
CLASSIFICATIONS = ("prisoner_of_war", "civilian_internee", "criminal_detainee", "other")
WILLINGNESS = ("willing", "unwilling")
CATEGORIES = ("prisoner_of_war", "civilian_internee", "detained_person", "missing_person")

# Field kinds: how a field's value is checked.
PARTY = "party"  # ISO 3166-1 alpha-2 code
ACTOR = "actor"  # a party code or an organisation named as text (ICRC, CTA)
TEXT = "text"
LONG_TEXT = "long_text"
DATE = "date"
VERSION = "version"
CLASSIFICATION = "classification"
RESULT = "result"

FIELD_KINDS: dict[str, str] = {
    "by_party": PARTY,
    "to_party": PARTY,
    "held_by": PARTY,
    "place": TEXT,
    "to_place": TEXT,
    "condition": TEXT,
    "by": ACTOR,
    "to": ACTOR,
    "classification": CLASSIFICATION,
    "basis": LONG_TEXT,
    "charge": LONG_TEXT,
    "sentence_ends_on": DATE,
    "result": RESULT,
    "cause": LONG_TEXT,
    "channel": TEXT,
    "text": LONG_TEXT,
    "version": VERSION,
    "reason": LONG_TEXT,
    "org": TEXT,
    "purpose": LONG_TEXT,
}


@dataclass(frozen=True)
class FactType:
    """One row of the table: a fact type, its fields and whether it needs ``occurred_on``."""

    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    dated: bool = True  # False: acts when recorded, occurred_on optional
    one_of: tuple[str, ...] = ()  # at least one of these optional fields must be given
    doc: str = ""

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


def _t(name: str, req: str = "", opt: str = "", **kw: Any) -> FactType:
    return FactType(name, tuple(req.split()), tuple(opt.split()), **kw)


FACT_TYPES: dict[str, FactType] = {
    t.name: t
    for t in (
        _t("captured", "by_party", "place", doc="Taken into a party's custody."),
        _t("held", "by_party", "place", doc="Custody by a party confirmed at a place."),
        _t(
            "transferred",
            "by_party",
            "to_place to_party",
            one_of=("to_place", "to_party"),
            doc="Moved to another place, or handed to another party (to_party).",
        ),
        _t("hospitalised", "", "place condition", doc="Admitted to hospital; custody goes on."),
        _t("visited", "by", "place held_by", doc="Seen alive (in custody when held_by is given)."),
        _t("holding_acknowledged", "by_party", doc="A party says it holds the person."),
        _t("holding_denied", "by_party", doc="A party says it does not hold the person."),
        _t("classified", "by_party classification", "basis", doc="A party's claim of status."),
        _t("charged", "by_party charge", doc="Criminal proceedings opened (GC III Art. 119(5))."),
        _t("sentenced", "by_party charge", "sentence_ends_on", doc="A sentence pronounced."),
        _t("willingness_verified", "by result", doc="Private interview on repatriation."),
        _t("released", "by_party to_party", doc="Unilateral release, outside any exchange."),
        _t("repatriated", "to_party", "place", doc="Returned to a party."),
        _t("escaped", "", "by_party", doc="Escaped from custody (by_party: from whom)."),
        _t("recaptured", "by_party", "place", doc="Taken back into custody after an escape."),
        _t("died", "", "place cause", doc="Death asserted by the source."),
        _t("remains_returned", "to_party", "place", doc="Remains handed to a party."),
        _t("seen", "", "place", doc="A missing person reported alive."),
        _t("family_informed", "", "channel", doc="The family was told."),
        _t("identity_updated", doc="Identity corrections and new spellings (aliases)."),
        _t("transmitted", "to", "channel", doc="Information sent (GC III Art. 122)."),
        _t("note", "text", dated=False, doc="A case worker's note."),
        _t("retracted", "version reason", dated=False, doc="A recorded fact was wrong."),
        _t("closed", "reason", dated=False, doc="The case is closed."),
        _t("reopened", "reason", dated=False, doc="A closed case is opened again."),
    )
}

OPENED = "opened"  # the first event of every case; not recordable through /events

# What an exchange records on each case in it (``domain.exchange``). These are facts of
# the case like any other (they appear in its history, and can be retracted), but they
# are recorded only through ``POST /exchanges``, together with the exchange and every
# other case in it, never one by one through ``/events``.
HANDED_OVER = "handed_over"
HANDOVER_REFUSED = "handover_refused"
HANDOVER_ABSENT = "handover_absent"
HANDOVER_TYPES: dict[str, FactType] = {
    t.name: t
    for t in (
        _t(
            HANDED_OVER,
            "by_party to_party exchange_id",
            "negotiation_id place willingness",
            doc="Handed over in an exchange: repatriated to the party of one's nationality, "
            "released to any other.",
        ),
        _t(
            HANDOVER_REFUSED,
            "by_party to_party exchange_id",
            "negotiation_id place refused_by",
            doc="Listed for a handover that did not happen: the person would not go, or the "
            "receiving side would not take them. Custody goes on.",
        ),
        _t(
            HANDOVER_ABSENT,
            "by_party to_party exchange_id",
            "negotiation_id place",
            doc="Listed for a handover but not brought to it. Custody goes on.",
        ),
    )
}
REFUSERS = ("person", "receiving_party", "handing_party")

# Who may see and change the case besides the organisation that opened it: recorded as
# facts of the case (so its history says who was given access, when, why and by whom)
# through ``POST /cases/{id}/shares`` and ``DELETE /cases/{id}/shares/{org}`` only.
SHARED = "shared"
SHARE_ENDED = "share_ended"
ACCESS_TYPES: dict[str, FactType] = {
    t.name: t
    for t in (
        _t(SHARED, "org purpose", dated=False, doc="The case is shared with an organisation."),
        _t(SHARE_ENDED, "org", "reason", dated=False, doc="A share of the case ends."),
    )
}
# The register's erasure of a person's identifying data (``POST /cases/{id}/erase``).
ERASED = "erased"
ERASURE_TYPES: dict[str, FactType] = {
    ERASED: _t(ERASED, "reason", dated=False, doc="The person's identifying data is erased.")
}
ALL_FACT_TYPES: dict[str, FactType] = {
    **FACT_TYPES,
    **HANDOVER_TYPES,
    **ACCESS_TYPES,
    **ERASURE_TYPES,
}

# Fields of a fact's data that are personal data, sealed with the person's key: free
# text (notes, causes, charges, reasons, purposes) and a state of health. Places,
# parties, dates and classifications stay in clear: they identify nobody on their own,
# and the status views and reports are made of them.
PERSONAL_DATA = frozenset(
    {name for name, kind in FIELD_KINDS.items() if kind == LONG_TEXT} | {"condition"}
)
# Fields of a source that may name a person (a relative, a witness): sealed too.
PERSONAL_SOURCE = frozenset({"name", "reference"})


class FactError(ValueError):
    """A fact that cannot be right as given: names each bad field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Source:
    """Who says so. A party's claim is recorded as that party's, never as plain truth."""

    kind: str
    name: str | None = None
    reference: str | None = None
    reported_on: str | None = None

    @classmethod
    def parse(cls, data: Any) -> Source:
        if not isinstance(data, dict):
            raise FactError({"source": "must be an object with at least 'kind'"})
        errors: dict[str, str] = {}
        if data.get("kind") not in SOURCE_KINDS:
            errors["source.kind"] = f"must be one of {', '.join(SOURCE_KINDS)}"
        text: dict[str, str | None] = {"name": None, "reference": None}
        for key in text:
            value = data.get(key)
            if value is None:
                continue
            try:
                text[key] = check_text(value) if isinstance(value, str) else _not_text()
            except ValueError as e:
                errors[f"source.{key}"] = str(e)
        reported_on = data.get("reported_on")
        if reported_on is not None:
            try:
                parse_day(reported_on)
            except ValueError as e:
                errors["source.reported_on"] = str(e)
        for key in sorted(set(data) - {"kind", "name", "reference", "reported_on"}):
            errors[f"source.{key}"] = "unknown field"
        if errors:
            raise FactError(errors)
        return cls(data["kind"], text["name"], text["reference"], reported_on)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class Fact:
    """One recorded event of a case, as the rules and the state derivation see it.

    ``occurred_on`` is when it happened in the world (for undated types, the day it was
    recorded); ``recorded_at`` is when the register stored it, assigned under the write
    lock so that it never goes backwards.
    """

    version: int
    type: str
    occurred_on: date
    recorded_at: datetime
    source: dict[str, Any]
    recorded_by: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    person: Identity | None = None  # opened and identity_updated only

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def redacted(self) -> Fact:
        """The fact as it reads once the person is erased: no personal data left."""
        return replace(
            self,
            source={k: v for k, v in self.source.items() if k not in PERSONAL_SOURCE},
            data={k: v for k, v in self.data.items() if k not in PERSONAL_DATA},
            person=None if self.person is None else ErasedIdentity.of(self.person),
        )


def _not_text() -> str:
    raise ValueError("must be a string")


def parse_occurred_on(value: Any, fact_type: FactType, today: date) -> date | None:
    """The world date of a fact; at most one day ahead of ``today`` (time zones)."""
    if value is None:
        if fact_type.dated:
            raise FactError({"occurred_on": "required for this type of fact"})
        return None
    try:
        day = parse_day(value)
    except ValueError as e:
        raise FactError({"occurred_on": str(e)}) from None
    if day > today + timedelta(days=1):
        raise FactError({"occurred_on": "must not be in the future"})
    return day


def parse_fields(fact_type: FactType, data: dict[str, Any]) -> dict[str, Any]:
    """Check the type-specific fields of a fact, as they came (no schema before: each
    field's kind, then ``fact_fields``); raise ``FactError`` naming every bad one."""
    errors: dict[str, str] = {}
    checked = dict(data)
    for name in fact_type.fields:
        if data.get(name) is None:
            continue
        try:
            checked[name] = _check(FIELD_KINDS[name], data[name])
        except ValueError as e:
            errors[name] = str(e)
    try:
        values = fact_fields(fact_type, checked)
    except FactError as e:
        errors = {**e.errors, **errors}
        values = {}
    if errors:
        raise FactError(errors)
    return values


def fact_fields(fact_type: FactType, data: dict[str, Any]) -> dict[str, Any]:
    """The type-specific fields of a fact whose kinds are checked already (by the API's
    schema, built from this table, or by ``parse_fields``): only the rules a schema
    cannot say: required fields, one of several, and dates that exist."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in fact_type.fields:
        value = data.get(name)
        if value is None:
            if name in fact_type.required:
                errors[name] = "required"
            continue
        if FIELD_KINDS[name] == DATE:
            try:
                parse_day(value)
            except ValueError as e:
                errors[name] = str(e)
                continue
        values[name] = value
    if fact_type.one_of and not any(n in values for n in fact_type.one_of):
        errors[fact_type.one_of[0]] = f"give at least one of {', '.join(fact_type.one_of)}"
    if errors:
        raise FactError(errors)
    return values


def _check(kind: str, value: Any) -> Any:
    if kind == VERSION:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError("must be a positive integer version")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    value = check_text(value, MAX_LONG_TEXT if kind == LONG_TEXT else MAX_TEXT, kind == LONG_TEXT)
    if kind == PARTY and not ALPHA2.match(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 code such as AM or AZ")
    if kind == CLASSIFICATION and value not in CLASSIFICATIONS:
        raise ValueError(f"must be one of {', '.join(CLASSIFICATIONS)}")
    if kind == RESULT and value not in WILLINGNESS:
        raise ValueError(f"must be one of {', '.join(WILLINGNESS)}")
    if kind == DATE:
        parse_day(value)
    return value
