"""Turning a client's request into validated domain values, naming every bad field."""

from __future__ import annotations

from datetime import date
from typing import Any

from domain.case import NewFact
from domain.facts import FACT_TYPES, OPENED, FactError, Source, parse_fields, parse_occurred_on
from domain.identity import Identity, IdentityError

COMMON = {"type", "occurred_on", "source", "expected_version"}


def parse_fact(payload: dict[str, Any], today: date) -> NewFact:
    """Validate ``POST /cases/{id}/events`` content (without ``expected_version``)."""
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
        data = parse_fields(fact_type, payload)
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
