"""Typed commands, built once at the API edge from validated request bodies.

The schemas (``api.schemas``) have checked the shape of each body; the domain then
applies what a schema cannot say (a date that is not in the calendar or is in the
future, one field or another, identity rules) and builds the domain values. For facts,
the hot path, that is ``domain.input.new_fact``, which checks no field's kind again
(the fact schemas are built from the same fact table); the other bodies go through
``domain.input``'s parsers whole, which also check shapes: they are rare, and those
checks cost microseconds. The command goes to the register's use case as it is;
nothing after this point parses the request again.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from domain.cases import OpenCase, RecordFact
from domain.exchange import NewExchange
from domain.input import (
    new_fact,
    parse_agreement,
    parse_exchange,
    parse_list,
    parse_negotiation,
    parse_opening,
)
from domain.negotiations import Agree, ConfirmMatch, OpenNegotiation, SubmitList


def today() -> date:
    """The day in UTC: the register's days are UTC days."""
    return datetime.now(UTC).date()


def open_case(payload: dict[str, Any]) -> OpenCase:
    category, person, source = parse_opening(payload)
    return OpenCase(category, person, source)


def record_fact(case_id: UUID, payload: dict[str, Any], expected: int | None) -> RecordFact:
    """``payload``: the fact as its schema validated it, without ``expected_version``;
    the domain applies only what the schema cannot say (``domain.input.new_fact``)."""
    return RecordFact(case_id, new_fact(payload, today()), expected)


def open_negotiation(payload: dict[str, Any]) -> OpenNegotiation:
    return OpenNegotiation(**parse_negotiation(payload, today()))


def submit_list(negotiation_id: UUID, payload: dict[str, Any], expected: int | None) -> SubmitList:
    party, submitted_on, entries = parse_list(payload, today())
    return SubmitList(negotiation_id, party, submitted_on, entries, expected)


def confirm_match(
    negotiation_id: UUID, payload: dict[str, Any], expected: int | None
) -> ConfirmMatch:
    return ConfirmMatch(
        negotiation_id,
        payload["party"],
        payload["list_version"],
        payload["entry"],
        payload["case_id"],
        expected,
    )


def agree(negotiation_id: UUID, payload: dict[str, Any], expected: int | None) -> Agree:
    return Agree(negotiation_id, **parse_agreement(payload, today()), expected_version=expected)


def record_exchange(payload: dict[str, Any]) -> NewExchange:
    return parse_exchange(payload, today())
