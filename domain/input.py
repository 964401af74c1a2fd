"""Turning a client's request into validated domain values, naming every bad field."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

from domain.case import NewFact
from domain.exchange import Handover, NewExchange
from domain.facts import (
    FACT_TYPES,
    OPENED,
    FactError,
    Source,
    fact_fields,
    parse_fields,
    parse_occurred_on,
)
from domain.identity import Identity, IdentityError
from domain.values import ALPHA2, MAX_LONG_TEXT, MAX_TEXT, check_text, parse_day

COMMON = {"type", "occurred_on", "source", "expected_version"}


def parse_fact(payload: dict[str, Any], today: date) -> NewFact:
    """Validate ``POST /cases/{id}/events`` content as it came, with no schema before it
    (tests, the bench, a future import): its shape (type, fields, each field's kind),
    then ``new_fact``'s rules. Without ``expected_version``."""
    errors: dict[str, str] = {}
    kind = payload.get("type")
    if kind not in FACT_TYPES:
        hint = "a case is opened with POST /cases" if kind == OPENED else "see the API docs"
        raise FactError({"type": f"unknown fact type ({hint})"})
    fact_type = FACT_TYPES[kind]
    allowed = COMMON | set(fact_type.fields)
    if kind == "identity_updated":
        allowed |= set(Identity.field_names())
    for name in sorted(set(payload) - allowed):
        errors[name] = f"not a field of '{kind}'"
    try:
        data = parse_fields(fact_type, payload)
    except FactError as e:
        errors.update(e.errors)
        data = {}
    try:
        fact = new_fact({**payload, **data}, today)
    except FactError as e:
        raise FactError({**e.errors, **errors}) from None
    if errors:
        raise FactError(errors)
    return fact


def new_fact(payload: dict[str, Any], today: date) -> NewFact:
    """A fact whose shape is checked already (the API's schema, built from the same fact
    table, or ``parse_fact``): only the rules a schema cannot say. The day it occurred
    (a real date, not in the future; closures and reopenings happen when recorded), the
    source, the fields' own rules (``fact_fields``), and for ``identity_updated`` the
    identity's."""
    errors: dict[str, str] = {}
    kind = payload["type"]
    fact_type = FACT_TYPES[kind]
    occurred_on = source = data = person = None
    try:
        occurred_on = parse_occurred_on(payload.get("occurred_on"), fact_type, today)
    except FactError as e:
        errors.update(e.errors)
    if kind in ("closed", "reopened") and occurred_on not in (None, today):
        errors["occurred_on"] = "a case is closed or reopened when it is recorded: leave it out"
    try:
        source = Source.parse(payload.get("source")).to_dict()
    except FactError as e:
        errors.update(e.errors)
    try:
        data = fact_fields(fact_type, payload)
    except FactError as e:
        errors.update(e.errors)
    if kind == "identity_updated":
        person = _identity_changes(payload, errors)
    if errors:
        raise FactError(errors)
    assert source is not None and data is not None
    return NewFact(kind, occurred_on, source, data, person)


def _identity_changes(payload: dict[str, Any], errors: dict[str, str]) -> Identity | None:
    given = {k: v for k, v in payload.items() if k in Identity.field_names()}
    try:
        changes = Identity.parse(given)
    except IdentityError as e:
        errors.update(e.errors)
        return None
    if changes.is_empty():
        errors["aliases"] = "give at least one identity field or alias"
        return None
    return changes


def parse_opening(payload: dict[str, Any]) -> tuple[str, Identity, dict[str, Any]]:
    """Validate ``POST /cases`` content: category, person and source."""
    errors: dict[str, str] = {}
    person = Identity()
    source: dict[str, Any] = {}
    for name in sorted(set(payload) - {"category", "person", "source"}):
        errors[name] = "unknown field"
    category = payload.get("category")
    if not isinstance(category, str):
        errors["category"] = "required"
    raw_person = payload.get("person")
    if not isinstance(raw_person, dict):
        errors["person"] = "required: an object with at least family_name or aliases"
    else:
        try:
            person = Identity.parse(raw_person)
            if not person.has_a_name():
                errors["person.family_name"] = "give a family name (or 'unknown') or an alias"
        except IdentityError as e:
            errors.update({f"person.{k}": v for k, v in e.errors.items()})
    try:
        source = Source.parse(payload.get("source")).to_dict()
    except FactError as e:
        errors.update(e.errors)
    if errors:
        raise FactError(errors)
    assert isinstance(category, str)
    return category, person, source


# ---- negotiations and exchanges ---------------------------------------------------------


def _day(errors: dict[str, str], name: str, value: Any, today: date) -> date | None:
    try:
        day = parse_day(value)
    except ValueError as e:
        errors[name] = str(e)
        return None
    if day > today + timedelta(days=1):
        errors[name] = "must not be in the future"
        return None
    return day


def _text(errors: dict[str, str], name: str, value: Any, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    try:
        return check_text(value, limit) if isinstance(value, str) else _fail("must be a string")
    except ValueError as e:
        errors[name] = str(e)
        return None


def _fail(message: str) -> str:
    raise ValueError(message)


def _party(errors: dict[str, str], name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not ALPHA2.match(value):
        errors[name] = "must be an ISO 3166-1 alpha-2 code such as AM or AZ"
        return None
    return value


def _source(errors: dict[str, str], value: Any, prefix: str = "") -> dict[str, Any] | None:
    try:
        return Source.parse(value).to_dict()
    except FactError as e:
        errors.update({f"{prefix}{k}": v for k, v in e.errors.items()})
        return None


def parse_negotiation(payload: dict[str, Any], today: date) -> dict[str, Any]:
    """Validate ``POST /negotiations``: title, parties (two or more, distinct),
    mediators (states or organisations named as text), principle, opened_on."""
    errors: dict[str, str] = {}
    title = _text(errors, "title", payload.get("title"))
    if title is None and "title" not in errors:
        errors["title"] = "required"
    parties = [_party(errors, f"parties[{i}]", p) for i, p in enumerate(payload["parties"])]
    if len(set(parties)) != len(parties):
        errors["parties"] = "each party once"
    if len(parties) < 2:
        errors["parties"] = "a negotiation has two or more parties"
    mediators = [_text(errors, f"mediators[{i}]", m) for i, m in enumerate(payload["mediators"])]
    if set(mediators) & set(parties):
        errors["mediators"] = "a party is not also a mediator"
    opened_on = _day(errors, "opened_on", payload.get("opened_on"), today)
    if errors:
        raise FactError(errors)
    return {
        "title": title,
        "parties": parties,
        "mediators": mediators,
        "principle": payload["principle"],
        "opened_on": opened_on,
    }


def parse_list(payload: dict[str, Any], today: date) -> tuple[str, date, list[dict[str, Any]]]:
    """Validate ``POST /negotiations/{id}/lists``: the submitting party, the day, and each
    entry by ``case_id`` or by ``name`` (with ``date_of_birth`` and ``nationality`` when
    given; either may be "unknown")."""
    errors: dict[str, str] = {}
    party = _party(errors, "submitted_by", payload.get("submitted_by"))
    submitted_on = _day(errors, "submitted_on", payload.get("submitted_on"), today)
    entries: list[dict[str, Any]] = []
    for i, raw in enumerate(payload["entries"]):
        where = f"entries[{i}]"
        if "case_id" in raw:
            if set(raw) != {"case_id"}:
                errors[where] = "give either case_id alone, or name with its details"
            entries.append({"case_id": str(raw["case_id"])})
            continue
        entry: dict[str, Any] = {"name": _text(errors, f"{where}.name", raw.get("name"))}
        if raw.get("name") is None:
            errors[f"{where}.name"] = "give case_id or name"
        dob = raw.get("date_of_birth")
        if dob is not None:
            if dob not in ("unknown", "withheld"):
                try:
                    parse_day(dob)
                except ValueError as e:
                    errors[f"{where}.date_of_birth"] = str(e)
            entry["date_of_birth"] = dob
        nationality = raw.get("nationality")
        if nationality is not None:
            if nationality not in ("unknown", "withheld"):
                _party(errors, f"{where}.nationality", nationality)
            entry["nationality"] = nationality
        entries.append(entry)
    if errors:
        raise FactError(errors)
    assert party is not None and submitted_on is not None
    return party, submitted_on, entries


def _transfers(errors: dict[str, str], items: list[dict[str, Any]], name: str) -> list[Any]:
    out = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        where = f"{name}[{i}]"
        from_party = _party(errors, f"{where}.from_party", raw.get("from_party"))
        to_party = _party(errors, f"{where}.to_party", raw.get("to_party"))
        if from_party is not None and from_party == to_party:
            errors[f"{where}.to_party"] = "must differ from from_party"
        case_id = str(raw["case_id"])
        if case_id in seen:
            errors[f"{where}.case_id"] = "this case is named twice"
        seen.add(case_id)
        out.append({**raw, "case_id": case_id})
    return out


def _consideration(errors: dict[str, str], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, raw in enumerate(items):
        where = f"consideration[{i}]"
        item = {
            "from_party": _party(errors, f"{where}.from_party", raw.get("from_party")),
            "to_party": _party(errors, f"{where}.to_party", raw.get("to_party")),
            "description": _text(
                errors, f"{where}.description", raw.get("description"), MAX_LONG_TEXT
            ),
        }
        out.append(item)
    return out


def parse_agreement(payload: dict[str, Any], today: date) -> dict[str, Any]:
    """Validate ``POST /negotiations/{id}/agreements``."""
    errors: dict[str, str] = {}
    agreed_on = _day(errors, "agreed_on", payload.get("agreed_on"), today)
    transfers = _transfers(errors, payload["transfers"], "transfers")
    consideration = _consideration(errors, payload.get("consideration") or [])
    source = _source(errors, payload["source"]) if payload.get("source") else None
    if not transfers and not consideration:
        errors["transfers"] = "an agreement names transfers or consideration"
    if errors:
        raise FactError(errors)
    return {
        "agreed_on": agreed_on,
        "transfers": transfers,
        "consideration": consideration,
        "source": source,
    }


def parse_exchange(payload: dict[str, Any], today: date) -> NewExchange:
    """Validate ``POST /exchanges``: everything that can be checked without the cases."""
    errors: dict[str, str] = {}
    occurred_on = _day(errors, "occurred_on", payload.get("occurred_on"), today)
    place = _text(errors, "place", payload.get("place"))
    mediators = [
        _text(errors, f"mediators[{i}]", m) for i, m in enumerate(payload.get("mediators") or [])
    ]
    handovers = []
    for i, raw in enumerate(_transfers(errors, payload["handovers"], "handovers")):
        refused_by = raw.get("refused_by")
        if refused_by is not None and raw["outcome"] != "refused":
            errors[f"handovers[{i}].refused_by"] = "only for the outcome refused"
        handovers.append(
            Handover(
                UUID(raw["case_id"]),
                raw["from_party"],
                raw["to_party"],
                raw["outcome"],
                refused_by,
                raw.get("expected_version"),
            )
        )
    if not handovers:
        errors["handovers"] = "an exchange hands over at least one person"
    consideration = _consideration(errors, payload.get("consideration") or [])
    source = _source(errors, payload.get("source"))
    announced = []
    for i, raw in enumerate(payload.get("announced") or []):
        where = f"announced[{i}]"
        item: dict[str, Any] = {
            "by_party": _party(errors, f"{where}.by_party", raw.get("by_party")),
            "count": raw["count"],
        }
        for side in ("from_party", "to_party"):  # the direction the figure is about
            if raw.get(side) is not None:
                item[side] = _party(errors, f"{where}.{side}", raw[side])
        if raw.get("source") is not None:
            item["source"] = _source(errors, raw["source"], f"{where}.")
        announced.append(item)
    if errors:
        raise FactError(errors)
    assert occurred_on is not None and source is not None
    negotiation_id = payload.get("negotiation_id")
    return NewExchange(
        occurred_on=occurred_on,
        handovers=tuple(handovers),
        source=source,
        negotiation_id=UUID(str(negotiation_id)) if negotiation_id else None,
        agreement=payload.get("agreement"),
        place=place,
        mediators=tuple(m for m in mediators if m is not None),
        consideration=tuple(consideration),
        announced=tuple(announced),
    )
